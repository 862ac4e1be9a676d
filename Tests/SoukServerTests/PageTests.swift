import Foundation
import HTTPTypes
import Hummingbird
import Testing

@Suite("HTML pages")
struct PageTests {
    @Test func aVendorSignsUpAddsProductsAndSellsThroughTheStoreLink() async throws {
        try await TestApp.run { app in
            let vendor = Browser(app)
            let form = try await vendor.get("/signup")
            #expect(form.status == .ok && form.body.contains("name=\"csrf\""))
            #expect(!vendor.csrf.isEmpty && form.body.contains(vendor.csrf))
            let cookieHeader = try #require(form.headers[values: .setCookie].first { $0.hasPrefix("souk_csrf=") })
            #expect(cookieHeader.contains("HttpOnly") && cookieHeader.contains("SameSite=Strict"))

            // Field errors are shown on the form, with what was typed kept.
            let bad = try await vendor.post("/signup", [("username", "x"), ("password", "short"), ("store_name", "Amina's <Souk>")])
            #expect(bad.status == .unprocessableContent)
            #expect(bad.body.contains("Username must be 3 to 32 characters") && bad.body.contains("Password must be 8 to 72 bytes"))
            #expect(bad.body.contains("Amina&#39;s &lt;Souk&gt;") || bad.body.contains("Amina&#x27;s &lt;Souk&gt;"), "values are kept and escaped")

            let signup = try await vendor.post("/signup", [("username", "amina"), ("password", "sesame1234"), ("store_name", "Amina's Souk")])
            #expect(signup.status == .found && signup.headers[.location] == "/dashboard")
            let session = try #require(signup.headers[values: .setCookie].first { $0.hasPrefix("souk_session=") })
            #expect(session.contains("HttpOnly") && session.contains("SameSite=Lax"))
            #expect(try await vendor.get("/dashboard").body.contains("No products yet"))

            let invalid = try await vendor.post("/dashboard/products", [("name", ""), ("price", "12.345"), ("currency", "USD"), ("stock", "-2")])
            #expect(invalid.status == .unprocessableContent)
            #expect(invalid.body.contains("Price must be an amount such as 12.50") && invalid.body.contains("Stock must be between"))
            let added = try await vendor.post("/dashboard/products", [("name", "Saffron"), ("description", "Threads"), ("price", "14.99"), ("currency", "usd"), ("stock", "3"), ("available", "yes")])
            #expect(added.status == .found)
            let dashboard = try await vendor.get("/dashboard")
            #expect(dashboard.body.contains("Saffron") && dashboard.body.contains("14.99 USD"))
            let product = try #require(try await app.storage.products(vendorID: 1, availableOnly: false).first)
            #expect(product.price.minor == 1499 && product.stock == 3)

            // A customer orders through the store link.
            let customer = Browser(app)
            let store = try await customer.get("/s/amina")
            #expect(store.status == .ok && store.body.contains("Amina&#39;s Souk") || store.body.contains("Amina&#x27;s Souk"))
            #expect(store.body.contains("qty_\(product.id)"))
            let missingDetails = try await customer.post("/s/amina/orders", [("qty_\(product.id)", "1"), ("name", ""), ("phone", "12"), ("address", "")])
            #expect(missingDetails.status == .unprocessableContent && missingDetails.body.contains("Name must not be empty") && missingDetails.body.contains("Phone must be"))
            let tooMany = try await customer.post("/s/amina/orders", [("qty_\(product.id)", "5"), ("name", "Youssef"), ("phone", "+212 600 000 000"), ("address", "Fes")])
            #expect(tooMany.status == .conflict && tooMany.body.contains("Only 3 of Saffron left; you asked for 5."))
            #expect(tooMany.body.contains("Youssef"), "the customer's details are kept")
            #expect(store.body.contains(#"name="idempotency_key" value="" data-request-key"#), "the page's script names each order request")
            let orderForm = [("qty_\(product.id)", "2"), ("name", "Youssef"), ("phone", "+212 600 000 000"), ("address", "Fes"), ("idempotency_key", "form-7f3a")]
            let placed = try await customer.post("/s/amina/orders", orderForm)
            #expect(placed.status == .found)
            let location = try #require(placed.headers[.location])
            #expect(location.hasPrefix("/s/amina/orders/"))
            // Sent twice (a double click, a retry after a lost answer): the same order, once.
            let again = try await customer.post("/s/amina/orders", orderForm)
            #expect(again.status == .found && again.headers[.location] == location)
            #expect(try await app.storage.orders(vendorID: 1, before: nil, limit: 10).count == 1)
            let confirmation = try await customer.get(location)
            #expect(confirmation.status == .ok && confirmation.body.contains("Thank you, Youssef") && confirmation.body.contains("29.98 USD"))

            // The vendor sees it and moves it along.
            let orders = try await vendor.get("/dashboard/orders")
            #expect(orders.body.contains("Youssef") && orders.body.contains(String(location.split(separator: "/").last!)))
            let order = try #require(try await app.storage.orders(vendorID: 1, before: nil, limit: 1).first)
            #expect(try await vendor.post("/dashboard/orders/\(order.id)/status", [("status", "confirmed")]).status == .found)
            #expect(try await app.storage.order(id: order.id, vendorID: 1)?.status == .confirmed)
            let invalidMove = try await vendor.post("/dashboard/orders/\(order.id)/status", [("status", "placed")])
            #expect(invalidMove.status == .conflict && invalidMove.body.contains("cannot become placed"))

            // Toggling availability hides the product from the store.
            #expect(try await vendor.post("/dashboard/products/\(product.id)/toggle", []).status == .found)
            #expect(try await customer.get("/s/amina").body.contains("nothing for sale"))

            #expect(try await vendor.post("/logout", []).status == .found)
            let after = try await vendor.get("/dashboard")
            #expect(after.status == .found && after.headers[.location] == "/login")
        }
    }

    @Test func aProductIsEditedOnItsForm() async throws {
        try await TestApp.run { app in
            let vendor = Browser(app)
            _ = try await vendor.get("/signup")
            _ = try await vendor.post("/signup", [("username", "amina"), ("password", "sesame1234"), ("store_name", "Amina")])
            _ = try await vendor.post("/dashboard/products", [("name", "Tea"), ("price", "2.50"), ("currency", "EUR"), ("stock", "4"), ("available", "yes")])
            let product = try #require(try await app.storage.products(vendorID: 1, availableOnly: false).first)
            let form = try await vendor.get("/dashboard/products/\(product.id)/edit")
            #expect(form.status == .ok && form.body.contains("value=\"2.50\"") && form.body.contains("value=\"EUR\"") && form.body.contains("checked"))
            let invalid = try await vendor.post("/dashboard/products/\(product.id)", [("name", "Green tea"), ("price", "abc"), ("currency", "EUR"), ("stock", "4")])
            #expect(invalid.status == .unprocessableContent && invalid.body.contains("Price must be an amount") && invalid.body.contains("Green tea"))
            #expect(try await app.storage.product(id: product.id, vendorID: 1)?.name == "Tea", "nothing written")
            let saved = try await vendor.post("/dashboard/products/\(product.id)", [("name", "Green tea"), ("description", "Sencha"), ("price", "3"), ("currency", "EUR"), ("stock", "9")])
            #expect(saved.status == .found)
            let updated = try #require(try await app.storage.product(id: product.id, vendorID: 1))
            #expect(updated.name == "Green tea" && updated.price.minor == 300 && updated.stock == 9 && !updated.available && updated.description == "Sencha")
            #expect(try await vendor.post("/dashboard/products/\(product.id)/delete", []).status == .found)
            #expect(try await app.storage.product(id: product.id, vendorID: 1) == nil)
        }
    }

    @Test func formsWithoutTheCSRFTokenAreRefused() async throws {
        try await TestApp.run { app in
            let browser = Browser(app)
            _ = try await browser.get("/signup")
            for forged in ["", "wrong", String(repeating: "a", count: 43)] {
                let reply = try await browser.post("/signup", [("username", "amina"), ("password", "sesame1234"), ("store_name", "S")], csrf: forged)
                #expect(reply.status == .forbidden && reply.body.contains("expired or came from another site"))
            }
            #expect(try await app.count("vendors") == 0)
            // A fresh visitor with no cookie at all.
            let stranger = Browser(app)
            #expect(try await stranger.post("/login", [("username", "a"), ("password", "b")], csrf: "anything").status == .forbidden)
        }
    }

    @Test func loginShowsOneMessageForAnyWrongCredentials() async throws {
        try await TestApp.run { app in
            _ = try await app.vendorToken("amina", password: "sesame1234")
            let browser = Browser(app)
            _ = try await browser.get("/login")
            for (user, password) in [("amina", "wrong-password"), ("nobody", "sesame1234")] {
                let reply = try await browser.post("/login", [("username", user), ("password", password)])
                #expect(reply.status == .unauthorized && reply.body.contains("That username and password do not match."))
            }
            let ok = try await browser.post("/login", [("username", "amina"), ("password", "sesame1234")])
            #expect(ok.status == .found && ok.headers[.location] == "/dashboard")
            #expect(try await browser.get("/dashboard").status == .ok)

            // The session cookie is found by its exact name, in any Cookie field, among others.
            let session = try #require(browser.cookies["souk_session"])
            func dashboard(_ cookieFields: [String]) async throws -> HTTPResponse.Status {
                var headers: HTTPFields = [:]
                for field in cookieFields { headers.append(HTTPField(name: .cookie, value: field)) }
                return try await app.send(.get, "/dashboard", headers: headers).status
            }
            #expect(try await dashboard(["theme=dark;souk_session=\(session)"]) == .ok)
            #expect(try await dashboard(["theme=dark; lang=ar", "souk_session=\(session); x=1"]) == .ok)
            #expect(try await dashboard(["xsouk_session=\(session); souk_sessionx=\(session)"]) == .found)
            #expect(try await dashboard(["souk_session"]) == .found)
        }
    }

    @Test func dashboardPagesNeedALoginAndAreScopedToTheVendor() async throws {
        try await TestApp.run { app in
            let aliceToken = try await app.vendorToken("alice")
            let product = try await app.product(token: aliceToken, name: "Alice's tea")
            let anonymous = Browser(app)
            for path in ["/dashboard", "/dashboard/orders", "/dashboard/products/new", "/dashboard/products/\(product)/edit"] {
                let reply = try await anonymous.get(path)
                #expect(reply.status == .found && reply.headers[.location] == "/login", "\(path)")
            }
            let bob = Browser(app)
            _ = try await bob.get("/signup")
            _ = try await bob.post("/signup", [("username", "bob"), ("password", "sesame1234"), ("store_name", "Bob")])
            #expect(try await bob.get("/dashboard/products/\(product)/edit").status == .notFound)
            #expect(try await bob.post("/dashboard/products/\(product)/delete", []).status == .notFound)
            #expect(try await bob.post("/dashboard/products/\(product)", [("name", "Mine"), ("price", "1"), ("currency", "USD"), ("stock", "1")]).status == .notFound)
            #expect(try await app.stock(of: product, token: aliceToken) == 10)
            #expect(try await app.json(.get, "/api/v1/products/\(product)", token: aliceToken).json["name"] as? String == "Alice's tea")
        }
    }

    @Test func cookiesAreSecureExceptForPlainHTTPOnLoopback() async throws {
        try await TestApp.run { app in
            let local = try await app.send(.get, "/signup", headers: [.init("Host")!: "127.0.0.1:8080"])
            #expect(local.headers[values: .setCookie].allSatisfy { !$0.contains("Secure") })
            let proxied = try await app.send(.get, "/signup", headers: [.init("Host")!: "shop.example", .init("X-Forwarded-Proto")!: "https"])
            #expect(proxied.headers[values: .setCookie].allSatisfy { $0.contains("Secure") })
            #expect(proxied.headers[.init("X-Frame-Options")!] == "DENY")
        }
    }
}
