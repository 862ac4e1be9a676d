import Foundation
import Hummingbird
import SoukCore
import Testing

@Suite("Flash sale pages")
struct FlashSalePageTests {
    /// The vendor "amina", signed in through the pages, with one product: a lantern at 45 MAD, 10 in stock.
    static func vendorWithALantern(_ app: TestApp) async throws -> (Browser, Product) {
        let vendor = Browser(app)
        _ = try await vendor.get("/signup")
        _ = try await vendor.post("/signup", [("username", "amina"), ("password", "sesame1234"), ("store_name", "Amina")])
        _ = try await vendor.post("/dashboard/products", [("name", "Lantern"), ("price", "45"), ("currency", "MAD"), ("stock", "10"), ("available", "yes")])
        return (vendor, try #require(try await app.storage.products(vendorID: 1, availableOnly: false).first))
    }

    /// The time to pay is a term of the sale: set on the form (an error there names it), shown on
    /// the store page and on the sale's live page with the held, paid and expired counts.
    @Test func theTimeToPayIsSetOnTheFormAndShownToShoppers() async throws {
        try await TestApp.run { app in
            let (vendor, product) = try await Self.vendorWithALantern(app)
            let form = try await vendor.get("/dashboard/flash-sales")
            #expect(form.body.contains(#"name="hold_minutes""#) && form.body.contains(#"value="10""#), "ten minutes unless changed")
            let fields = [("product_id", "\(product.id)"), ("quantity", "2"), ("starts_in", "0"), ("duration", "60"), ("per_buyer_limit", "1")]
            let refused = try await vendor.post("/dashboard/flash-sales", fields + [("hold_minutes", "90")])
            #expect(refused.status == .unprocessableContent && refused.body.contains("Time to pay must be between 5 seconds and 1 hour") && refused.body.contains(#"value="90""#))
            let created = try await vendor.post("/dashboard/flash-sales", fields + [("hold_minutes", "2")])
            #expect(created.status == .found)
            #expect(try await app.storage.flashSale(id: 1)?.holdSeconds == 120)
            #expect(try await Browser(app).get("/s/amina").body.contains("pay within 2 minutes of winning"))
            let live = try await vendor.get(try #require(created.headers[.location]))
            #expect(live.body.contains(#"class="held">0<"#) && live.body.contains(#"class="expired">0<"#) && live.body.contains("Winners have 2 minutes to pay"))
        }
    }

    @Test func aVendorStartsASaleWatchesItAndBuyersBuyFromTheStorePage() async throws {
        try await TestApp.run(pageCache: InProcessPageCache()) { app in
            let (vendor, product) = try await Self.vendorWithALantern(app)
            let form = try await vendor.get("/dashboard/flash-sales")
            #expect(form.status == .ok && form.body.contains("Start a flash sale") && form.body.contains("Lantern: 45.00 MAD, 10 in stock"))
            let visitor = Browser(app)
            #expect(!(try await visitor.get("/s/amina").body.contains("Flash sale:")), "no sale yet (and the page is now cached)")

            let invalid = try await vendor.post("/dashboard/flash-sales", [("product_id", "\(product.id)"), ("quantity", "50"), ("starts_in", "0"), ("duration", "60"), ("per_buyer_limit", "1")])
            #expect(invalid.status == .conflict && invalid.body.contains("Only 10 of Lantern left"))
            for (price, message) in [("50", "Sale price must be at most the product&#39;s price, 45.00 MAD"), ("4.5.0", "Sale price must be an amount such as 12.50")] {
                let refused = try await vendor.post("/dashboard/flash-sales", [("product_id", "\(product.id)"), ("quantity", "2"), ("sale_price", price), ("starts_in", "0"), ("duration", "60"), ("per_buyer_limit", "1")])
                #expect(refused.status == .unprocessableContent && refused.body.contains(message) && refused.body.contains(#"value="\#(price)""#), "\(price): the error is on the form, the entry kept")
            }
            let unchanged = try await app.storage.product(id: product.id, vendorID: 1)?.stock
            #expect(try await app.count("flash_sales") == 0 && unchanged == 10, "nothing written")
            let created = try await vendor.post("/dashboard/flash-sales", [("product_id", "\(product.id)"), ("quantity", "2"), ("sale_price", "39.9"), ("starts_in", "0"), ("duration", "60"), ("per_buyer_limit", "1")])
            #expect(created.status == .found)
            let live = try await vendor.get(try #require(created.headers[.location]))
            #expect(live.status == .ok && live.body.contains("data-live-sale") && live.body.contains("Lantern"))

            let store = try await visitor.get("/s/amina")
            #expect(store.body.contains(#"Flash sale: Lantern at 39.90 MAD <s class="muted" aria-label="list price">45.00 MAD</s>"#) && store.body.contains("data-sale-ends"),
                    "creating the sale refreshed the cached page, which shows the sale price beside the list price")
            let saleID = 1
            // Not signed in: the sign-in form, which comes back to the store.
            let anonymous = try await visitor.post("/s/amina/flash-sales/\(saleID)", [])
            #expect(anonymous.status == .unauthorized && anonymous.body.contains("Sign in") && anonymous.body.contains(#"name="next" value="/s/amina""#))
            _ = try await visitor.get("/account/signup?next=/s/amina")
            let signedUp = try await visitor.post("/account/signup", [("name", "Visitor"), ("email", "visitor@example.com"), ("password", "password123"), ("next", "/s/amina")])
            #expect(signedUp.status == .found && signedUp.headers[.location] == "/s/amina" && visitor.cookies["souk_customer"] != nil, "\(signedUp.body)")
            let bought = try await visitor.post("/s/amina/flash-sales/\(saleID)", [])
            #expect(bought.status == .accepted && bought.body.contains("You got it") && bought.body.contains(/[0-9A-Z]{16}/) && !bought.body.contains("cu_"), "the order id is random, with nothing of the customer in it")
            let again = try await visitor.post("/s/amina/flash-sales/\(saleID)", [])
            #expect(again.body.contains("you had already been admitted"))
            _ = try await Browser(app).post("/s/amina/flash-sales/\(saleID)", [], csrf: nil)
            func shopper(_ email: String) async throws -> Browser {
                let browser = Browser(app)
                _ = try await browser.get("/account/signup")
                _ = try await browser.post("/account/signup", [("name", "Shopper"), ("email", email), ("password", "password123")])
                return browser
            }
            let other = try await shopper("other@example.com")
            #expect(try await other.post("/s/amina/flash-sales/\(saleID)", []).status == .accepted)
            let third = try await shopper("third@example.com")
            let soldOut = try await third.post("/s/amina/flash-sales/\(saleID)", [])
            #expect(soldOut.status == .conflict && soldOut.body.contains("Sold out"))
            #expect(try await other.post("/s/nobody/flash-sales/\(saleID)", []).status == .notFound)
            let script = try await app.send(.get, "/assets/souk.js")
            #expect(script.status == .ok && script.body.contains("EventSource") && script.headers[.contentType]?.hasPrefix("text/javascript") == true)
        }
    }
}
