import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import SoukCore
import SoukTesting
import SoukWorkers
import Testing

@Suite("Checkout API")
struct CheckoutAPITests {
    @Test func theAnswersAndTheirExactMessages() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("shop")
            let user2 = try await app.customer("user2@example.com")
            let stock = try await app.product(token: token, name: "Stock", price: 1_000, stock: 500)
            let credited = try await app.json(.post, "/api/v1/wallets/\(user2.id)/credit", #"{"amount_minor":150000}"#, token: token)
            #expect(credited.status == .ok && (credited.json["balance_minor"] as? NSNumber)?.intValue == 150_000 && (credited.json["held_minor"] as? NSNumber)?.intValue == 0)
            #expect(try await app.json(.post, "/api/v1/wallets/\(user2.id)/credit", #"{"amount_minor":-5}"#, token: token).status == .unprocessableContent)
            #expect(try await app.json(.post, "/api/v1/wallets/\(user2.id)/credit", #"{"amount_minor":5}"#).status == .unauthorized)

            // The source text's exact request: 100 × 10.00 is covered by 1,500.00 of credit.
            let accepted = try await app.json(.post, "/api/v1/buy", #"{"user": "user2@example.com", "stockid": \#(stock), "quantity": 100}"#, token: user2.token)
            #expect(accepted.status == .accepted)
            #expect(accepted.json["status"] as? String == "in_progress")
            #expect(accepted.json["message"] as? String == "In Progress: Credit check passed. User verification in progress...")
            let orderID = try #require(accepted.json["order_id"] as? String)
            let denied = try await app.json(.post, "/api/v1/buy", #"{"user": "user2@example.com", "stockid": \#(stock), "quantity": 100}"#, token: user2.token)
            #expect(denied.status.code == 402)
            #expect(denied.body == #"{"error":{"code":"insufficient_credit","message":"Deny: Not enough credit"}}"#)
            let noStock = try await app.json(.post, "/api/v1/checkouts", #"{"buyer_id":"\#(user2.id)","items":[{"product_id":\#(stock),"quantity":1000}]}"#, token: user2.token)
            #expect(noStock.status == .conflict && noStock.errorCode == "insufficient_stock")
            let badCoupon = try await app.json(.post, "/api/v1/checkouts", #"{"buyer_id":"\#(user2.id)","items":[{"product_id":\#(stock),"quantity":1}],"coupon":"NOPE"}"#, token: user2.token)
            #expect(badCoupon.status == .unprocessableContent && badCoupon.errorCode == "invalid_coupon")
            let wallet = try await app.json(.get, "/api/v1/wallets/\(user2.id)", token: token)
            #expect((wallet.json["held_minor"] as? NSNumber)?.intValue == 100_000 && (wallet.json["balance_minor"] as? NSNumber)?.intValue == 50_000)

            let signedIn: HTTPFields = [.cookie: "souk_customer=\(user2.token)"]
            let page = try await app.send(.get, "/checkouts/\(orderID)", headers: signedIn)
            #expect(page.status == .ok && page.body.contains("data-live-order=\"\(orderID)\"") && page.body.contains("In Progress: Credit check passed."))
            #expect(try await app.send(.get, "/checkouts/co_unknown", headers: signedIn).status == .notFound)
            let shown = try await app.json(.get, "/api/v1/orders/\(orderID)", token: user2.token)
            #expect(shown.status == .ok && shown.json["status"] as? String == "in_progress" && shown.json["buyer_id"] as? String == user2.id)
            #expect(try await app.json(.get, "/api/v1/orders/co_doesnotexist", token: user2.token).status == .notFound)
            #expect(try await app.json(.get, "/api/v1/orders/1").status == .unauthorized, "store orders still need the vendor")

            // Coupons.
            let coupon = try await app.json(.post, "/api/v1/coupons", #"{"code":"half","kind":"percent","value":50,"min_order_minor":0,"max_uses":1}"#, token: token)
            #expect(coupon.status == .created && coupon.json["code"] as? String == "HALF")
            let withCoupon = try await app.json(.post, "/api/v1/checkouts", #"{"buyer_id":"\#(user2.id)","items":[{"product_id":\#(stock),"quantity":10}],"coupon":"HALF"}"#, token: user2.token)
            #expect(withCoupon.status == .accepted)
            let discounted = try await app.json(.get, "/api/v1/orders/\(try #require(withCoupon.json["order_id"] as? String))", token: user2.token)
            #expect((discounted.json["total_minor"] as? NSNumber)?.intValue == 5_000 && (discounted.json["discount_minor"] as? NSNumber)?.intValue == 5_000)
            let usedUp = try await app.json(.post, "/api/v1/checkouts", #"{"buyer_id":"\#(user2.id)","items":[{"product_id":\#(stock),"quantity":1}],"coupon":"HALF"}"#, token: user2.token)
            #expect(usedUp.errorCode == "invalid_coupon")
            #expect((try await app.json(.get, "/api/v1/coupons", token: token).json["coupons"] as? [[String: Any]])?.first?["uses"] as? Int == 1)
        }
    }

    /// Credit is given by a store and spent only there: another vendor neither sees it nor mints
    /// credit that buys from this store.
    @Test func creditBelongsToTheStoreThatGaveIt() async throws {
        try await TestApp.run { app in
            let shop = try await app.vendorToken("shop")
            let other = try await app.vendorToken("other")
            let carol = try await app.customer("carol@example.com")
            let tea = try await app.product(token: shop, name: "Tea", price: 1_000, stock: 10)
            #expect(try await app.json(.post, "/api/v1/wallets/\(carol.id)/credit", #"{"amount_minor":5000}"#, token: other).status == .ok)
            let refused = try await app.json(.post, "/api/v1/checkouts", #"{"buyer_id":"\#(carol.id)","items":[{"product_id":\#(tea),"quantity":2}]}"#, token: carol.token)
            #expect(refused.status.code == 402 && refused.errorCode == "insufficient_credit", "credit from another store bought nothing here")
            #expect(try await app.stock(of: tea, token: shop) == 10)
            let seenByShop = try await app.json(.get, "/api/v1/wallets/\(carol.id)", token: shop)
            #expect((seenByShop.json["balance_minor"] as? NSNumber)?.intValue == 0, "the shop does not see the other store's credit: \(seenByShop.body)")

            #expect(try await app.json(.post, "/api/v1/wallets/\(carol.id)/credit", #"{"amount_minor":3000}"#, token: shop).status == .ok)
            #expect(try await app.json(.post, "/api/v1/checkouts", #"{"buyer_id":"\#(carol.id)","items":[{"product_id":\#(tea),"quantity":2}]}"#, token: carol.token).status == .accepted)
            let atShop = try await app.json(.get, "/api/v1/wallets/\(carol.id)", token: shop)
            #expect((atShop.json["balance_minor"] as? NSNumber)?.intValue == 1_000 && (atShop.json["held_minor"] as? NSNumber)?.intValue == 2_000)
            let atOther = try await app.json(.get, "/api/v1/wallets/\(carol.id)", token: other)
            #expect((atOther.json["balance_minor"] as? NSNumber)?.intValue == 5_000 && (atOther.json["held_minor"] as? NSNumber)?.intValue == 0)
        }
    }

    /// What schemathesis found: requests that crashed the process or were misread.
    @Test func fuzzedRequestsGetClearAnswers() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("shop")
            let tea = try await app.product(token: token, name: "Tea", price: 100_000_000_000, stock: 10_000)
            let x = try await app.customer("x@example.com")
            let huge = try await app.json(.post, "/api/v1/checkouts", #"{"buyer_id":"\#(x.id)","items":[{"product_id":\#(tea),"quantity":9223372036854775807},{"product_id":\#(tea),"quantity":1}]}"#, token: x.token)
            #expect(huge.status == .unprocessableContent && huge.errorCode == "validation_failed", "\(huge.body)")
            let order = try await app.json(.post, "/api/v1/stores/shop/orders", #"{"customer":{"name":"Ann","phone":"0123456789","address":"1 Road"},"items":[{"product_id":\#(tea),"quantity":9223372036854775807},{"product_id":\#(tea),"quantity":1}]}"#)
            #expect(order.status == .unprocessableContent, "\(order.body)")
            // A 100 % coupon on the largest order: the discount is the whole subtotal, no overflow.
            #expect(try await app.json(.post, "/api/v1/coupons", #"{"code":"all","kind":"percent","value":100,"min_order_minor":0,"max_uses":5}"#, token: token).status == .created)
            let free = try await app.json(.post, "/api/v1/checkouts", #"{"buyer_id":"\#(x.id)","items":[{"product_id":\#(tea),"quantity":10000}],"coupon":"ALL"}"#, token: x.token)
            #expect(free.status == .accepted, "\(free.body)")
            // Percent-encoded path segments are decoded; a wallet is named by the customer's id or email.
            let alice = try await app.customer("alice@example.com")
            #expect(try await app.json(.post, "/api/v1/wallets/alice%40example.com/credit", #"{"amount_minor":700}"#, token: token).status == .ok)
            let wallet = try await app.json(.get, "/api/v1/wallets/alice@example.com", token: token)
            #expect((wallet.json["balance_minor"] as? NSNumber)?.intValue == 700 && wallet.json["buyer_id"] as? String == alice.id, "\(wallet.body)")
            let nobody = try await app.json(.post, "/api/v1/wallets/nobody@example.com/credit", #"{"amount_minor":700}"#, token: token)
            #expect(nobody.status == .notFound && nobody.errorCode == "not_found", "credit is given only to a customer who exists")
        }
    }

    /// A vendor sees its checkouts (API, newest first, paged; and the dashboard), another vendor none.
    @Test func vendorsSeeTheirCheckouts() async throws {
        try await TestApp.run { app in
            let shop = try await app.vendorToken("shop")
            let other = try await app.vendorToken("other")
            let tea = try await app.product(token: shop, name: "Mint tea", price: 100, stock: 100)
            let carol = try await app.customer("carol@example.com")
            #expect(try await app.json(.post, "/api/v1/wallets/\(carol.id)/credit", #"{"amount_minor":100000}"#, token: shop).status == .ok)
            var placed: [String] = []
            for quantity in 1...5 {
                let reply = try await app.json(.post, "/api/v1/checkouts", #"{"buyer_id":"\#(carol.id)","items":[{"product_id":\#(tea),"quantity":\#(quantity)}]}"#, token: carol.token)
                placed.append(try #require(reply.json["order_id"] as? String))
            }
            var listed: [String] = []
            var cursor = ""
            repeat {
                let page = try await app.json(.get, "/api/v1/checkouts?limit=2\(cursor.isEmpty ? "" : "&cursor=\(cursor)")", token: shop)
                #expect(page.status == .ok, "\(page.body)")
                listed += (page.json["checkouts"] as? [[String: Any]] ?? []).compactMap { $0["order_id"] as? String }
                cursor = page.json["next_cursor"] as? String ?? ""
            } while !cursor.isEmpty
            #expect(listed == placed.reversed(), "every checkout once, newest first")
            #expect((try await app.json(.get, "/api/v1/checkouts", token: other).json["checkouts"] as? [Any])?.isEmpty == true)
            #expect(try await app.json(.get, "/api/v1/checkouts?cursor=nonsense", token: shop).status == .unprocessableContent)
            #expect(try await app.json(.get, "/api/v1/checkouts").status == .unauthorized)

            let browser = Browser(app)
            _ = try await browser.get("/login")
            _ = try await browser.post("/login", [("username", "shop"), ("password", "password123")])
            let dashboard = try await browser.get("/dashboard/orders")
            #expect(dashboard.status == .ok && dashboard.body.contains(placed[0]) && dashboard.body.contains("Mint tea"), "the Orders page lists checkouts")
        }
    }

    @Test func replayingAnIdempotencyKeyOverHTTP() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("shop")
            let stock = try await app.product(token: token, price: 1_000, stock: 50)
            let amina = try await app.customer("amina@example.com")
            _ = try await app.json(.post, "/api/v1/wallets/\(amina.id)/credit", #"{"amount_minor":1000}"#, token: token)
            func checkout(_ key: String) async throws -> TestApp.Reply {
                try await app.send(.post, "/api/v1/checkouts", body: ByteBuffer(string: #"{"items":[{"product_id":\#(stock),"quantity":1}]}"#),
                                   token: amina.token, headers: [.init("Idempotency-Key")!: key])
            }
            let first = try await checkout("a")
            let second = try await checkout("a")
            #expect(first.status == .accepted && second.status == .accepted && first.json["order_id"] as? String == second.json["order_id"] as? String)
            let denied = try await checkout("b")
            _ = try await app.json(.post, "/api/v1/wallets/\(amina.id)/credit", #"{"amount_minor":100000}"#, token: token)
            let replayed = try await checkout("b")
            #expect(denied.status.code == 402 && replayed.status.code == 402 && replayed.body == denied.body)
        }
    }
}

/// The real binary with a verifier of known delay: the result reaches an SSE client and a long poll.
@Suite("Checkout results pushed (real binary)")
struct CheckoutPushTests {
    @Test func theResultIsPushedNotPolled() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-push-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let souk = try await SoukProcess.start(["--data-dir", directory.path, "--verifier-delay", "700ms-700ms"])
        defer { souk.stop() }
        let client = HTTPTestClient(baseURL: souk.baseURL)
        // The latency is measured on a machine that runs the rest of the suite at the same time: a
        // measurement that a busy scheduler pushed over the bound is taken again (at most five).
        let login = try await client.send("POST", "/api/v1/customers/sessions", json: #"{"email":"user2@example.com","password":"demo1234"}"#)
        let user2 = try #require(login.json["token"] as? String, "\(login.body)")
        var latencies: [Double] = []
        var longPoll: Task<HTTPTestClient.Reply, any Error>?
        for _ in 1...5 {
            // user2 has demo credit; product 1 is the demo's dark chocolate.
            let accepted = try await client.send("POST", "/api/v1/buy", json: #"{"user": "user2@example.com", "stockid": 1, "quantity": 2}"#, headers: ["Authorization": "Bearer \(user2)"])
            let orderID = try #require(accepted.json["order_id"] as? String, "\(accepted.body)")
            let base = souk.baseURL
            longPoll = Task { try await HTTPTestClient(baseURL: base, token: user2).send("GET", "/api/v1/orders/\(orderID)?wait=10") }
            let stream = try await TimedSSE.read(souk.baseURL, path: "/api/v1/orders/\(orderID)/events", headers: ["Authorization": "Bearer \(user2)"], until: "confirmed", timeout: .seconds(10))
            let final = try #require(stream.finalEvent)
            #expect(final.contains(#""message":"Success: Buy order complete.""#))
            let decidedText = try #require(final.firstMatch(of: /"updated_at":"([^"]+)"/)?.1)
            let decided = try #require(try? Date(String(decidedText), strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)))
            latencies.append(stream.receivedAt.timeIntervalSince(decided) * 1_000)
            if latencies.last! < 250 { break }
        }
        print("checkout push latency: \(latencies.map { "\(Int($0.rounded()))" }.joined(separator: ", ")) ms from decision to SSE client")
        // Pushed, not found by a poll (the runner's would take up to a second). The latency target
        // itself (p99 well under 100 ms) is the benchmark's: a unit test shares its machine.
        #expect(latencies.last! < 250, "pushed \(latencies) ms after the decision")
        let polled = try await longPoll!.value
        #expect(polled.json["status"] as? String == "confirmed")
    }
}

/// Reads server-sent events over a raw connection and notes when the awaited event arrived.
enum TimedSSE {
    struct Result {
        var finalEvent: String?
        var receivedAt = Date.distantFuture
    }

    static func read(_ base: URL, path: String, headers: [String: String] = [:], until marker: String, timeout: Duration) async throws -> Result {
        let deadline = ContinuousClock.now + timeout
        var result = Result()
        // Poll the stream's growing body on a live connection.
        let collector = try await RawHTTP.open(base, path: path, headers: headers)
        defer { collector.close() }
        while ContinuousClock.now < deadline {
            let body = collector.text
            if let range = body.range(of: "\"status\":\"\(marker)\"") {
                result.receivedAt = collector.lastChunkAt
                let start = body[..<range.lowerBound].range(of: "data: ", options: .backwards)?.upperBound ?? body.startIndex
                result.finalEvent = String(body[start...].prefix { $0 != "\n" })
                return result
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return result
    }
}
