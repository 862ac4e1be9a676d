import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Flash sale API")
struct FlashSaleAPITests {
    static func iso(_ offset: TimeInterval) -> String { ISO8601DateFormatter().string(from: Date().addingTimeInterval(offset)) }

    static func createSale(_ app: TestApp, token: String, product: Int64, quantity: Int = 3, limit: Int = 1, startsIn: TimeInterval = -5) async throws -> TestApp.Reply {
        try await app.json(.post, "/api/v1/flash-sales",
            #"{"product_id":\#(product),"quantity":\#(quantity),"starts_at":"\#(iso(startsIn))","ends_at":"\#(iso(startsIn + 3_600))","per_buyer_limit":\#(limit)}"#, token: token)
    }

    @Test func aVendorRunsASaleAndBuyersPurchase() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let phone = try await app.product(token: token, name: "Phone", price: 19_900, stock: 10)
            let created = try await Self.createSale(app, token: token, product: phone, quantity: 3)
            #expect(created.status == .created, "\(created.body)")
            let id = try #require((created.json["id"] as? NSNumber)?.int64Value)
            #expect((created.json["product"] as? [String: Any])?["name"] as? String == "Phone")
            #expect(created.json["status"] as? String == "active" && (created.json["remaining"] as? NSNumber)?.intValue == 3)
            #expect(try await app.stock(of: phone, token: token) == 7, "the sale's units left the product's stock")

            var orders: [String] = [], holds: [String] = []
            var buyers: [(id: String, token: String)] = []
            for name in ["alice", "bob", "carol", "dave"] { buyers.append(try await app.customer("\(name)@example.com")) }
            for buyer in buyers.prefix(3) {
                let reply = try await app.json(.post, "/api/v1/flash-sales/\(id)/purchases", #"{"buyer_id":"\#(buyer.id)"}"#, token: buyer.token)
                // A purchase is a hold: until when, and at what price.
                #expect(reply.status == .accepted && reply.json["status"] as? String == "held", "\(reply.body)")
                #expect((reply.json["price_minor"] as? NSNumber)?.intValue == 19_900 && reply.json["currency"] as? String == "USD")
                orders.append(try #require(reply.json["order_id"] as? String))
                holds.append(try #require(reply.json["hold_expires_at"] as? String))
            }
            let retry = try await app.json(.post, "/api/v1/flash-sales/\(id)/purchases", nil, token: buyers[0].token)
            #expect(retry.status == .accepted && retry.json["order_id"] as? String == orders[0], "a retry is the same purchase (the body may name nobody)")
            #expect(retry.json["hold_expires_at"] as? String == holds[0], "a retry is told the same deadline")
            // The deadline the buyer is told is the one stored, 10 minutes (the default) after admission.
            let mine = try await app.json(.get, "/api/v1/customers/me/orders", token: buyers[0].token).json["orders"] as? [[String: Any]] ?? []
            let stored = try #require(mine.first { $0["id"] as? String == orders[0] }?["hold_expires_at"] as? String)
            #expect(stored == holds[0], "told \(holds[0]), stored \(stored)")
            let deadline = try #require(try? Date(holds[0], strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)))
            #expect(abs(deadline.timeIntervalSinceNow - 600) < 30)
            let late = try await app.json(.post, "/api/v1/flash-sales/\(id)/purchases", "{}", token: buyers[3].token)
            #expect(late.status == .conflict && late.errorCode == "sold_out")

            let shown = try await app.json(.get, "/api/v1/flash-sales/\(id)")
            #expect(shown.json["status"] as? String == "sold_out" && (shown.json["remaining"] as? NSNumber)?.intValue == 0)
            let stats = try await app.json(.get, "/api/v1/flash-sales/\(id)/stats", token: token)
            #expect((stats.json["admitted"] as? NSNumber)?.intValue == 3 && (stats.json["persisted"] as? NSNumber)?.intValue == 3)
            #expect((stats.json["pending"] as? NSNumber)?.intValue == 0 && (stats.json["quantity"] as? NSNumber)?.intValue == 3)
            let page1 = try await app.json(.get, "/api/v1/flash-sales/\(id)/orders?limit=2", token: token)
            let first = try #require(page1.json["orders"] as? [[String: Any]])
            #expect(first.count == 2 && first[0]["buyer_id"] as? String == buyers[0].id && (first[0]["quantity"] as? NSNumber)?.intValue == 1)
            let cursor = try #require(page1.json["next_cursor"] as? String)
            let page2 = try await app.json(.get, "/api/v1/flash-sales/\(id)/orders?limit=2&cursor=\(cursor)", token: token)
            #expect((page2.json["orders"] as? [[String: Any]])?.compactMap { $0["order_id"] as? String } == [orders[2]])
            let list = try await app.json(.get, "/api/v1/flash-sales", token: token)
            #expect((list.json["flash_sales"] as? [[String: Any]])?.count == 1)
        }
    }

    @Test func limitsKeysAndWindows() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let phone = try await app.product(token: token, stock: 50)
            let sale = try #require((try await Self.createSale(app, token: token, product: phone, quantity: 10, limit: 2).json["id"] as? NSNumber)?.int64Value)
            let amina = try await app.customer("amina@example.com")
            func buy(_ key: String?) async throws -> TestApp.Reply {
                var headers: HTTPFields = [:]
                if let key { headers[.init("Idempotency-Key")!] = key }
                return try await app.send(.post, "/api/v1/flash-sales/\(sale)/purchases", body: ByteBuffer(string: #"{"buyer_id":"\#(amina.id)"}"#), token: amina.token, headers: headers)
            }
            let a = try await buy("a")
            let b = try await buy("b")
            #expect(a.status == .accepted && b.status == .accepted && a.json["order_id"] as? String != b.json["order_id"] as? String)
            #expect(try await buy("a").json["order_id"] as? String == a.json["order_id"] as? String)
            let c = try await buy("c")
            #expect(c.status == .conflict && c.errorCode == "limit_reached")
            let badKey = try await buy(String(repeating: "k", count: 65))
            #expect(badKey.status == .unprocessableContent)

            let later = try #require((try await Self.createSale(app, token: token, product: phone, quantity: 5, startsIn: 600).json["id"] as? NSNumber)?.int64Value)
            let early = try await app.json(.post, "/api/v1/flash-sales/\(later)/purchases", nil, token: amina.token)
            #expect(early.status == .conflict && early.errorCode == "not_started")
            #expect(try await app.json(.get, "/api/v1/flash-sales/\(later)").json["status"] as? String == "scheduled")
        }
    }

    /// A sale sells at its own price, shown beside the list price; the orders list counts what the
    /// buyer pays. A sale price above the list price, or not a positive amount, writes nothing.
    @Test func aSaleSellsAtItsPriceBesideTheListPrice() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let phone = try await app.product(token: token, name: "Phone", price: 19_900, stock: 10)
            func create(_ extra: String) async throws -> TestApp.Reply {
                try await app.json(.post, "/api/v1/flash-sales",
                    #"{"product_id":\#(phone),"quantity":2,"starts_at":"\#(Self.iso(-5))","ends_at":"\#(Self.iso(3_600))"\#(extra)}"#, token: token)
            }
            for bad in [#","sale_price_minor":19901"#, #","sale_price_minor":0"#, #","sale_price_minor":-5"#, #","sale_price_minor":1e30"#, #","sale_price_minor":"cheap""#] {
                let reply = try await create(bad)
                #expect(reply.status == .unprocessableContent && reply.errorCode == "validation_failed", "\(bad) → \(reply.body)")
            }
            let stock = try await app.stock(of: phone, token: token)
            #expect(try await app.count("flash_sales") == 0 && stock == 10, "nothing written")
            let plain = try await create("")
            #expect((plain.json["sale_price_minor"] as? NSNumber)?.int64Value == 19_900, "by default the product's price: \(plain.body)")
            let sale = try await create(#","sale_price_minor":14900"#)
            #expect(sale.status == .created, "\(sale.body)")
            #expect((sale.json["sale_price_minor"] as? NSNumber)?.int64Value == 14_900)
            #expect(((sale.json["product"] as? [String: Any])?["price_minor"] as? NSNumber)?.int64Value == 19_900, "the list price")
            let id = try #require((sale.json["id"] as? NSNumber)?.int64Value)
            let buyer = try await app.customer("buyer@example.com")
            #expect(try await app.json(.post, "/api/v1/flash-sales/\(id)/purchases", "{}", token: buyer.token).status == .accepted)
            let orders = try await app.json(.get, "/api/v1/orders?source=flash_sale", token: token)
            let listed = try #require((orders.json["orders"] as? [[String: Any]])?.first, "\(orders.body)")
            #expect((listed["total_minor"] as? NSNumber)?.int64Value == 14_900, "the order is at the sale price: \(listed)")
        }
    }

    @Test func badRequestsAreRefusedAndWriteNothing() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let other = try await app.vendorToken("other")
            let phone = try await app.product(token: token, stock: 5)
            let cases: [(String, String)] = [
                (#"{"product_id":\#(phone),"quantity":6,"starts_at":"\#(Self.iso(0))","ends_at":"\#(Self.iso(60))"}"#, "insufficient_stock"),
                (#"{"product_id":\#(phone),"quantity":0,"starts_at":"\#(Self.iso(0))","ends_at":"\#(Self.iso(60))"}"#, "validation_failed"),
                (#"{"product_id":\#(phone),"quantity":1,"starts_at":"yesterday","ends_at":"\#(Self.iso(60))"}"#, "validation_failed"),
                (#"{"product_id":\#(phone),"quantity":1,"starts_at":"\#(Self.iso(60))","ends_at":"\#(Self.iso(30))"}"#, "validation_failed"),
                (#"{"product_id":\#(phone),"quantity":1,"starts_at":"\#(Self.iso(-90))","ends_at":"\#(Self.iso(-30))"}"#, "validation_failed"),
                (#"{"product_id":\#(phone),"quantity":1,"per_buyer_limit":0,"starts_at":"\#(Self.iso(0))","ends_at":"\#(Self.iso(60))"}"#, "validation_failed"),
                (#"{"quantity":1}"#, "validation_failed"),
            ]
            for (body, code) in cases {
                let reply = try await app.json(.post, "/api/v1/flash-sales", body, token: token)
                #expect(reply.status.code >= 400 && reply.status.code < 500 && reply.errorCode == code, "\(body) → \(reply.body)")
            }
            let foreign = try await app.json(.post, "/api/v1/flash-sales", #"{"product_id":\#(phone),"quantity":1,"starts_at":"\#(Self.iso(0))","ends_at":"\#(Self.iso(60))"}"#, token: other)
            #expect(foreign.status == .unprocessableContent, "another vendor's product")
            #expect(try await app.json(.post, "/api/v1/flash-sales", "{}").status == .unauthorized)
            #expect(try await app.count("flash_sales") == 0)
            #expect(try await app.stock(of: phone, token: token) == 5)

            let sale = try #require((try await Self.createSale(app, token: token, product: phone, quantity: 2).json["id"] as? NSNumber)?.int64Value)
            let buyer = try await app.customer("buyer@example.com")
            for body in [#"{"buyer_id":""}"#, #"{"buyer_id":"has space"}"#, "nope", #"{"buyer_id":42}"#, #"{"buyer_id":"someone-else"}"#] {
                let reply = try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", body, token: buyer.token)
                #expect(reply.status.code >= 400 && reply.status.code < 500, "\(body)")
            }
            #expect(try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", "{}").status == .unauthorized, "no customer, no purchase")
            #expect(try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", "{}", token: token).status == .unauthorized, "a vendor is not a customer")
            #expect(try await app.json(.post, "/api/v1/flash-sales/999/purchases", nil, token: buyer.token).errorCode == "not_found")
            #expect(try await app.count("flash_sale_orders") == 0)
            // Another vendor cannot read this sale's orders or stats.
            for path in ["orders", "stats", "events"] {
                #expect(try await app.json(.get, "/api/v1/flash-sales/\(sale)/\(path)", token: other).status == .notFound, "\(path)")
            }
        }
    }
}
