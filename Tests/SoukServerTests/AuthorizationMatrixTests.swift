import Foundation
import HTTPTypes
import NIOCore
import SoukServer
import SoukSQL
import SoukTesting
import Testing

/// Every vendor operation of the API (read from the OpenAPI document, so a new one is covered the
/// day it is documented) called with no token, a bad token, a customer's token and another vendor's
/// token: 401 for the first three, 404 (or that vendor's own, empty data) for the third, and the first vendor's data
/// is exactly as it was afterwards.
@Suite("Authorization matrix")
struct AuthorizationMatrixTests {
    struct Operation: CustomStringConvertible {
        let method: String
        let path: String
        var description: String { "\(method) \(path)" }
    }

    /// Every operation of the OpenAPI document that the security scheme (`bearerAuth` for vendors,
    /// `customerAuth` for customers) opens: a new one is covered the day it is documented.
    static func operations(securedBy scheme: String) throws -> [Operation] {
        let document = try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as! [String: Any]
        var operations: [Operation] = []
        for (path, item) in document["paths"] as! [String: [String: Any]] {
            for (method, value) in item {
                guard let operation = value as? [String: Any], let security = operation["security"] as? [[String: Any]],
                      security.contains(where: { $0[scheme] != nil }) else { continue }
                operations.append(Operation(method: method.uppercased(), path: path))
            }
        }
        return operations.sorted { ($0.path, $0.method) < ($1.path, $1.method) }
    }

    static func vendorOperations() throws -> [Operation] { try operations(securedBy: "bearerAuth") }
    static func customerOperations() throws -> [Operation] { try operations(securedBy: "customerAuth") }

    /// A's data as A sees it, to compare before and after.
    static func snapshot(_ app: TestApp, token: String, product: Int64, order: Int64, sale: Int64) async throws -> [String] {
        var parts: [String] = []
        for path in ["/api/v1/products", "/api/v1/products/\(product)", "/api/v1/orders", "/api/v1/orders/\(order)", "/api/v1/flash-sales",
                     "/api/v1/flash-sales/\(sale)/stats", "/api/v1/flash-sales/\(sale)/orders", "/api/v1/wallets/carol@example.com", "/api/v1/coupons", "/api/v1/vendors/me"] {
            let reply = try await app.json(.get, path, token: token)
            #expect(reply.status == .ok, "A can still read \(path): \(reply.body)")
            parts.append("\(path) \(reply.body)")
        }
        return parts
    }

    @Test func noTokenABadTokenOrAnotherVendorsTokenChangesNothing() async throws {
        try await TestApp.run { app in
            let a = try await app.vendorToken("amina")
            let b = try await app.vendorToken("bilal")
            let product = try await app.product(token: a, name: "Tagine", stock: 50)
            let placed = try await app.json(.post, "/api/v1/stores/amina/orders",
                #"{"customer":{"name":"Ann","phone":"0123456789","address":"1 Road"},"items":[{"product_id":\#(product),"quantity":1}]}"#)
            let order = try #require((placed.json["id"] as? NSNumber)?.int64Value, "\(placed.body)")
            let sale = try #require((try await FlashSaleAPITests.createSale(app, token: a, product: product, quantity: 5).json["id"] as? NSNumber)?.int64Value)
            let carol = try await app.customer("carol@example.com")
            #expect(try await app.json(.post, "/api/v1/wallets/carol@example.com/credit", #"{"amount_minor":900}"#, token: a).status == .ok)
            let checkout = try await app.json(.post, "/api/v1/checkouts", #"{"items":[{"product_id":\#(product),"quantity":1}]}"#, token: carol.token)
            let checkoutID = try #require(checkout.json["order_id"] as? String, "\(checkout.body)")
            #expect(try await app.json(.post, "/api/v1/coupons", #"{"code":"amina10","kind":"percent","value":10,"min_order_minor":0,"max_uses":3}"#, token: a).status == .created)
            let before = try await Self.snapshot(app, token: a, product: product, order: order, sale: sale)

            let bodies: [String: String] = [
                "POST /api/v1/products": #"{"name":"Intruder","price_minor":100,"currency":"USD","stock":1}"#,
                "PATCH /api/v1/products/{id}": #"{"stock":1,"name":"Hijacked"}"#,
                "PATCH /api/v1/orders/{id}": #"{"status":"cancelled"}"#,
                "POST /api/v1/flash-sales": #"{"product_id":\#(product),"quantity":1,"starts_at":"\#(FlashSaleAPITests.iso(0))","ends_at":"\#(FlashSaleAPITests.iso(60))"}"#,
                "POST /api/v1/wallets/{buyer}/credit": #"{"amount_minor":100}"#,
                "POST /api/v1/coupons": #"{"code":"intruder","kind":"percent","value":90,"min_order_minor":0,"max_uses":3}"#,
            ]
            let operations = try Self.vendorOperations()
            #expect(operations.count >= 20, "\(operations)")
            for operation in operations {
                var path = operation.path.replacingOccurrences(of: "{buyer}", with: "carol@example.com")
                if path.hasPrefix("/api/v1/products/") { path = path.replacingOccurrences(of: "{id}", with: "\(product)") }
                if path.hasPrefix("/api/v1/orders/") { path = path.replacingOccurrences(of: "{id}", with: "\(order)") }
                if path.hasPrefix("/api/v1/checkouts/") { path = path.replacingOccurrences(of: "{id}", with: checkoutID) }
                if path.hasPrefix("/api/v1/flash-sales/") { path = path.replacingOccurrences(of: "{id}", with: "\(sale)") }
                #expect(!path.contains("{"), "a parameter of \(operation) has no value in this test")
                let key = "\(operation.method) \(operation.path)"
                var body = bodies[key].map { ByteBuffer(string: $0) }
                var headers: HTTPFields = [:]
                if key == "PUT /api/v1/products/{id}/image" {
                    body = ByteBuffer(bytes: TestImages.png(width: 64, height: 64))
                    headers[.contentType] = "image/png"
                }
                let method = HTTPRequest.Method(rawValue: operation.method)!
                let alsoCustomers = try Self.customerOperations().contains { $0.method == operation.method && $0.path == operation.path }
                for (who, token) in [("no token", nil), ("a bad token", "not-a-real-token-0123456789abcdef"), ("a customer", Optional(carol.token)), ("another vendor", Optional(b))] {
                    if who == "another vendor" && key == "DELETE /api/v1/sessions" { continue }  // B's own session: B may end it
                    if who == "a customer" && alsoCustomers { continue }  // carol's own checkout: the customer matrix below
                    let reply = try await app.send(method, path, body: body, token: token, headers: headers)
                    if who != "another vendor" {
                        #expect(reply.status == .unauthorized && reply.errorCode == "unauthorized", "\(operation) with \(who): \(reply.status) \(reply.body.prefix(200))")
                        continue
                    }
                    if operation.path.contains("{id}") || key == "POST /api/v1/flash-sales" {
                        #expect(reply.status == .notFound || (key == "POST /api/v1/flash-sales" && reply.status == .unprocessableContent),
                                "\(operation) with B's token on A's resource: \(reply.status) \(reply.body.prefix(200))")
                    } else {
                        // Collections and B's own records: B sees and changes only B's data.
                        #expect(reply.status.code < 300, "\(operation) with B's token: \(reply.status) \(reply.body.prefix(200))")
                        #expect(!reply.body.contains("Tagine") && !reply.body.contains("amina") && !reply.body.contains("AMINA10") && !reply.body.contains("\"balance_minor\":900"),
                                "\(operation) showed B something of A's: \(reply.body.prefix(300))")
                    }
                }
            }
            let after = try await Self.snapshot(app, token: a, product: product, order: order, sale: sale)
            for (old, new) in zip(before, after) where !old.hasPrefix("/api/v1/vendors/me") {
                #expect(old == new, "A's data changed:\nbefore \(old.prefix(400))\nafter  \(new.prefix(400))")
            }
        }
    }

    /// The dashboard's routes, read from the router: without a session every one sends to the login
    /// form (or refuses), with another vendor's session every route about the first vendor's things is
    /// 404 and the rest show only the other vendor's own data; the first vendor's data is unchanged.
    @Test func everyDashboardRouteNeedsALoginAndIsScopedToTheVendor() async throws {
        let routes = try await TestBackend.sqlite.withDatabase { database in
            let services = try await SoukServices(storage: SQLStorage(database: database), hasher: BcryptPasswordHasher(cost: 4), logger: TestLog.logger)
            return buildRouter(services).routes.map { ($0.method.rawValue, OpenAPIContractTests.openAPIPath($0.path.description)) }
                .filter { $0.1.hasPrefix("/dashboard") }
        }
        #expect(routes.count >= 15, "\(routes)")
        try await TestApp.run { app in
            let a = try await app.vendorToken("amina", password: "sesame1234")
            _ = try await app.customer("carol@example.com")
            let product = try await app.product(token: a, name: "Tagine", stock: 50)
            let placed = try await app.json(.post, "/api/v1/stores/amina/orders",
                #"{"customer":{"name":"Ann","phone":"0123456789","address":"1 Road"},"items":[{"product_id":\#(product),"quantity":1}]}"#)
            let order = try #require((placed.json["id"] as? NSNumber)?.int64Value)
            let sale = try #require((try await FlashSaleAPITests.createSale(app, token: a, product: product, quantity: 5).json["id"] as? NSNumber)?.int64Value)
            let before = try await Self.snapshot(app, token: a, product: product, order: order, sale: sale)

            let anonymous = Browser(app)
            _ = try await anonymous.get("/login")  // a CSRF cookie, so that what is tested is the login
            let bilal = Browser(app)
            _ = try await bilal.get("/signup")
            _ = try await bilal.post("/signup", [("username", "bilal"), ("password", "sesame1234"), ("store_name", "Bilal")])
            let fields = [("name", "Hijacked"), ("description", "x"), ("price", "1"), ("currency", "USD"), ("stock", "1"), ("status", "cancelled"),
                          ("product_id", "\(product)"), ("quantity", "1"), ("per_buyer_limit", "1"), ("starts_in", "0"), ("duration", "60")]
            for (method, template) in routes {
                var path = template
                if path.hasPrefix("/dashboard/products/") { path = path.replacingOccurrences(of: "{id}", with: "\(product)") }
                if path.hasPrefix("/dashboard/orders/") { path = path.replacingOccurrences(of: "{id}", with: "\(order)") }
                if path.hasPrefix("/dashboard/flash-sales/") { path = path.replacingOccurrences(of: "{id}", with: "\(sale)") }
                #expect(!path.contains("{"), "a parameter of \(method) \(template) has no value in this test")
                if path.hasSuffix("/events") { continue }  // streams: the same guard, checked by AnalyticsPageTests and FlashSalePageTests
                let stranger = method == "GET" ? try await anonymous.get(path) : try await anonymous.post(path, fields)
                #expect((stranger.status == .found && stranger.headers[.location] == "/login") || stranger.status == .unauthorized || stranger.status == .forbidden,
                        "\(method) \(path) without a session: \(stranger.status)")
                let other = method == "GET" ? try await bilal.get(path) : try await bilal.post(path, fields)
                if template.contains("{id}") {
                    #expect(other.status == .notFound, "\(method) \(path) with another vendor's session: \(other.status)")
                } else {
                    #expect(other.status.code < 500 && !other.body.contains("Tagine"), "\(method) \(path) showed another vendor's data: \(other.status)")
                }
            }
            let after = try await Self.snapshot(app, token: a, product: product, order: order, sale: sale)
            for (old, new) in zip(before, after) where !old.hasPrefix("/api/v1/vendors/me") {
                #expect(old == new, "A's data changed:\nbefore \(old.prefix(400))\nafter  \(new.prefix(400))")
            }
        }
    }

    /// Every customer operation (from the OpenAPI document) called as {anonymous, customer A,
    /// customer B, vendor X (A's store), vendor Y}: nobody but A reads A's orders or account, nobody
    /// but A buys or spends as A (naming A in the body is 403, no token 401), a vendor's token is not
    /// a customer's, and A's credit, orders and account are exactly as they were afterwards.
    @Test func onlyTheCustomerReadsTheirOrdersAndSpendsTheirCredit() async throws {
        try await TestApp.run { app in
            let x = try await app.vendorToken("xavier")
            let y = try await app.vendorToken("yasmin")
            let product = try await app.product(token: x, name: "Lamp", price: 100, stock: 50)
            let sale = try #require((try await FlashSaleAPITests.createSale(app, token: x, product: product, quantity: 5).json["id"] as? NSNumber)?.int64Value)
            let a = try await app.customer("ann@example.com", name: "Ann")
            let b = try await app.customer("bob@example.com", name: "Bob")
            var bToken = b.token
            #expect(try await app.json(.post, "/api/v1/wallets/\(a.id)/credit", #"{"amount_minor":900}"#, token: x).status == .ok)
            let checkout = try await app.json(.post, "/api/v1/checkouts", #"{"items":[{"product_id":\#(product),"quantity":1}]}"#, token: a.token)
            let checkoutID = try #require(checkout.json["order_id"] as? String, "\(checkout.body)")
            func snapshot() async throws -> [String] {
                [
                    try await app.json(.get, "/api/v1/wallets/\(a.id)", token: x).body,
                    try await app.json(.get, "/api/v1/customers/me/orders", token: a.token).body,
                    try await app.json(.get, "/api/v1/customers/me", token: a.token).body,
                    try await app.json(.get, "/api/v1/orders?source=checkout", token: x).body,
                ]
            }
            let before = try await snapshot()

            // Bodies that name A: another caller may not act as A with them.
            let namingA: [String: String] = [
                "POST /api/v1/checkouts": #"{"buyer_id":"\#(a.id)","items":[{"product_id":\#(product),"quantity":1}]}"#,
                "POST /api/v1/buy": #"{"user":"ann@example.com","stockid":\#(product),"quantity":1}"#,
                "POST /api/v1/flash-sales/{id}/purchases": #"{"buyer_id":"\#(a.id)"}"#,
            ]
            let operations = try Self.customerOperations()
            #expect(operations.count >= 8, "\(operations)")
            for operation in operations {
                let key = "\(operation.method) \(operation.path)"
                var path = operation.path
                if path.hasPrefix("/api/v1/flash-sales/") { path = path.replacingOccurrences(of: "{id}", with: "\(sale)") }
                path = path.replacingOccurrences(of: "{id}", with: checkoutID)
                let method = HTTPRequest.Method(rawValue: operation.method)!
                let body = namingA[key].map { ByteBuffer(string: $0) }
                let readsAsVendorToo = ["GET /api/v1/orders/{id}", "GET /api/v1/checkouts/{id}", "GET /api/v1/orders/{id}/events"].contains(key)
                for (who, token) in [("anonymous", nil), ("vendor Y", Optional(y)), ("vendor X", Optional(x)), ("customer B", Optional(bToken))] {
                    if key == "GET /api/v1/orders/{id}/events", who == "vendor X" { continue }  // a stream that stays open: its owner's case is tested elsewhere
                    let reply = try await app.send(method, path, body: body, token: token)
                    let answer = "\(operation) as \(who): \(reply.status) \(reply.body.prefix(200))"
                    switch who {
                    case "anonymous":
                        #expect(reply.status == .unauthorized && reply.errorCode == "unauthorized", "\(answer)")
                    case "vendor X" where readsAsVendorToo:
                        #expect(reply.status == .ok, "the store's vendor reads its order: \(answer)")
                    case "vendor X", "vendor Y":
                        #expect(reply.status == (readsAsVendorToo ? .notFound : .unauthorized), "\(answer)")
                    default:  // customer B
                        if key == "DELETE /api/v1/customers/sessions" {
                            // B ends B's own session, and signs in again for the operations after.
                            #expect(reply.status == .noContent, "\(answer)")
                            let login = try await app.json(.post, "/api/v1/customers/sessions", #"{"email":"bob@example.com","password":"password123"}"#)
                            bToken = try #require(login.json["token"] as? String)
                        } else if body != nil {
                            #expect(reply.status == .forbidden && reply.errorCode == "forbidden", "B may not buy as A: \(answer)")
                        } else if readsAsVendorToo {
                            #expect(reply.status == .notFound, "B may not read A's order: \(answer)")
                        } else {
                            #expect(!reply.body.contains(a.id) && !reply.body.contains("ann@example.com") && !reply.body.contains(checkoutID), "B saw A's: \(answer)")
                        }
                    }
                }
            }
            let after = try await snapshot()
            #expect(before == after, "A's credit, orders or account changed:\nbefore \(before)\nafter  \(after)")
        }
    }
}
