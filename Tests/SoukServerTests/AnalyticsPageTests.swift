import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import SoukCore
import SoukTesting
import Testing

@Suite("Analytics dashboard")
struct AnalyticsPageTests {
    @Test func theDashboardShowsTheVendorsLiveNumbersAndNobodyElses() async throws {
        try await TestApp.run { app in
            let vendor = Browser(app)
            _ = try await vendor.get("/signup")
            _ = try await vendor.post("/signup", [("username", "amina"), ("password", "sesame1234"), ("store_name", "Amina's Souk")])
            let token = try #require(try await app.json(.post, "/api/v1/sessions", #"{"username":"amina","password":"sesame1234"}"#).json["token"] as? String)
            let tea = try await app.product(token: token, name: "Mint tea", price: 450)
            for _ in 0..<4 { _ = try await app.send(.get, "/s/amina") }
            let order = #"{"customer":{"name":"Amina","phone":"+212600000000","address":"1 Rue"},"items":[{"product_id":\#(tea),"quantity":2}]}"#
            let placed = try await app.json(.post, "/api/v1/stores/amina/orders", order)
            #expect(placed.status == .created)
            let before = try await app.json(.get, "/api/v1/analytics", token: token)
            #expect(before.json["orders"] as? Int == 1 && (before.json["revenue"] as? [Any])?.isEmpty == true, "paid on delivery: no money taken yet")
            let number = try #require((placed.json["id"] as? NSNumber)?.int64Value)
            for status in ["confirmed", "shipped", "delivered"] {
                #expect(try await app.json(.patch, "/api/v1/orders/\(number)", #"{"status":"\#(status)"}"#, token: token).status == .ok)
            }

            let api = try await app.json(.get, "/api/v1/analytics", token: token)
            #expect(api.json["orders"] as? Int == 1)
            #expect((api.json["revenue"] as? [[String: Any]])?.first?["amount_minor"] as? Int == 900)
            #expect(((api.json["top_products"] as? [[String: Any]])?.first?["name"] as? String) == "Mint tea")
            #expect((api.json["orders_per_minute"] as? [Any])?.count == 60)

            let page = try await vendor.get("/dashboard/analytics")
            #expect(page.status == .ok && page.body.contains("data-live-analytics") && page.body.contains("Mint tea — 2") && page.body.contains("9.00 USD"))
            #expect(page.body.contains(#"<svg class="chart""#))

            #expect(try await app.json(.get, "/api/v1/analytics").status == .unauthorized)
            let stranger = try await app.vendorToken("bilal")
            #expect(try await app.json(.get, "/api/v1/analytics", token: stranger).json["orders"] as? Int == 0, "another vendor sees only its own")
            #expect(try await Browser(app).get("/dashboard/analytics").status == .found, "pages need a login")
        }
    }

    @Test func theEventStreamPushesThePanelFromARealServer() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-analytics-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let souk = try await SoukProcess.start(["run", "--data-dir", directory.path])
        defer { souk.stop() }
        let login = try await HTTPTestClient(baseURL: souk.baseURL).send("POST", "/api/v1/sessions", json: #"{"username":"demo","password":"demo1234"}"#)
        let token = try #require(login.json["token"] as? String)
        let stream = try await RawHTTP.read(souk.baseURL, path: "/dashboard/analytics/events", headers: ["Cookie": "souk_session=\(token)"], for: .milliseconds(2_500))
        #expect(stream.lowercased().contains("content-type: text/event-stream"), "\(stream.prefix(300))")
        #expect(stream.components(separatedBy: "event: analytics").count >= 2, "a panel at once, then every 2 s")
        #expect(stream.contains("data: <div class=\"stats\">") && stream.contains("Orders per minute"))
    }

    @Test func liveStreamsEndSoonAfterTheirSessionEnds() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-streams-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let souk = try await SoukProcess.start(["run", "--data-dir", directory.path])
        defer { souk.stop() }
        let client = HTTPTestClient(baseURL: souk.baseURL)
        let token = try #require(try await client.send("POST", "/api/v1/sessions", json: #"{"username":"demo","password":"demo1234"}"#).json["token"] as? String)
        let product = try await client.send("POST", "/api/v1/products", json: #"{"name":"Fig","price_minor":100,"currency":"USD","stock":5}"#, headers: ["Authorization": "Bearer \(token)"])
        let productID = try #require((product.json["id"] as? NSNumber)?.int64Value, "\(product.body)")
        let starts = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-5))
        let ends = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3_600))
        let sale = try await client.send("POST", "/api/v1/flash-sales", json: #"{"product_id":\#(productID),"quantity":2,"starts_at":"\#(starts)","ends_at":"\#(ends)","per_buyer_limit":1}"#,
                                         headers: ["Authorization": "Bearer \(token)"])
        let saleID = try #require((sale.json["id"] as? NSNumber)?.int64Value, "\(sale.body)")
        let analytics = try await RawHTTP.open(souk.baseURL, path: "/dashboard/analytics/events", headers: ["Cookie": "souk_session=\(token)"])
        let stats = try await RawHTTP.open(souk.baseURL, path: "/api/v1/flash-sales/\(saleID)/events", headers: ["Authorization": "Bearer \(token)"])
        defer { analytics.close(); stats.close() }
        try await Task.sleep(for: .seconds(1))
        #expect(analytics.text.contains("event: analytics") && stats.text.contains("event: stats"))
        #expect(try await client.send("DELETE", "/api/v1/sessions", headers: ["Authorization": "Bearer \(token)"]).status == 204)
        let loggedOut = ContinuousClock.now
        while ContinuousClock.now - loggedOut < .seconds(15), !(analytics.text.hasSuffix("0\r\n\r\n") && stats.text.hasSuffix("0\r\n\r\n")) {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(analytics.text.hasSuffix("0\r\n\r\n"), "the analytics stream ended within 15 s of the logout")
        #expect(stats.text.hasSuffix("0\r\n\r\n"), "the sale's stream ended within 15 s of the logout")
    }
}
