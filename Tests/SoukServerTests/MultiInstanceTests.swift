import Foundation
import SoukTesting
import Testing

/// Two `souk serve` processes on one PostgreSQL and one Redis, as in production.
@Suite("Multi-instance (real binaries)")
struct MultiInstanceTests {
    /// Invariant 7: a product edited through instance A is never served stale by instance B once
    /// A's response has returned, with B's in-process layer warm before each edit; with the
    /// two-layer cache (the default with Redis) and with Redis alone (whose store page B's event
    /// loops read from Redis for a returning visitor).
    @Test(arguments: ["auto", "redis"])
    func anEditThroughOneInstanceIsNeverServedStaleByAnother(pageCache: String) async throws {
        let database = try await PostgresTestServer.shared.createDatabase(migrated: true)
        let redis = try await PrivateRedisServer()
        let environment = ["SOUK_DATABASE_URL": try PostgresTestServer.url(database: database), "SOUK_REDIS_URL": redis.url, "SOUK_PAGE_CACHE": pageCache]
        let a = try await SoukProcess.start(["serve"], environment: environment)
        let b = try await SoukProcess.start(["serve"], environment: environment)
        defer {
            a.stop()
            b.stop()
        }
        var viaA = HTTPTestClient(baseURL: a.baseURL)
        let signUp = try await viaA.send("POST", "/api/v1/vendors", json: #"{"username":"twin","password":"sesame1234","store_name":"Twin"}"#)
        let session = try await viaA.send("POST", "/api/v1/sessions", json: #"{"username":"twin","password":"sesame1234"}"#)
        let token = try #require(session.json["token"] as? String, "sign-up \(signUp.status) \(signUp.body); session \(session.status) \(session.body)")
        viaA.token = token
        // Sessions live in Redis: B knows a login made on A.
        let viaB = HTTPTestClient(baseURL: b.baseURL, token: token)
        #expect(try await viaB.send("GET", "/api/v1/vendors/me").json["username"] as? String == "twin")
        let created = try await viaA.send("POST", "/api/v1/products", json: #"{"name":"v0","price_minor":100,"currency":"USD","stock":1000}"#)
        let id = try #require((created.json["id"] as? NSNumber)?.int64Value)
        let visitor = HTTPTestClient(baseURL: b.baseURL)
        // A returning visitor's form-token cookie, which lets B answer the page on its event loop.
        let returning = ["Cookie": "souk_csrf=" + String(repeating: "t", count: 43)]

        for round in 1...30 {
            _ = try await visitor.send("GET", "/api/v1/stores/twin")  // warm B
            _ = try await visitor.send("GET", "/s/twin", headers: returning)
            let edit = try await viaA.send("PATCH", "/api/v1/products/\(id)", json: #"{"name":"v\#(round)","stock":\#(1000 - round)}"#)
            #expect(edit.status == 200)
            let json = try await visitor.send("GET", "/api/v1/stores/twin")
            let names = (json.json["products"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            #expect(names == ["v\(round)"], "round \(round): B served \(names ?? [])")
            let html = try await visitor.send("GET", "/s/twin", headers: returning)
            #expect(html.body.contains(">v\(round)<") && html.body.contains(">\(1000 - round)<"), "round \(round): B's HTML is stale")
        }
        // An order through B shows on A at once.
        _ = try await visitor.send("POST", "/api/v1/stores/twin/orders", json: #"{"customer":{"name":"C","phone":"5550100","address":"x"},"items":[{"product_id":\#(id),"quantity":7}]}"#)
        let onA = try await HTTPTestClient(baseURL: a.baseURL).send("GET", "/api/v1/stores/twin")
        #expect(((onA.json["products"] as? [[String: Any]])?.first?["stock"] as? NSNumber)?.intValue == 1000 - 30 - 7)
        try await PostgresTestServer.shared.dropDatabase(database)
    }
}
