import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SoukCore
@testable import SoukServer
import SoukTesting
import SoukWorkers
import Testing

/// What a first-time user and an attacker met on 2026-12-04, each kept fixed: extreme values are
/// field errors (not a dead process), HEAD works, a product in a sale stays until the sale is
/// cancelled, idempotency keys are bound to their request, and a stranger cannot lock an owner out.
@Suite("Hardening")
struct HardeningTests {
    @Test func extremeDatesAndAmountsAreFieldErrorsAndTheServerLivesOn() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, stock: 50)
            let farCoupon = try await app.json(.post, "/api/v1/coupons",
                #"{"code":"FAR","kind":"percent","value":10,"min_order_minor":0,"max_uses":5,"expires_at":"300000-01-01T00:00:00Z"}"#, token: token)
            #expect(farCoupon.status == .unprocessableContent && farCoupon.errorFields == ["expires_at"], "\(farCoupon.body)")
            let farSale = try await app.json(.post, "/api/v1/flash-sales",
                #"{"product_id":\#(tea),"quantity":1,"starts_at":"300000-01-01T00:00:00Z","ends_at":"300000-01-02T00:00:00Z","per_buyer_limit":1}"#, token: token)
            #expect(farSale.status == .unprocessableContent && farSale.errorFields.contains("starts_at"), "\(farSale.body)")
            let earlySale = try await app.json(.post, "/api/v1/flash-sales",
                #"{"product_id":\#(tea),"quantity":1,"starts_at":"1900-01-01T00:00:00Z","ends_at":"2100-01-02T00:00:00Z","per_buyer_limit":1}"#, token: token)
            #expect(earlySale.status == .unprocessableContent && earlySale.errorFields.contains("starts_at"), "\(earlySale.body)")
            let farPrices = try await app.json(.get, "/api/v1/prices/SIM-0001?from=300000-01-01T00:00:00Z")
            #expect(farPrices.status == .unprocessableContent || farPrices.status == .notFound, "\(farPrices.body)")

            let vendor = Browser(app)
            _ = try await vendor.get("/login")
            _ = try await vendor.post("/login", [("username", "amina"), ("password", "password123")])
            for price in ["92233720368547758.99", "92233720368547758.07", "99999999999999999999", "-1", "1e5", "٣.50"] {
                let form = try await vendor.post("/dashboard/products", [("name", "Gold"), ("description", ""), ("price", price), ("currency", "USD"), ("stock", "1")])
                #expect(form.status == .unprocessableContent, "price \(price): \(form.status)")
                #expect(form.body.contains("name=\"price\""), "price \(price): the form is shown again with its error")
            }
            // The same process answers.
            #expect(try await app.send(.get, "/healthz").status == .ok)
            let coupons = try await app.count("coupons")
            let sales = try await app.count("flash_sales")
            #expect(coupons == 0 && sales == 0, "nothing was written")
        }
    }

    @Test func headIsAnsweredOnEveryGetRouteWithTheGetsHeaders() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            _ = try await app.product(token: token)
            let paths = ["/healthz", "/readyz", "/", "/login", "/signup", "/s/amina", "/api/v1/stores/amina", "/openapi.json", "/docs", "/search?q=tea",
                         "/api/v1/search?q=tea", "/api/v1/flash-sales/999", "/s/nobody", "/assets/souk.js"]
            for path in paths {
                let get = try await app.send(.get, path)
                let head = try await app.send(.head, path)
                #expect(head.status == get.status, "\(path): HEAD \(head.status), GET \(get.status)")
                #expect(head.body.isEmpty, "\(path): HEAD has no body")
                #expect(head.headers[.contentType] == get.headers[.contentType], "\(path)")
                if get.status == .ok, get.headers[.contentLength] != nil {
                    #expect(head.headers[.contentLength] == get.headers[.contentLength], "\(path): the GET's length")
                }
            }
            let me = try await app.send(.head, "/api/v1/vendors/me", token: token)
            #expect(me.status == .ok && me.body.isEmpty)
            #expect(try await app.send(.head, "/api/v1/vendors/me").status == .unauthorized)
        }
    }

    @Test func aProductInAnOpenSaleStaysUntilTheSaleIsCancelled() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let other = try await app.vendorToken("bilal")
            let phone = try await app.product(token: token, name: "Phone", stock: 10)
            let created = try await FlashSaleAPITests.createSale(app, token: token, product: phone, quantity: 4, limit: 1)
            let sale = try #require((created.json["id"] as? NSNumber)?.int64Value)
            let alice = try await app.customer("alice@example.com"), bob = try await app.customer("bob@example.com")
            #expect(try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", nil, token: alice.token).status == .accepted)

            let deleted = try await app.json(.delete, "/api/v1/products/\(phone)", token: token)
            #expect(deleted.status == .conflict && deleted.errorCode == "flash_sale_open", "\(deleted.body)")
            let hidden = try await app.json(.patch, "/api/v1/products/\(phone)", #"{"available":false}"#, token: token)
            #expect(hidden.status == .conflict && hidden.errorCode == "flash_sale_open", "\(hidden.body)")
            #expect(try await app.json(.patch, "/api/v1/products/\(phone)", #"{"name":"Phone 2"}"#, token: token).status == .ok, "other edits are fine")
            #expect(try await app.json(.post, "/api/v1/flash-sales/\(sale)/cancel", token: other).status == .notFound, "only its vendor cancels it")

            let cancelled = try await app.json(.post, "/api/v1/flash-sales/\(sale)/cancel", token: token)
            #expect(cancelled.status == .ok && cancelled.json["status"] as? String == "ended", "\(cancelled.body)")
            let late = try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", nil, token: bob.token)
            #expect(late.status == .conflict && late.errorCode == "ended", "\(late.body)")
            let again = try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", nil, token: alice.token)
            #expect(again.status == .accepted, "alice's admitted order stays")
            #expect(try await app.json(.post, "/api/v1/flash-sales/\(sale)/cancel", token: token).status == .ok, "cancelling twice is harmless")

            // Closing (the reconciler's round) returns the 3 unsold units; the admitted order stays.
            let reconciler = FlashSaleReconciler(redis: nil, store: app.storage, logger: TestLog.logger)
            let report = try await reconciler.reconcile(saleID: sale, repair: true, now: Date().addingTimeInterval(3))
            #expect(report.closed)
            #expect(try await app.stock(of: phone, token: token) == 6 + 3)
            #expect(try await app.count("flash_sale_orders") == 1)
            #expect(try await app.json(.delete, "/api/v1/products/\(phone)", token: token).status == .noContent)
        }
    }

    @Test func aScheduledSaleIsCancelledFromTheDashboard() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let phone = try await app.product(token: token, name: "Phone", stock: 10)
            let sale = try #require((try await FlashSaleAPITests.createSale(app, token: token, product: phone, quantity: 2, startsIn: 600).json["id"] as? NSNumber)?.int64Value)
            let vendor = Browser(app)
            _ = try await vendor.get("/login")
            _ = try await vendor.post("/login", [("username", "amina"), ("password", "password123")])
            let refused = try await vendor.post("/dashboard/products/\(phone)/delete", [])
            #expect(refused.status == .conflict && refused.body.contains("is in a flash sale") && refused.body.contains(": products</h1>"),
                    "the dashboard shows why, above its products")
            let page = try await vendor.get("/dashboard/flash-sales/\(sale)")
            #expect(page.body.contains("/dashboard/flash-sales/\(sale)/cancel"))
            #expect(try await vendor.post("/dashboard/flash-sales/\(sale)/cancel", []).status == .found)
            let after = try await vendor.get("/dashboard/flash-sales/\(sale)")
            #expect(after.body.contains(">ended<") && !after.body.contains("/cancel\""), "ended, and no button any more")
            let shown = try await app.json(.get, "/api/v1/flash-sales/\(sale)")
            #expect(shown.json["status"] as? String == "ended")
        }
    }

    @Test func anIdempotencyKeyIsBoundToItsRequest() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("shop")
            let tea = try await app.product(token: token, name: "Tea", price: 100, stock: 50)
            let jam = try await app.product(token: token, name: "Jam", price: 100, stock: 50)
            let ann = try await app.customer("ann@example.com")
            _ = try await app.json(.post, "/api/v1/wallets/\(ann.id)/credit", #"{"amount_minor":10000}"#, token: token)
            func checkout(_ items: String, key: String) async throws -> TestApp.Reply {
                try await app.send(.post, "/api/v1/checkouts", body: ByteBuffer(string: #"{"items":[\#(items)]}"#),
                                   token: ann.token, headers: [HTTPField.Name("Idempotency-Key")!: key])
            }
            let first = try await checkout(#"{"product_id":\#(tea),"quantity":1}"#, key: "k-1")
            #expect(first.status == .accepted)
            let orderID = try #require(first.json["order_id"] as? String)
            let replay = try await checkout(#"{"product_id":\#(tea),"quantity":1}"#, key: "k-1")
            #expect(replay.status == .accepted && replay.json["order_id"] as? String == orderID, "the same request gets the first answer")
            for other in [#"{"product_id":\#(jam),"quantity":1}"#, #"{"product_id":\#(tea),"quantity":2}"#] {
                let reused = try await checkout(other, key: "k-1")
                #expect(reused.status == .unprocessableContent && reused.errorCode == "idempotency_key_reused", "\(reused.body)")
                #expect(!reused.body.contains(orderID), "another request never learns the first order's id")
            }
            // A denial is bound the same way.
            let denied = try await checkout(#"{"product_id":\#(tea),"quantity":1000}"#, key: "k-2")
            #expect(denied.status == .conflict)
            #expect(try await checkout(#"{"product_id":\#(tea),"quantity":1}"#, key: "k-2").errorCode == "idempotency_key_reused")
            #expect(try await app.count("checkouts") == 1)
        }
    }

    @Test func theDemoStoreWithItsPublicPasswordIsMadeOnlyOnLoopbackOrWhenAsked() async throws {
        for (arguments, expectsDemo) in [(["--host", "0.0.0.0"], false), (["--host", "0.0.0.0", "--demo"], true), ([], true)] {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-demo-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let souk = try await SoukProcess.start(["run", "--data-dir", directory.path] + arguments)
            defer { souk.stop() }
            let login = try await HTTPTestClient(baseURL: souk.baseURL).send("POST", "/api/v1/sessions", json: #"{"username":"demo","password":"demo1234"}"#)
            #expect(login.status == (expectsDemo ? 201 : 401), "\(arguments): \(login.status)")
            #expect(souk.outputText.contains("demo1234") == expectsDemo, "\(arguments): the announcement names the demo login only when there is one")
        }
    }

    @Test func messagesSayWhatIsWrong() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let fraction = try await app.json(.post, "/api/v1/products", #"{"name":"Tea","price_minor":12.5,"currency":"USD","stock":1}"#, token: token)
            #expect(fraction.status == .unprocessableContent && fraction.errorFields == ["price_minor"], "valid JSON, a field that must be whole: \(fraction.body)")
            let huge = try await app.json(.post, "/api/v1/products", #"{"name":"Tea","price_minor":100,"currency":"USD","stock":1e30}"#, token: token)
            #expect(huge.status == .unprocessableContent && huge.errorFields == ["stock"], "\(huge.body)")
            let broken = try await app.json(.post, "/api/v1/products", #"{"name":"Tea","#, token: token)
            #expect(broken.status == .badRequest && broken.errorCode == "malformed_request")
            let maybe = try await app.json(.get, "/api/v1/search?q=tea&in_stock=maybe")
            #expect(maybe.status == .unprocessableContent && maybe.errorFields == ["in_stock"], "\(maybe.body)")
            let letters = try await app.json(.get, "/api/v1/search?q=tea&min_price=abc")
            #expect(letters.errorFields == ["min_price"], "each field once: \(letters.body)")
            let notAnID = try await app.json(.get, "/api/v1/products/abc", token: token)
            #expect(notAnID.status == .notFound && (notAnID.json["error"] as? [String: Any])?["message"] as? String == "Product was not found.")
            let order = try await app.json(.get, "/api/v1/orders/0", token: token)
            #expect((order.json["error"] as? [String: Any])?["message"] as? String == "Order was not found.")
        }
    }

    @Test func addressesAreLimitedAsTheNetworkAClientHolds() {
        #expect(RateGuard.network("198.51.100.7") == "198.51.100.7")
        #expect(RateGuard.network("2001:db8:1:2:aaaa::1") == RateGuard.network("2001:db8:1:2:ffff:1:2:3"), "one /64")
        #expect(RateGuard.network("2001:db8:1:2::1") == "2001:0db8:0001:0002::/64")
        #expect(RateGuard.network("2001:db8:1:3::1") != RateGuard.network("2001:db8:1:2::1"))
        #expect(RateGuard.network("::ffff:192.0.2.1") == "192.0.2.1", "an IPv4-mapped address is its IPv4 address")
        #expect(RateGuard.network("not:an:address") == "not:an:address")
    }

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    @Test func aStrangerCannotLockTheOwnerOut() async throws {
        let policy = try #require(RateLimitPolicy.parse("login_user_ip=3/5m,login_user=6/1m"))
        try await TestApp.run(rateLimits: policy, behindProxy: true) { app in
            _ = try await app.vendorToken("amina")
            func login(_ password: String, from address: String) async throws -> TestApp.Reply {
                try await app.send(.post, "/api/v1/sessions", body: ByteBuffer(string: #"{"username":"amina","password":"\#(password)"}"#),
                                   headers: [Self.forwardedFor: address])
            }
            // One address guessing: refused after its own failures, for this account only.
            for _ in 0..<3 { #expect(try await login("guess", from: "198.51.100.7").status == .unauthorized) }
            let refused = try await login("password123", from: "198.51.100.7")
            #expect(refused.status == .tooManyRequests && refused.headers[.retryAfter] != nil)
            #expect(try await login("password123", from: "203.0.113.1").status == .created, "the owner, elsewhere, gets in")

            // Many addresses guessing: every attempt on the account is slowed, none refused.
            for index in 0..<5 { #expect(try await login("guess", from: "192.0.2.\(index)").status == .unauthorized) }
            let started = ContinuousClock.now
            let owner = try await login("password123", from: "203.0.113.2")
            #expect(owner.status == .created, "the right password from an address without failures is not refused")
            // The server waits at most `longestLoginDelay` (2 s); the bound leaves the rest to a busy
            // machine (a clean-clone run with a build beside it took 5.03 s).
            #expect(ContinuousClock.now - started < RateGuard.longestLoginDelay + .seconds(6), "slowed by at most a couple of seconds")
        }
    }
}


