import Foundation
import Hummingbird
import SoukCore
import Testing

@Suite("Flash sale pages")
struct FlashSalePageTests {
    @Test func aVendorStartsASaleWatchesItAndBuyersBuyFromTheStorePage() async throws {
        try await TestApp.run(pageCache: InProcessPageCache()) { app in
            let vendor = Browser(app)
            _ = try await vendor.get("/signup")
            _ = try await vendor.post("/signup", [("username", "amina"), ("password", "sesame1234"), ("store_name", "Amina")])
            _ = try await vendor.post("/dashboard/products", [("name", "Lantern"), ("price", "45"), ("currency", "MAD"), ("stock", "10"), ("available", "yes")])
            let product = try #require(try await app.storage.products(vendorID: 1, availableOnly: false).first)
            let form = try await vendor.get("/dashboard/flash-sales")
            #expect(form.status == .ok && form.body.contains("Start a flash sale") && form.body.contains("Lantern (10 in stock)"))
            let visitor = Browser(app)
            #expect(!(try await visitor.get("/s/amina").body.contains("Flash sale:")), "no sale yet (and the page is now cached)")

            let invalid = try await vendor.post("/dashboard/flash-sales", [("product_id", "\(product.id)"), ("quantity", "50"), ("starts_in", "0"), ("duration", "60"), ("per_buyer_limit", "1")])
            #expect(invalid.status == .conflict && invalid.body.contains("Only 10 of Lantern left"))
            let created = try await vendor.post("/dashboard/flash-sales", [("product_id", "\(product.id)"), ("quantity", "2"), ("starts_in", "0"), ("duration", "60"), ("per_buyer_limit", "1")])
            #expect(created.status == .found)
            let live = try await vendor.get(try #require(created.headers[.location]))
            #expect(live.status == .ok && live.body.contains("data-live-sale") && live.body.contains("Lantern"))

            let store = try await visitor.get("/s/amina")
            #expect(store.body.contains("Flash sale: Lantern at 45.00 MAD") && store.body.contains("data-sale-ends"), "creating the sale refreshed the cached page")
            let saleID = 1
            let bought = try await visitor.post("/s/amina/flash-sales/\(saleID)", [("buyer_id", "+212600000001")])
            #expect(bought.status == .accepted && bought.body.contains("You got it") && bought.body.contains("\(saleID)-+212600000001-1"))
            let again = try await visitor.post("/s/amina/flash-sales/\(saleID)", [("buyer_id", "+212600000001")])
            #expect(again.body.contains("you had already been admitted"))
            _ = try await Browser(app).post("/s/amina/flash-sales/\(saleID)", [("buyer_id", "second")], csrf: nil)
            let other = Browser(app)
            _ = try await other.get("/s/amina")
            _ = try await other.post("/s/amina/flash-sales/\(saleID)", [("buyer_id", "second")])
            let soldOut = try await other.post("/s/amina/flash-sales/\(saleID)", [("buyer_id", "third")])
            #expect(soldOut.status == .conflict && soldOut.body.contains("Sold out"))
            let bad = try await other.post("/s/amina/flash-sales/\(saleID)", [("buyer_id", "not valid!")])
            #expect(bad.status == .unprocessableContent)
            #expect(try await other.post("/s/nobody/flash-sales/\(saleID)", []).status == .notFound)
            let script = try await app.send(.get, "/assets/souk.js")
            #expect(script.status == .ok && script.body.contains("EventSource") && script.headers[.contentType]?.hasPrefix("text/javascript") == true)
        }
    }
}
