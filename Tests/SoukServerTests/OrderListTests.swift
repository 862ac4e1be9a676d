import Foundation
import HTTPTypes
import Hummingbird
import SoukTesting
import Testing

/// The vendor's one orders list and the customer's "My orders": store-link orders, checkouts and
/// flash-sale orders together, on SQLite and PostgreSQL.
@Suite("Order lists")
struct OrderListTests {
    @Test(arguments: TestBackend.allCases)
    func theThreeKindsOfOrderInOneList(backend: TestBackend) async throws {
        try await TestApp.run(backend: backend) { app in
            let amina = try await app.vendorToken("amina")
            let yusuf = try await app.vendorToken("yusuf")
            let tea = try await app.product(token: amina, name: "Mint tea", price: 250, stock: 100)
            let ann = try await app.customer("ann@example.com", name: "Ann Customer")
            let bob = try await app.customer("bob@example.com", name: "Bob")

            // A guest's order through the store link (its name would be a formula in a spreadsheet).
            let guest = try await app.json(.post, "/api/v1/stores/amina/orders",
                #"{"customer":{"name":"=HYPERLINK(\"x\")","phone":"5550100","address":"1 Guest Road"},"items":[{"product_id":\#(tea),"quantity":2}]}"#)
            #expect(guest.status == .created, "\(guest.body)")
            // Ann's order through the store link, signed in: linked to her account.
            let annStore = try await app.json(.post, "/api/v1/stores/amina/orders",
                #"{"customer":{"name":"Ann C.","phone":"5550111","address":"2 Ann Street"},"items":[{"product_id":\#(tea),"quantity":1}]}"#, token: ann.token)
            #expect(annStore.status == .created, "\(annStore.body)")
            // Ann's checkout, paid with store credit.
            #expect(try await app.json(.post, "/api/v1/wallets/\(ann.id)/credit", #"{"amount_minor":10000}"#, token: amina).status == .ok)
            let checkout = try await app.json(.post, "/api/v1/checkouts", #"{"items":[{"product_id":\#(tea),"quantity":3}]}"#, token: ann.token)
            #expect(checkout.status == .accepted, "\(checkout.body)")
            let checkoutID = try #require(checkout.json["order_id"] as? String)
            // Ann's flash-sale admission.
            let sale = try #require((try await FlashSaleAPITests.createSale(app, token: amina, product: tea, quantity: 5).json["id"] as? NSNumber)?.int64Value)
            let admitted = try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", "{}", token: ann.token)
            #expect(admitted.status == .accepted, "\(admitted.body)")
            let flashID = try #require(admitted.json["order_id"] as? String)
            #expect(!flashID.contains("@") && !flashID.contains("ann"), "a flash-sale order id carries no personal data: \(flashID)")

            // The vendor sees all four, newest first, each with its source.
            let all = try #require(try await app.json(.get, "/api/v1/orders", token: amina).json["orders"] as? [[String: Any]])
            #expect(all.compactMap { $0["source"] as? String } == ["flash_sale", "checkout", "store", "store"], "\(all)")
            let byID = Dictionary(uniqueKeysWithValues: all.map { ($0["id"] as? String ?? "", $0) })
            let flash = try #require(byID[flashID])
            #expect(flash["status"] as? String == "held" && flash["payment_status"] as? String == "unpaid")
            #expect((flash["customer"] as? [String: Any])?["name"] as? String == "Ann Customer")
            #expect((flash["customer"] as? [String: Any])?["contact"] as? String == "ann@example.com")
            #expect((flash["items"] as? [[String: Any]])?.first?["name"] as? String == "Mint tea")
            let shownCheckout = try #require(byID[checkoutID])
            #expect((shownCheckout["total_minor"] as? NSNumber)?.intValue == 750 && ["held", "paid"].contains(shownCheckout["payment_status"] as? String))
            #expect((shownCheckout["items"] as? [[String: Any]])?.first?["quantity"] as? Int == 3)
            let guestOrder = try #require(all.last)
            #expect((guestOrder["customer"] as? [String: Any])?["contact"] as? String == "5550100")
            #expect((guestOrder["customer"] as? [String: Any])?["id"] == nil || (guestOrder["customer"] as? [String: Any])?["id"] is NSNull)
            #expect(guestOrder["payment_status"] as? String == "on_delivery" && guestOrder["number"] is NSNumber)

            // Filters: by source, status and text (reference, name or email).
            func ids(_ query: String, token: String = amina) async throws -> [String] {
                let reply = try await app.json(.get, "/api/v1/orders?\(query)", token: token)
                #expect(reply.status == .ok, "\(query): \(reply.body)")
                return (reply.json["orders"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            }
            #expect(try await ids("source=checkout") == [checkoutID])
            #expect(try await ids("source=store&status=placed").count == 2)
            #expect(try await ids("q=ANN@EXAMPLE").count == 3, "Ann's email finds her three orders, in any case")
            #expect(try await ids("q=hyperlink").count == 1)
            #expect(try await ids("q=\(flashID.prefix(6))").contains(flashID))
            #expect(try await ids("q=%25").isEmpty, "a % is a character, not a wildcard")
            #expect(try await ids("q=Customer").count == 2, "the text is matched as typed, whatever its case: Ann Customer's checkout and flash-sale orders")
            for bad in ["source=shop", "status=lost", "cursor=12", "limit=0", "limit=101"] {
                let reply = try await app.json(.get, "/api/v1/orders?\(bad)", token: amina)
                #expect(reply.status == .unprocessableContent && reply.errorCode == "validation_failed", "\(bad): \(reply.body)")
            }
            // Pages of one walk the list once.
            var walked: [String] = []
            var cursor = ""
            repeat {
                let page = try await app.json(.get, "/api/v1/orders?limit=1\(cursor.isEmpty ? "" : "&cursor=\(cursor)")", token: amina)
                walked += (page.json["orders"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                cursor = page.json["next_cursor"] as? String ?? ""
            } while !cursor.isEmpty && walked.count < 10
            #expect(walked == all.compactMap { $0["id"] as? String })

            // Another vendor sees none of them; Ann sees her three in "My orders", Bob none.
            #expect(try await ids("", token: yusuf).isEmpty)
            let mine = try await app.json(.get, "/api/v1/customers/me/orders", token: ann.token)
            let myOrders = try #require(mine.json["orders"] as? [[String: Any]])
            #expect(myOrders.compactMap { $0["source"] as? String } == ["flash_sale", "checkout", "store"])
            #expect(myOrders.allSatisfy { ($0["store"] as? [String: Any])?["username"] as? String == "amina" })
            #expect((try await app.json(.get, "/api/v1/customers/me/orders", token: bob.token).json["orders"] as? [Any])?.isEmpty == true)
            #expect(try await app.json(.get, "/api/v1/customers/me/orders").status == .unauthorized)
            #expect(try await app.json(.get, "/api/v1/customers/me/orders", token: amina).status == .unauthorized, "a vendor token is not a customer's")
            #expect(try await app.json(.get, "/api/v1/orders", token: ann.token).status == .unauthorized, "a customer token is not a vendor's")

            // The CSV export: every order, a header, and no formula.
            let csv = try await app.send(.get, "/api/v1/orders/export.csv", token: amina)
            #expect(csv.status == .ok && csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            let rows = csv.body.split(separator: "\r\n")
            #expect(rows.count == 5 && rows[0].hasPrefix("id,source,"), "\(csv.body)")
            #expect(csv.body.contains(#""'=HYPERLINK(""x"")""#), "a leading = is defused: \(csv.body)")
            #expect(try await app.send(.get, "/api/v1/orders/export.csv", token: yusuf).body.split(separator: "\r\n").count == 1)
            #expect(try await app.send(.get, "/api/v1/orders/export.csv").status == .unauthorized)
        }
    }

    /// The dashboard's Orders page is the same list, with its filters, a CSV download and the store
    /// orders' next steps; a bad filter is shown on the page.
    @Test func theDashboardShowsTheOneList() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina", password: "sesame1234")
            let tea = try await app.product(token: token, name: "Mint tea", price: 250, stock: 100)
            let ann = try await app.customer("ann@example.com", name: "Ann Customer")
            let guest = try await app.json(.post, "/api/v1/stores/amina/orders",
                #"{"customer":{"name":"Youssef","phone":"5550100","address":"Fes"},"items":[{"product_id":\#(tea),"quantity":2}]}"#)
            let number = try #require((guest.json["id"] as? NSNumber)?.int64Value)
            #expect(try await app.json(.post, "/api/v1/wallets/\(ann.id)/credit", #"{"amount_minor":10000}"#, token: token).status == .ok)
            let checkoutID = try #require(try await app.json(.post, "/api/v1/checkouts", #"{"items":[{"product_id":\#(tea),"quantity":1}]}"#, token: ann.token).json["order_id"] as? String)
            let sale = try #require((try await FlashSaleAPITests.createSale(app, token: token, product: tea, quantity: 5).json["id"] as? NSNumber)?.int64Value)
            let flashID = try #require(try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", "{}", token: ann.token).json["order_id"] as? String)

            let vendor = Browser(app)
            _ = try await vendor.get("/login")
            _ = try await vendor.post("/login", [("username", "amina"), ("password", "sesame1234")])
            let page = try await vendor.get("/dashboard/orders")
            #expect(page.status == .ok)
            for text in ["Youssef", checkoutID, flashID, "store link", "checkout", "flash sale", "on delivery", "unpaid", "Ann Customer", "ann@example.com",
                         "/dashboard/orders/\(number)/status", "Download CSV"] {
                #expect(page.body.contains(text), "the Orders page shows \(text)")
            }
            let checkouts = try await vendor.get("/dashboard/orders?source=checkout")
            #expect(checkouts.body.contains(checkoutID) && !checkouts.body.contains(flashID) && !checkouts.body.contains("Youssef"))
            #expect(checkouts.body.contains("/dashboard/orders.csv?source=checkout"), "the download keeps the filter")
            let found = try await vendor.get("/dashboard/orders?q=youss")
            #expect(found.body.contains("Youssef") && !found.body.contains(checkoutID))
            let none = try await vendor.get("/dashboard/orders?q=nobody-at-all")
            #expect(none.body.contains("No order matches"))
            let bad = try await vendor.get("/dashboard/orders?source=shop")
            #expect(bad.status == .unprocessableContent && bad.body.contains("class=\"notice\"") && bad.body.contains("source must be one of"), "\(bad.body.suffix(600))")
            let csv = try await vendor.get("/dashboard/orders.csv?source=store")
            #expect(csv.status == .ok && csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(csv.body.split(separator: "\r\n").count == 2 && csv.body.contains("Youssef"))
            #expect(try await Browser(app).get("/dashboard/orders.csv").status != .ok, "no CSV without a login")
        }
    }

    /// A shopper signed in on the store pages: the order they place through the store form is theirs,
    /// "My orders" on the account page lists it, and its details come back to fill the next form in.
    @Test func aSignedInShoppersOrdersAndDetailsComeBack() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, name: "Mint tea", price: 250, stock: 100)
            let shopper = Browser(app)
            _ = try await shopper.get("/account/signup")
            let signedUp = try await shopper.post("/account/signup", [("name", "Salma"), ("email", "salma@example.com"), ("password", "password123")])
            #expect(signedUp.status == .found && shopper.cookies["souk_shopper"] == "1", "the page script's hint is set beside the session")
            let empty = try await shopper.get("/account")
            #expect(empty.body.contains("My orders") && empty.body.contains("No orders yet"))
            let me = try await app.send(.get, "/api/v1/customers/me", headers: [.cookie: "souk_customer=\(shopper.cookies["souk_customer"] ?? "")"])
            #expect(me.json["name"] as? String == "Salma" && me.json["shipping"] == nil, "no details before a first order: \(me.body)")

            _ = try await shopper.get("/s/amina")
            let placed = try await shopper.post("/s/amina/orders", [("qty_\(tea)", "2"), ("name", "Salma B."), ("phone", "+212 611 000 000"), ("address", "3 Derb, Rabat")])
            #expect(placed.status == .found, "\(placed.body)")
            let reference = String(try #require(placed.headers[.location]).split(separator: "/").last ?? "")
            let account = try await shopper.get("/account")
            #expect(account.body.contains(reference) && account.body.contains("Store amina") && account.body.contains("2 × Mint tea") && account.body.contains("on delivery"))
            let details = try await app.send(.get, "/api/v1/customers/me", headers: [.cookie: "souk_customer=\(shopper.cookies["souk_customer"] ?? "")"])
            let shipping = try #require(details.json["shipping"] as? [String: Any], "\(details.body)")
            #expect(shipping["name"] as? String == "Salma B." && shipping["phone"] as? String == "+212 611 000 000" && shipping["address"] as? String == "3 Derb, Rabat")
            // A guest's order is nobody's.
            let guest = Browser(app)
            _ = try await guest.get("/s/amina")
            #expect(try await guest.post("/s/amina/orders", [("qty_\(tea)", "1"), ("name", "Guest"), ("phone", "5550100"), ("address", "x")]).status == .found)
            let orders = try #require(try await app.json(.get, "/api/v1/orders?source=store", token: token).json["orders"] as? [[String: Any]])
            #expect(orders.count == 2 && orders.filter { ($0["customer"] as? [String: Any])?["id"] is String }.count == 1)

            let out = try await shopper.post("/account/logout", [])
            #expect(out.status == .found && (shopper.cookies["souk_shopper"] ?? "").isEmpty, "signing out clears the hint")
        }
    }
}
