import Foundation
import Hummingbird
import SoukCore
import Testing

@Suite("Store page cache (HTTP)")
struct StorePageCacheTests {
    @Test func repeatVisitorsGet304AndChangesShowAtOnce() async throws {
        let cache = InProcessPageCache()
        try await TestApp.run(pageCache: cache) { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, name: "Tea", stock: 5)

            let first = try await app.json(.get, "/api/v1/stores/amina")
            let etag = try #require(first.headers[.eTag])
            #expect(first.status == .ok && first.headers[.cacheControl] == "public, no-cache")
            #expect(cache.count == 1, "the JSON page is cached")
            let again = try await app.send(.get, "/api/v1/stores/amina", headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified && again.body.isEmpty)
            let weak = try await app.send(.get, "/api/v1/stores/amina", headers: [.ifNoneMatch: "\"other\", W/\(etag)"])
            #expect(weak.status == .notModified, "If-None-Match compares weakly (a compressing proxy sends W/…)")

            // Every kind of committed change is seen by the very next request.
            let changes: [(String, () async throws -> Void)] = [
                ("rename", { _ = try await app.json(.patch, "/api/v1/products/\(tea)", #"{"name":"Green tea"}"#, token: token) }),
                ("order", { _ = try await app.json(.post, "/api/v1/stores/amina/orders", #"{"customer":{"name":"C","phone":"5550100","address":"x"},"items":[{"product_id":\#(tea),"quantity":2}]}"#) }),
                ("new product", { _ = try await app.product(token: token, name: "Jam") }),
                ("hide", { _ = try await app.json(.patch, "/api/v1/products/\(tea)", #"{"available":false}"#, token: token) }),
            ]
            var previous = etag
            for (name, change) in changes {
                try await change()
                let after = try await app.send(.get, "/api/v1/stores/amina", headers: [.ifNoneMatch: previous])
                #expect(after.status == .ok, "\(name): the old ETag no longer matches")
                previous = try #require(after.headers[.eTag])
            }
            let products = try await app.json(.get, "/api/v1/stores/amina").json["products"] as? [[String: Any]]
            #expect(products?.compactMap { $0["name"] as? String } == ["Jam"])
        }
    }

    @Test func cachedHTMLCarriesEachVisitorsOwnFormToken() async throws {
        let cache = InProcessPageCache()
        try await TestApp.run(pageCache: cache) { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, name: "Tea", stock: 5)
            let alice = Browser(app)
            let bob = Browser(app)
            let alicePage = try await alice.get("/s/amina")
            let bobPage = try await bob.get("/s/amina")
            #expect(cache.count == 1, "one rendering serves both")
            #expect(alice.csrf != bob.csrf)
            #expect(alicePage.body.contains("value=\"\(alice.csrf)\"") && bobPage.body.contains("value=\"\(bob.csrf)\""))
            #expect(!alicePage.body.contains("__SOUK_CSRF"))
            #expect(alicePage.headers[.eTag] != bobPage.headers[.eTag])
            #expect(alicePage.headers[.cacheControl] == "private, no-cache")
            // The token from the cached page is accepted.
            let placed = try await bob.post("/s/amina/orders", [("qty_\(tea)", "1"), ("name", "Bob"), ("phone", "5550100"), ("address", "x")])
            #expect(placed.status == .found)
            #expect(try await alice.get("/s/amina").body.contains(">4<"), "the order's stock change shows at once")
        }
    }

    @Test func everyFormOfACachedPageWithTwoSalesCarriesTheToken() async throws {
        let cache = InProcessPageCache()
        try await TestApp.run(pageCache: cache) { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, name: "Tea", stock: 5)
            let jam = try await app.product(token: token, name: "Jam", stock: 5)
            var sales: [Int64] = []
            for product in [tea, jam] {
                let sale = try await FlashSaleAPITests.createSale(app, token: token, product: product, quantity: 2)
                sales.append(try #require((sale.json["id"] as? NSNumber)?.int64Value, "\(sale.body)"))
            }
            _ = try await Browser(app).get("/s/amina")  // renders and caches the page
            let shopper = Browser(app)
            let page = try await shopper.get("/s/amina")
            #expect(cache.count == 1)
            let forms = page.body.components(separatedBy: "<form method=\"post\"").count - 1
            let tokens = page.body.components(separatedBy: "name=\"csrf\" value=\"\(shopper.csrf)\"").count - 1
            #expect(forms == 3 && tokens == 3, "two sales and the order form, each with the shopper's token: \(forms) forms, \(tokens) tokens")
            #expect(!page.body.contains("__SOUK_CSRF"))
            _ = try await shopper.post("/account/signup", [("name", "Shopper"), ("email", "shopper@example.com"), ("password", "password123")])
            for sale in sales {
                let bought = try await shopper.post("/s/amina/flash-sales/\(sale)", [])
                #expect(bought.status == .accepted, "sale \(sale): \(bought.status)")
            }
            let placed = try await shopper.post("/s/amina/orders", [("qty_\(tea)", "1"), ("name", "Sam"), ("phone", "5550100"), ("address", "x")])
            #expect(placed.status == .found)
        }
    }

    @Test func aFormTokenCookieThatIsNotOursNeverReachesThePage() async throws {
        try await TestApp.run(pageCache: InProcessPageCache()) { app in
            let token = try await app.vendorToken("amina")
            _ = try await app.product(token: token, name: "Tea", stock: 5)
            let evil = #""><svg onload=alert(1)>xxxxxxxxxxxxxxxxxxxx"#
            #expect(evil.utf8.count == 43)
            for path in ["/s/amina", "/login"] {
                let reply = try await app.send(.get, path, headers: [.cookie: "souk_csrf=\(evil)"])
                #expect(reply.status == .ok)
                #expect(!reply.body.contains("<svg"), "\(path): the cookie's markup is not in the page")
                #expect(reply.headers[values: .setCookie].contains { $0.hasPrefix("souk_csrf=") }, "\(path): a fresh token replaces it")
            }
        }
    }

    @Test func aLoggedInVendorSeesAFreshPageWithItsHeader() async throws {
        let cache = InProcessPageCache()
        try await TestApp.run(pageCache: cache) { app in
            let vendor = Browser(app)
            _ = try await vendor.get("/signup")
            _ = try await vendor.post("/signup", [("username", "amina"), ("password", "sesame1234"), ("store_name", "Amina")])
            let page = try await vendor.get("/s/amina")
            #expect(page.body.contains("Log out amina"))
            #expect(cache.count == 0)
            let visitor = try await Browser(app).get("/s/amina")
            #expect(!visitor.body.contains("Log out"))
        }
    }
}
