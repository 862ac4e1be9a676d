import Foundation
import SoukTesting
import Testing

/// The real `souk` binary, started as a person would start it.
@Suite("End to end (real binary)")
struct EndToEndTests {
    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Walks a new vendor's first sale: signup → add product → store page → order → vendor sees it.
    static func walkThrough(_ base: URL) async throws {
        var client = HTTPTestClient(baseURL: base)
        #expect(try await client.send("GET", "/healthz").status == 200)
        let username = "e2e\(UInt16.random(in: 0 ... .max))"
        #expect(try await client.send("POST", "/api/v1/vendors", json: #"{"username":"\#(username)","password":"sesame1234","store_name":"E2E Bazaar"}"#).status == 201)
        let login = try await client.send("POST", "/api/v1/sessions", json: #"{"username":"\#(username)","password":"sesame1234"}"#)
        client.token = try #require(login.json["token"] as? String)
        let product = try await client.send("POST", "/api/v1/products", json: #"{"name":"Brass lantern","price_minor":4500,"currency":"MAD","stock":4}"#)
        #expect(product.status == 201)
        let productID = try #require((product.json["id"] as? NSNumber)?.int64Value)

        let page = try await HTTPTestClient(baseURL: base).send("GET", "/s/\(username)")
        #expect(page.status == 200 && page.body.contains("E2E Bazaar") && page.body.contains("Brass lantern") && page.body.contains("45.00 MAD"))

        let order = try await HTTPTestClient(baseURL: base).send("POST", "/api/v1/stores/\(username)/orders",
            json: #"{"customer":{"name":"Layla","phone":"+212 611 111 111","address":"Marrakech"},"items":[{"product_id":\#(productID),"quantity":3}]}"#)
        #expect(order.status == 201 && (order.json["total_minor"] as? NSNumber)?.intValue == 13_500)

        let orders = try await client.send("GET", "/api/v1/orders")
        let listed = try #require(orders.json["orders"] as? [[String: Any]])
        #expect(listed.count == 1 && (listed[0]["customer"] as? [String: Any])?["name"] as? String == "Layla")
        #expect((try await client.send("GET", "/api/v1/products/\(productID)").json["stock"] as? NSNumber)?.intValue == 1)
    }

    @Test func embeddedModeServesTheDemoStoreAndAWholeSale() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let souk = try await SoukProcess.start(["--data-dir", directory.path])
        #expect(souk.outputText.contains("/s/demo") && souk.outputText.contains("/dashboard"))
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("souk.sqlite").path))

        let demo = try await HTTPTestClient(baseURL: souk.baseURL).send("GET", "/api/v1/stores/demo")
        let demoProducts = (demo.json["products"] as? [Any])?.count ?? 0
        #expect(demoProducts >= 15)
        let demoLogin = try await HTTPTestClient(baseURL: souk.baseURL).send("POST", "/api/v1/sessions", json: #"{"username":"demo","password":"demo1234"}"#)
        #expect(demoLogin.status == 201)
        let storePage = try await HTTPTestClient(baseURL: souk.baseURL).send("GET", "/s/demo")
        #expect(storePage.status == 200 && storePage.body.contains("Demo Souk"))

        try await Self.walkThrough(souk.baseURL)
        souk.stop()
        #expect(souk.process.termination == .exit(0), "SIGTERM shuts down cleanly")

        // A restart keeps everything and does not seed twice.
        let again = try await SoukProcess.start(["--data-dir", directory.path])
        defer { again.stop() }
        let after = try await HTTPTestClient(baseURL: again.baseURL).send("GET", "/api/v1/stores/demo")
        #expect((after.json["products"] as? [Any])?.count == demoProducts)
    }

    @Test func postgresModeMigratesSeedsAndServes() async throws {
        let name = try await PostgresTestServer.shared.createDatabase(migrated: false)
        let environment = ["SOUK_DATABASE_URL": try PostgresTestServer.url(database: name)]
        let refused = try await SoukProcess.run(["serve", "--port", "0"], environment: environment)
        #expect(refused.status != 0 && refused.output.contains("souk migrate"), "\(refused.output)")

        let dryRun = try await SoukProcess.run(["migrate", "--dry-run"], environment: environment)
        #expect(dryRun.status == 0 && dryRun.output.contains("pending: 1 ") && dryRun.output.contains("pending: 3 "))
        let migrate = try await SoukProcess.run(["migrate"], environment: environment)
        #expect(migrate.status == 0 && migrate.output.contains("applied: 3 "), "\(migrate.output)")
        #expect(try await SoukProcess.run(["migrate"], environment: environment).output.contains("Already up to date"))
        let seed = try await SoukProcess.run(["seed"], environment: environment)
        #expect(seed.status == 0 && seed.output.contains("Seeded"), "\(seed.output)")

        let souk = try await SoukProcess.start(["serve"], environment: environment)
        try await Self.walkThrough(souk.baseURL)
        #expect(try await HTTPTestClient(baseURL: souk.baseURL).send("GET", "/s/demo").body.contains("Demo Souk"))
        souk.stop()
        try await PostgresTestServer.shared.dropDatabase(name)
    }

    @Test func invalidSettingsAreAllReportedAndSoukExitsNonZero() async throws {
        let result = try await SoukProcess.run(["serve"], environment: [
            "SOUK_HTTP_PORT": "eighty", "SOUK_LOG_LEVEL": "loud", "SOUK_DATABASE_URL": "mysql://db/souk", "SOUK_REDIS_URL": "http://x",
        ])
        #expect(result.status == 2)
        for name in ["SOUK_HTTP_PORT", "SOUK_LOG_LEVEL", "SOUK_DATABASE_URL", "SOUK_REDIS_URL"] {
            #expect(result.output.contains(name), "\(name) in \(result.output)")
        }
        // A flag overrides the environment.
        let flagged = try await SoukProcess.run(["serve", "--port", "70000"], environment: ["SOUK_HTTP_PORT": "8080"])
        #expect(flagged.status == 2 && flagged.output.contains("\"70000\""))
    }

    /// Invariant 3 across a crash: orders racing while the server is killed with SIGKILL leave stock
    /// and orders consistent: every unit is either still in stock or in exactly one persisted order,
    /// and every order the client was told about exists.
    @Test(arguments: TestBackend.allCases)
    func killingTheServerMidSaleLosesNoOrderAndNoStock(backend: TestBackend) async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var environment: [String: String] = [:]
        var arguments = ["--data-dir", directory.path]
        var postgresName: String?
        if backend == .postgres {
            let name = try await PostgresTestServer.shared.createDatabase(migrated: true)
            postgresName = name
            environment["SOUK_DATABASE_URL"] = try PostgresTestServer.url(database: name)
            arguments = ["serve"]
        }
        let first = try await SoukProcess.start(arguments, environment: environment)
        var vendor = HTTPTestClient(baseURL: first.baseURL)
        _ = try await vendor.send("POST", "/api/v1/vendors", json: #"{"username":"crash","password":"sesame1234","store_name":"Crash"}"#)
        vendor.token = try await vendor.send("POST", "/api/v1/sessions", json: #"{"username":"crash","password":"sesame1234"}"#).json["token"] as? String
        let created = try await vendor.send("POST", "/api/v1/products", json: #"{"name":"Lamp","price_minor":100,"currency":"USD","stock":300}"#)
        let productID = try #require((created.json["id"] as? NSNumber)?.int64Value)

        let base = first.baseURL
        let confirmed = try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var references: [String] = []
                    for index in 0..<40 {
                        let reply = try? await HTTPTestClient(baseURL: base).send("POST", "/api/v1/stores/crash/orders",
                            json: #"{"customer":{"name":"W\#(worker)-\#(index)","phone":"5550100","address":"x"},"items":[{"product_id":\#(productID),"quantity":1}]}"#)
                        guard let reply else { break }  // the server is gone
                        if reply.status == 201, let reference = reply.json["reference"] as? String { references.append(reference) }
                    }
                    return references
                }
            }
            try await Task.sleep(for: .milliseconds(400))
            first.kill9()
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }

        let second = try await SoukProcess.start(arguments, environment: environment)
        defer { second.stop() }
        var after = HTTPTestClient(baseURL: second.baseURL)
        after.token = try await after.send("POST", "/api/v1/sessions", json: #"{"username":"crash","password":"sesame1234"}"#).json["token"] as? String
        var persisted: [String] = []
        var cursor = ""
        repeat {
            let page = try await after.send("GET", "/api/v1/orders?limit=100\(cursor.isEmpty ? "" : "&cursor=\(cursor)")")
            persisted += (page.json["orders"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            cursor = page.json["next_cursor"] as? String ?? ""
        } while !cursor.isEmpty
        let stock = (try await after.send("GET", "/api/v1/products/\(productID)").json["stock"] as? NSNumber)?.intValue
        #expect(Set(confirmed).isSubset(of: Set(persisted)), "every order a buyer was told about survived")
        #expect(stock.map { $0 + persisted.count } == 300, "stock \(stock ?? -1) + \(persisted.count) orders")
        #expect(!confirmed.isEmpty, "some orders went through before the kill")
        if let postgresName { try await PostgresTestServer.shared.dropDatabase(postgresName) }
    }
}
