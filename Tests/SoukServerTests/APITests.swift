import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Testing

@Suite("JSON API")
struct APITests {
    @Test func healthzAnswersOnceServing() async throws {
        try await TestApp.run { app in
            let reply = try await app.json(.get, "/healthz")
            #expect(reply.status == .ok)
            #expect(reply.json["status"] as? String == "ok")
        }
    }

    @Test func vendorsSignUpLogInAndOut() async throws {
        try await TestApp.run { app in
            let created = try await app.json(.post, "/api/v1/vendors", #"{"username":"Amina","password":"sesame1234","store_name":"Amina's Souk"}"#)
            #expect(created.status == .created)
            #expect(created.json["username"] as? String == "amina")
            #expect(created.json["store_name"] as? String == "Amina's Souk")
            #expect(created.json["store_url"] as? String == "/s/amina")
            #expect(created.json["id"] is NSNumber)
            #expect(created.json["password"] == nil && !created.body.contains("sesame"))

            let taken = try await app.json(.post, "/api/v1/vendors", #"{"username":"amina","password":"other12345","store_name":"Copy"}"#)
            #expect(taken.status == .conflict && taken.errorCode == "username_taken")

            let invalid = try await app.json(.post, "/api/v1/vendors", #"{"username":"x","password":"short","store_name":""}"#)
            #expect(invalid.status == .unprocessableContent && invalid.errorCode == "validation_failed")
            #expect(invalid.errorFields == ["username", "password", "store_name"])

            let missing = try await app.json(.post, "/api/v1/vendors", #"{"username":"someone"}"#)
            #expect(missing.status == .unprocessableContent && missing.errorCode == "validation_failed")

            for wrong in [#"{"username":"amina","password":"wrong-password"}"#, #"{"username":"nobody","password":"sesame1234"}"#] {
                let denied = try await app.json(.post, "/api/v1/sessions", wrong)
                #expect(denied.status == .unauthorized && denied.errorCode == "unauthorized")
            }
            let login = try await app.json(.post, "/api/v1/sessions", #"{"username":"AMINA","password":"sesame1234"}"#)
            #expect(login.status == .created)
            let token = try #require(login.json["token"] as? String)
            #expect(try await app.json(.get, "/api/v1/vendors/me", token: token).json["username"] as? String == "amina")
            #expect(try await app.json(.delete, "/api/v1/sessions", token: token).status == .noContent)
            let after = try await app.json(.get, "/api/v1/vendors/me", token: token)
            #expect(after.status == .unauthorized && after.errorCode == "unauthorized")
        }
    }

    @Test func productsLifecycle() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let created = try await app.json(.post, "/api/v1/products",
                #"{"name":"Saffron","description":"1 g","price_minor":1499,"currency":"EUR","stock":25}"#, token: token)
            #expect(created.status == .created)
            #expect(created.json["name"] as? String == "Saffron")
            #expect((created.json["price_minor"] as? NSNumber)?.intValue == 1499)
            #expect(created.json["currency"] as? String == "EUR")
            #expect((created.json["stock"] as? NSNumber)?.intValue == 25)
            #expect(created.json["available"] as? Bool == true)
            #expect(created.json["status"] as? String == "active")
            #expect(created.json["created_at"] is String)
            let id = try #require((created.json["id"] as? NSNumber)?.int64Value)
            #expect(created.headers[.location] == "/api/v1/products/\(id)")

            let list = try await app.json(.get, "/api/v1/products", token: token)
            #expect((list.json["products"] as? [[String: Any]])?.count == 1)

            let patched = try await app.json(.patch, "/api/v1/products/\(id)", #"{"available":false,"stock":3}"#, token: token)
            #expect(patched.status == .ok)
            #expect(patched.json["available"] as? Bool == false && (patched.json["stock"] as? NSNumber)?.intValue == 3)
            #expect(patched.json["name"] as? String == "Saffron")

            let empty = try await app.json(.patch, "/api/v1/products/\(id)", "{}", token: token)
            #expect(empty.status == .unprocessableContent && empty.errorCode == "validation_failed")
            let bad = try await app.json(.patch, "/api/v1/products/\(id)", #"{"price_minor":-5,"currency":"XXX","stock":-1}"#, token: token)
            #expect(bad.status == .unprocessableContent && bad.errorFields == ["price_minor", "currency", "stock"])
            let wrongType = try await app.json(.patch, "/api/v1/products/\(id)", #"{"stock":"many"}"#, token: token)
            #expect(wrongType.status == .unprocessableContent && wrongType.errorFields == ["stock"])

            #expect(try await app.json(.get, "/api/v1/products/\(id)", token: token).status == .ok)
            #expect(try await app.json(.delete, "/api/v1/products/\(id)", token: token).status == .noContent)
            let gone = try await app.json(.get, "/api/v1/products/\(id)", token: token)
            #expect(gone.status == .notFound && gone.errorCode == "not_found")
            #expect(try await app.json(.get, "/api/v1/products/not-a-number", token: token).status == .notFound)
        }
    }

    @Test func vendorRoutesNeedAValidToken() async throws {
        try await TestApp.run { app in
            let routes: [(HTTPRequest.Method, String)] = [
                (.get, "/api/v1/products"), (.post, "/api/v1/products"), (.get, "/api/v1/products/1"), (.patch, "/api/v1/products/1"),
                (.delete, "/api/v1/products/1"), (.get, "/api/v1/orders"), (.get, "/api/v1/orders/1"), (.patch, "/api/v1/orders/1"),
                (.get, "/api/v1/vendors/me"), (.delete, "/api/v1/sessions"),
            ]
            for (method, uri) in routes {
                for token in [nil, "forged-token", String(repeating: "x", count: 5_000)] {
                    let reply = try await app.json(method, uri, "{}", token: token)
                    #expect(reply.status == .unauthorized && reply.errorCode == "unauthorized", "\(method) \(uri)")
                }
            }
        }
    }

    /// Invariant 8: vendor B gets 404 on vendor A's ids and changes nothing.
    @Test func aVendorSeesAndChangesOnlyItsOwnData() async throws {
        try await TestApp.run { app in
            let alice = try await app.vendorToken("alice")
            let bob = try await app.vendorToken("bob")
            let product = try await app.product(token: alice, name: "Tea", stock: 10)
            let order = try await app.json(.post, "/api/v1/stores/alice/orders",
                #"{"customer":{"name":"C","phone":"5550100","address":"x"},"items":[{"product_id":\#(product),"quantity":1}]}"#)
            let orderID = try #require((order.json["id"] as? NSNumber)?.int64Value)

            let attempts: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/api/v1/products/\(product)", nil), (.patch, "/api/v1/products/\(product)", #"{"name":"Mine now","stock":0}"#),
                (.delete, "/api/v1/products/\(product)", nil), (.get, "/api/v1/orders/\(orderID)", nil),
                (.patch, "/api/v1/orders/\(orderID)", #"{"status":"cancelled"}"#),
            ]
            for (method, uri, body) in attempts {
                let reply = try await app.json(method, uri, body, token: bob)
                #expect(reply.status == .notFound && reply.errorCode == "not_found", "\(method) \(uri)")
            }
            #expect((try await app.json(.get, "/api/v1/products", token: bob).json["products"] as? [Any])?.isEmpty == true)
            #expect((try await app.json(.get, "/api/v1/orders", token: bob).json["orders"] as? [Any])?.isEmpty == true)
            let mine = try await app.json(.get, "/api/v1/products/\(product)", token: alice)
            #expect(mine.json["name"] as? String == "Tea" && (mine.json["stock"] as? NSNumber)?.intValue == 9)
            #expect(try await app.json(.get, "/api/v1/orders/\(orderID)", token: alice).json["status"] as? String == "placed")
        }
    }

    @Test func theStoreListsAvailableProductsAndTakesOrders() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, name: "Tea", price: 250, stock: 5)
            _ = try await app.product(token: token, name: "Hidden", stock: 5, available: false)

            let store = try await app.json(.get, "/api/v1/stores/amina")
            #expect(store.status == .ok && store.json["store_name"] as? String == "Store amina")
            #expect((store.json["products"] as? [[String: Any]])?.map { $0["name"] as? String } == ["Tea"])
            #expect(try await app.json(.get, "/api/v1/stores/nobody").status == .notFound)

            let placed = try await app.json(.post, "/api/v1/stores/amina/orders",
                #"{"customer":{"name":"Youssef","phone":"+212 600 000 000","address":"Fes"},"items":[{"product_id":\#(tea),"quantity":2}]}"#)
            #expect(placed.status == .created)
            #expect(placed.json["status"] as? String == "placed")
            #expect((placed.json["total_minor"] as? NSNumber)?.intValue == 500)
            #expect(placed.json["currency"] as? String == "USD")
            #expect((placed.json["reference"] as? String)?.count == 10)
            let items = try #require(placed.json["items"] as? [[String: Any]])
            #expect(items.count == 1 && (items[0]["quantity"] as? NSNumber)?.intValue == 2 && items[0]["name"] as? String == "Tea")
            #expect(try await app.stock(of: tea, token: token) == 3)

            let tooMany = try await app.json(.post, "/api/v1/stores/amina/orders",
                #"{"customer":{"name":"Y","phone":"5550100","address":"Fes"},"items":[{"product_id":\#(tea),"quantity":4}]}"#)
            #expect(tooMany.status == .conflict && tooMany.errorCode == "insufficient_stock")
            #expect((tooMany.json["error"] as? [String: Any])?["message"] as? String == "Only 3 of Tea left; you asked for 4.")
            #expect(try await app.stock(of: tea, token: token) == 3)
            #expect(try await app.count("orders") == 1)
        }
    }

    /// Invariant 9: bad input gets a 4xx with a clear code, and nothing is written.
    @Test func badOrdersAreRefusedAndWriteNothing() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let other = try await app.vendorToken("other")
            let tea = try await app.product(token: token, name: "Tea", stock: 5)
            let foreign = try await app.product(token: other, name: "Foreign", stock: 5)
            let hidden = try await app.product(token: token, name: "Hidden", stock: 5, available: false)
            let customer = #""customer":{"name":"Y","phone":"5550100","address":"Fes"}"#
            let cases: [(String, HTTPResponse.Status, String)] = [
                ("not json", .badRequest, "malformed_request"),
                ("[1,2]", .badRequest, "malformed_request"),
                (#"{"#, .badRequest, "malformed_request"),
                (#"{\#(customer),"items":[]}"#, .unprocessableContent, "validation_failed"),
                (#"{\#(customer)}"#, .unprocessableContent, "validation_failed"),
                (#"{\#(customer),"items":[{"product_id":\#(tea),"quantity":-1}]}"#, .unprocessableContent, "validation_failed"),
                (#"{\#(customer),"items":[{"product_id":\#(tea),"quantity":0}]}"#, .unprocessableContent, "validation_failed"),
                (#"{\#(customer),"items":[{"product_id":\#(tea),"quantity":99999999999999999999999}]}"#, .unprocessableContent, "validation_failed"),
                (#"{\#(customer),"items":[{"product_id":\#(tea),"quantity":1.5}]}"#, .unprocessableContent, "validation_failed"),
                (#"{\#(customer),"items":[{"product_id":"\#(tea)","quantity":1}]}"#, .unprocessableContent, "validation_failed"),
                (#"{\#(customer),"items":[{"product_id":424242,"quantity":1}]}"#, .unprocessableContent, "unknown_product"),
                (#"{\#(customer),"items":[{"product_id":\#(tea),"quantity":1},{"product_id":\#(foreign),"quantity":1}]}"#, .unprocessableContent, "unknown_product"),
                (#"{\#(customer),"items":[{"product_id":\#(tea),"quantity":1},{"product_id":\#(hidden),"quantity":1}]}"#, .conflict, "product_unavailable"),
                (#"{\#(customer),"items":[{"product_id":\#(tea),"quantity":6}]}"#, .conflict, "insufficient_stock"),
                (#"{"customer":{"name":"\#(String(repeating: "n", count: 201))","phone":"5550100","address":"x"},"items":[{"product_id":\#(tea),"quantity":1}]}"#, .unprocessableContent, "validation_failed"),
                (#"{"customer":{"name":"","phone":"","address":""},"items":[{"product_id":\#(tea),"quantity":1}]}"#, .unprocessableContent, "validation_failed"),
                (#"{"customer":null,"items":[{"product_id":\#(tea),"quantity":1}]}"#, .unprocessableContent, "validation_failed"),
            ]
            for (body, status, code) in cases {
                let reply = try await app.json(.post, "/api/v1/stores/amina/orders", body)
                #expect(reply.status == status && reply.errorCode == code, "\(body.prefix(120)) → \(reply.status) \(reply.body.prefix(200))")
                #expect((reply.json["error"] as? [String: Any])?["message"] is String)
            }
            // Not UTF-8 at all.
            let binary = try await app.send(.post, "/api/v1/stores/amina/orders", body: ByteBuffer(bytes: [0x7B, 0xFF, 0xFE, 0x22, 0x7D]))
            #expect(binary.status == .badRequest && binary.errorCode == "malformed_request")
            // Larger than the body limit.
            let huge = try await app.send(.post, "/api/v1/stores/amina/orders", body: ByteBuffer(repeating: UInt8(ascii: " "), count: 200_000))
            #expect(huge.status == .contentTooLarge && huge.errorCode == "payload_too_large")

            #expect(try await app.count("orders") == 0)
            #expect(try await app.count("order_items") == 0)
            #expect(try await app.stock(of: tea, token: token) == 5)
            #expect(try await app.stock(of: foreign, token: other) == 5)
        }
    }

    @Test func aStoreOrderRetriedWithItsKeyIsPlacedOnce() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, name: "Tea", stock: 10)
            let body = ByteBuffer(string: #"{"customer":{"name":"Layla","phone":"5550100","address":"x"},"items":[{"product_id":\#(tea),"quantity":3}]}"#)
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "order-7f3a"]
            let first = try await app.send(.post, "/api/v1/stores/amina/orders", body: body, headers: key)
            let again = try await app.send(.post, "/api/v1/stores/amina/orders", body: body, headers: key)
            #expect(first.status == .created && again.status == .created, "\(again.body)")
            #expect((first.json["id"] as? NSNumber) == (again.json["id"] as? NSNumber) && first.json["reference"] as? String == again.json["reference"] as? String)
            #expect(try await app.stock(of: tea, token: token) == 7, "taken once")
            let other = ByteBuffer(string: #"{"customer":{"name":"Layla","phone":"5550100","address":"x"},"items":[{"product_id":\#(tea),"quantity":1}]}"#)
            let reused = try await app.send(.post, "/api/v1/stores/amina/orders", body: other, headers: key)
            #expect(reused.status == .unprocessableContent && reused.errorCode == "idempotency_key_reused")
            let bad = try await app.send(.post, "/api/v1/stores/amina/orders", body: other, headers: [HTTPField.Name("Idempotency-Key")!: String(repeating: "k", count: 65)])
            #expect(bad.status == .unprocessableContent && bad.errorFields == ["Idempotency-Key"])
        }
    }

    @Test func vendorsPageAndMoveTheirOrders() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, name: "Tea", stock: 100)
            var ids: [Int64] = []
            for index in 0..<5 {
                let reply = try await app.json(.post, "/api/v1/stores/amina/orders",
                    #"{"customer":{"name":"C\#(index)","phone":"5550100","address":"x"},"items":[{"product_id":\#(tea),"quantity":2}]}"#)
                ids.append(try #require((reply.json["id"] as? NSNumber)?.int64Value))
            }
            let page1 = try await app.json(.get, "/api/v1/orders?limit=2", token: token)
            #expect((page1.json["orders"] as? [[String: Any]])?.compactMap { ($0["number"] as? NSNumber)?.int64Value } == [ids[4], ids[3]])
            let cursor = try #require(page1.json["next_cursor"] as? String)
            let page2 = try await app.json(.get, "/api/v1/orders?limit=2&cursor=\(cursor)", token: token)
            #expect((page2.json["orders"] as? [[String: Any]])?.compactMap { ($0["number"] as? NSNumber)?.int64Value } == [ids[2], ids[1]])
            let page3 = try await app.json(.get, "/api/v1/orders?limit=2&cursor=\(try #require(page2.json["next_cursor"] as? String))", token: token)
            #expect((page3.json["orders"] as? [[String: Any]])?.count == 1)
            #expect(page3.json["next_cursor"] == nil || page3.json["next_cursor"] is NSNull)
            for query in ["limit=0", "limit=1000", "limit=abc", "cursor=-3", "cursor=x"] {
                let bad = try await app.json(.get, "/api/v1/orders?\(query)", token: token)
                #expect(bad.status == .unprocessableContent && bad.errorCode == "validation_failed", "\(query)")
            }

            let order = ids[0]
            let detail = try await app.json(.get, "/api/v1/orders/\(order)", token: token)
            #expect(detail.json["next_statuses"] as? [String] == ["confirmed", "cancelled"])
            #expect((detail.json["customer"] as? [String: Any])?["name"] as? String == "C0")
            let confirmed = try await app.json(.patch, "/api/v1/orders/\(order)", #"{"status":"confirmed"}"#, token: token)
            #expect(confirmed.status == .ok && confirmed.json["status"] as? String == "confirmed")
            let skip = try await app.json(.patch, "/api/v1/orders/\(order)", #"{"status":"delivered"}"#, token: token)
            #expect(skip.status == .conflict && skip.errorCode == "invalid_transition")
            let unknown = try await app.json(.patch, "/api/v1/orders/\(order)", #"{"status":"teleported"}"#, token: token)
            #expect(unknown.status == .unprocessableContent && unknown.errorCode == "validation_failed")
            #expect(try await app.stock(of: tea, token: token) == 90)
            let cancelled = try await app.json(.patch, "/api/v1/orders/\(order)", #"{"status":"cancelled"}"#, token: token)
            #expect(cancelled.status == .ok && cancelled.json["status"] as? String == "cancelled")
            #expect(try await app.stock(of: tea, token: token) == 92, "cancelling returns the stock")
            let again = try await app.json(.patch, "/api/v1/orders/\(order)", #"{"status":"cancelled"}"#, token: token)
            #expect(again.status == .conflict && again.errorCode == "invalid_transition")
            #expect(try await app.json(.get, "/api/v1/orders/999999", token: token).status == .notFound)
        }
    }

    @Test func unknownRoutesAndMethodsAnswerJSONErrors() async throws {
        try await TestApp.run { app in
            let missing = try await app.json(.get, "/api/v1/nothing-here")
            #expect(missing.status == .notFound && missing.errorCode == "not_found")
            let page = try await app.json(.get, "/nothing-here")
            #expect(page.status == .notFound && page.body.contains("<html"))
        }
    }

    /// Invariant 9 by brute force: random and mangled bodies at every writing route never get a 5xx.
    @Test func noInputCausesA5xx() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, stock: 1_000)
            let routes: [(HTTPRequest.Method, String)] = [
                (.post, "/api/v1/vendors"), (.post, "/api/v1/sessions"), (.post, "/api/v1/products"), (.patch, "/api/v1/products/\(tea)"),
                (.post, "/api/v1/stores/amina/orders"), (.patch, "/api/v1/orders/1"), (.post, "/signup"), (.post, "/login"),
                (.post, "/s/amina/orders"),
            ]
            let seeds = [
                #"{"username":"u","password":"p","store_name":"s","name":"n","price_minor":1,"currency":"USD","stock":1,"status":"confirmed","customer":{"name":"a","phone":"5550100","address":"b"},"items":[{"product_id":\#(tea),"quantity":1}]}"#,
                "csrf=x&username=a&password=b&qty_\(tea)=1&name=n&phone=5550100&address=x",
            ]
            var generator = SystemRandomNumberGenerator()
            for round in 0..<150 {
                var bytes = Array(seeds[round % 2].utf8)
                for _ in 0..<Int.random(in: 1...6, using: &generator) {
                    let position = Int.random(in: 0..<bytes.count, using: &generator)
                    switch Int.random(in: 0..<4, using: &generator) {
                    case 0: bytes[position] = UInt8.random(in: 0...255, using: &generator)
                    case 1: bytes.remove(at: position)
                    case 2: bytes.insert(contentsOf: Array(#"-99999999999999999999"#.utf8), at: position)
                    default: bytes.insert(contentsOf: Array(#"\u0000"#.utf8), at: position)
                    }
                    if bytes.isEmpty { bytes = [0x7B] }
                }
                let (method, uri) = routes[round % routes.count]
                let reply = try await app.send(method, uri, body: ByteBuffer(bytes: bytes), token: round % 3 == 0 ? nil : token)
                #expect(reply.status.code < 500, "\(method) \(uri) with \(String(decoding: bytes, as: UTF8.self)) → \(reply.status)")
            }
        }
    }
}
