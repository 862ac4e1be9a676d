import Foundation
import SoukSQL
@testable import SoukServer
import SoukTesting
import Testing

/// Flash sales across real processes: `souk serve` ×2 and `souk worker` ×2 on one PostgreSQL and one
/// Redis (AOF), stormed by `souk loadtest`; and a worker killed with SIGKILL mid-persisting.
@Suite("Flash sale (real processes)", .serialized)
struct FlashSaleProcessTests {
    struct Cluster: Sendable {
        let environment: [String: String]
        let serve: [SoukProcess]
        let redis: PrivateRedisServer
        let database: String
        var token = ""
        var saleID: Int64 = 0

        func stop() {
            for process in serve { process.stop() }
        }
    }

    static func cluster(serves: Int) async throws -> Cluster {
        let database = try await PostgresTestServer.shared.createDatabase(migrated: true)
        let redis = try await PrivateRedisServer(arguments: ["--appendonly", "yes"])
        let environment = ["SOUK_DATABASE_URL": try PostgresTestServer.url(database: database), "SOUK_REDIS_URL": redis.url]
        var processes: [SoukProcess] = []
        for _ in 0..<serves { processes.append(try await SoukProcess.start(["serve"], environment: environment)) }
        return Cluster(environment: environment, serve: processes, redis: redis, database: database)
    }

    static func startWorker(_ environment: [String: String]) async throws -> SoukProcess {
        try await SoukProcess.start(["worker", "--consumers", "2"], environment: environment, announcement: "Souk worker running")
    }

    /// Signs up a vendor and opens a sale of `quantity` units on the first instance.
    static func openSale(_ cluster: inout Cluster, quantity: Int, holdSeconds: Int = 600) async throws {
        var vendor = HTTPTestClient(baseURL: cluster.serve[0].baseURL)
        _ = try await vendor.send("POST", "/api/v1/vendors", json: #"{"username":"seller","password":"sesame1234","store_name":"Seller"}"#)
        cluster.token = try #require(try await vendor.send("POST", "/api/v1/sessions", json: #"{"username":"seller","password":"sesame1234"}"#).json["token"] as? String)
        vendor.token = cluster.token
        let product = try await vendor.send("POST", "/api/v1/products", json: #"{"name":"Console","price_minor":49900,"currency":"USD","stock":\#(quantity)}"#)
        let productID = try #require((product.json["id"] as? NSNumber)?.int64Value)
        let formatter = ISO8601DateFormatter()
        let sale = try await vendor.send("POST", "/api/v1/flash-sales", json: """
            {"product_id":\(productID),"quantity":\(quantity),"per_buyer_limit":1,"hold_seconds":\(holdSeconds),
             "starts_at":"\(formatter.string(from: Date().addingTimeInterval(-1)))","ends_at":"\(formatter.string(from: Date().addingTimeInterval(3_600)))"}
            """)
        cluster.saleID = try #require((sale.json["id"] as? NSNumber)?.int64Value, "\(sale.body)")
    }

    /// Customers with signed tokens, made in the cluster's database.
    static func shoppers(_ cluster: Cluster, count: Int) async throws -> [(id: String, token: String)] {
        let shoppers = try await PostgresTestServer.shared.withDatabase(cluster.database) { database in
            try await CustomerTokens(store: SQLStorage(database: database), lifetime: .seconds(3_600)).mintShoppers(count, emailPrefix: "storm")
        }
        try #require(shoppers.count == count)
        return shoppers
    }

    static func loadtest(_ cluster: Cluster, instance: Int, buyers: Int, attempts: Int = 1) async throws -> (status: Int32, output: String) {
        try await SoukProcess.run([
            "loadtest", "flash-sale", "--url", cluster.serve[instance].baseURL.absoluteString, "--sale", String(cluster.saleID),
            "--buyers", String(buyers), "--attempts-per-buyer", String(attempts), "--concurrency", "64",
            // One token in 64 begins with "-", which would read as an option after a separate "--token".
            "--token=\(cluster.token)",
        ], environment: cluster.environment)
    }

    static func stats(_ cluster: Cluster, instance: Int = 0) async throws -> [String: Any] {
        try await HTTPTestClient(baseURL: cluster.serve[instance].baseURL, token: cluster.token).send("GET", "/api/v1/flash-sales/\(cluster.saleID)/stats").json
    }

    static func persistedOrders(_ cluster: Cluster, instance: Int = 0) async throws -> [String] {
        try await persistedOrdersAndBuyers(cluster, instance: instance).map(\.order)
    }

    static func persistedOrdersAndBuyers(_ cluster: Cluster, instance: Int = 0) async throws -> [(order: String, buyer: String)] {
        var orders: [(order: String, buyer: String)] = []
        var cursor = ""
        repeat {
            let page = try await HTTPTestClient(baseURL: cluster.serve[instance].baseURL, token: cluster.token)
                .send("GET", "/api/v1/flash-sales/\(cluster.saleID)/orders?limit=1000\(cursor.isEmpty ? "" : "&cursor=\(cursor)")").json
            orders += (page["orders"] as? [[String: Any]] ?? []).compactMap { row in
                (row["order_id"] as? String).flatMap { order in (row["buyer_id"] as? String).map { (order, $0) } }
            }
            cursor = page["next_cursor"] as? String ?? ""
        } while !cursor.isEmpty
        return orders
    }

    /// Invariants 1 and 2 with two servers and two workers: two load generators race through both servers.
    @Test func twoServersAndTwoWorkersSellExactlyTheQuantity() async throws {
        var cluster = try await Self.cluster(serves: 2)
        defer { cluster.stop() }
        let workers = [try await Self.startWorker(cluster.environment), try await Self.startWorker(cluster.environment)]
        defer { for worker in workers { worker.stop() } }
        try await Self.openSale(&cluster, quantity: 100)

        let ready = cluster
        async let viaA = Self.loadtest(ready, instance: 0, buyers: 3_000, attempts: 2)
        async let viaB = Self.loadtest(ready, instance: 1, buyers: 3_000, attempts: 2)
        let (a, b) = try await (viaA, viaB)
        #expect(a.status == 0 && a.output.contains("verdict      PASS"), "\(a.output)")
        #expect(b.status == 0 && b.output.contains("verdict      PASS"), "\(b.output)")
        #expect(a.output.contains("oversold     0") && b.output.contains("oversold     0"))

        let stats = try await Self.stats(cluster)
        #expect((stats["admitted"] as? Int) == 100 && (stats["persisted"] as? Int) == 100 && (stats["pending"] as? Int) == 0, "\(stats)")
        let orders = try await Self.persistedOrdersAndBuyers(cluster)
        #expect(orders.count == 100 && Set(orders.map(\.order)).count == 100)
        #expect(Set(orders.map(\.buyer)).count == 100, "one unit per buyer")
        let reconcile = try await SoukProcess.run(["reconcile", "--sale", String(cluster.saleID)], environment: cluster.environment)
        #expect(reconcile.status == 0 && reconcile.output.contains("consistent"), "\(reconcile.output)")
        try await PostgresTestServer.shared.dropDatabase(cluster.database)
    }

    /// Invariant 2: a worker dies (SIGKILL) in the middle of persisting; a new one finishes the job,
    /// and every admitted order is persisted exactly once.
    @Test func holdsExpireOnceThoughTheWorkerIsKilledWhileExpiringThem() async throws {
        var cluster = try await Self.cluster(serves: 1)
        defer { cluster.stop() }
        try await Self.openSale(&cluster, quantity: 1_000, holdSeconds: 5)
        let doomed = try await Self.startWorker(cluster.environment)
        let sold = try await Self.loadtest(cluster, instance: 0, buyers: 1_000)
        #expect(sold.status == 0 && sold.output.contains("verdict      PASS"), "\(sold.output)")
        // Kill the worker while some holds are expired and others not yet.
        var killedMidway = false
        var seen: [Int64] = []
        let database = try PostgresDatabase(url: try PostgresTestServer.url(database: cluster.database), maximumConnections: 1, logger: TestLog.logger)
        try await database.closing { database in
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(30) {
                let expired = try await database.read("SELECT expired FROM flash_sales WHERE id = \(cluster.saleID)").first?.int("expired") ?? 0
                if seen.last != expired { seen.append(expired) }
                if expired > 0 && expired < 1_000 {
                    doomed.kill9()
                    killedMidway = true
                    return
                }
                if expired >= 1_000 { return }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        doomed.kill9()
        let replacement = try await Self.startWorker(cluster.environment)
        defer { replacement.stop() }
        let deadline = ContinuousClock.now + .seconds(30)
        var stats = try await Self.stats(cluster)
        while (stats["expired"] as? Int) != 1_000 || (stats["remaining"] as? Int) != 1_000 {
            try #require(ContinuousClock.now < deadline, "holds did not all come back: \(stats)")
            try await Task.sleep(for: .milliseconds(100))
            stats = try await Self.stats(cluster)
        }
        #expect(killedMidway, "the worker died mid-expiry (the admissions were spread over the storm, so their holds expire over several rounds; expired counts seen: \(seen.suffix(40)))")
        #expect((stats["held"] as? Int) == 0 && (stats["paid"] as? Int) == 0 && (stats["admitted"] as? Int) == 0, "each unit came back once: \(stats)")
        let saleID = cluster.saleID
        let unexpired = try await PostgresTestServer.shared.withDatabase(cluster.database) { database in
            try await database.read("SELECT COUNT(*) AS n FROM flash_sale_orders WHERE sale_id = \(saleID) AND status <> 'expired'").first?.int("n")
        }
        #expect(unexpired == 0)
        // The units are sold again, exactly as many.
        _ = try await Self.loadtest(cluster, instance: 0, buyers: 1_000)
        let resold = try await Self.stats(cluster)
        #expect((resold["admitted"] as? Int) == 1_000 && (resold["remaining"] as? Int) == 0, "\(resold)")
        try await PostgresTestServer.shared.dropDatabase(cluster.database)
    }

    /// Invariant: each paid order charged exactly once, across processes. 120 winners pay by card
    /// through a Stripe-like provider (a stub on loopback, whose events come back twice and out of
    /// order); `souk worker` is killed with SIGKILL while some payments are confirmed and others
    /// are not; a new worker takes over the leases. Every order ends paid, and the provider
    /// captured each once.
    @Test func cardPaymentsAreChargedOnceThoughTheWorkerIsKilledMidPayment() async throws {
        let secret = "whsec_process_tests_0123456789"
        let signature = PaymentEventSignature(secret: secret)
        let stub = try await StubPaymentProvider(delivery: .init(duplicates: true, reorder: true)) { signature.sign($0, at: Date()) }
        let database = try await PostgresTestServer.shared.createDatabase(migrated: true)
        let redis = try await PrivateRedisServer(arguments: ["--appendonly", "yes"])
        let environment = [
            "SOUK_DATABASE_URL": try PostgresTestServer.url(database: database), "SOUK_REDIS_URL": redis.url,
            "SOUK_PAYMENTS": stub.url.absoluteString, "SOUK_PAYMENTS_KEY": stub.secretKey, "SOUK_PAYMENTS_WEBHOOK_SECRET": secret,
            "SOUK_VERIFIER_DELAY": "100ms-600ms",
        ]
        var cluster = Cluster(environment: environment, serve: [try await SoukProcess.start(["serve"], environment: environment)], redis: redis, database: database)
        defer { cluster.stop() }
        stub.sendEvents(to: cluster.serve[0].baseURL.appendingPathComponent("api/v1/payments/events"))
        let winners = 120
        try await Self.openSale(&cluster, quantity: winners)
        let doomed = try await Self.startWorker(cluster.environment)
        let shoppers = try await Self.shoppers(cluster, count: winners)
        let (url, saleID) = (cluster.serve[0].baseURL, cluster.saleID)
        let checkouts = try await withThrowingTaskGroup(of: String.self) { group in
            for shopper in shoppers {
                group.addTask {
                    let client = HTTPTestClient(baseURL: url, token: shopper.token)
                    let won = try await client.send("POST", "/api/v1/flash-sales/\(saleID)/purchases", json: "{}")
                    let order = try #require(won.json["order_id"] as? String, "\(won.body)")
                    let paying = try await client.send("POST", "/api/v1/orders/\(order)/payment", json: """
                        {"method":"card","shipping":{"name":"Ann","phone":"+49 30 1234567","address":"Torstr. 1"},
                         "card":{"number":"4242424242424242","exp_month":12,"exp_year":2040,"cvc":"123"}}
                        """)
                    return try #require(paying.json["checkout_id"] as? String, "\(paying.status) \(paying.body)")
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(checkouts.count == winners)
        // Kill the worker while some payments are decided and others are not.
        var killedMidway = false
        let postgres = try PostgresDatabase(url: try PostgresTestServer.url(database: database), maximumConnections: 1, logger: TestLog.logger)
        try await postgres.closing { postgres in
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(30) {
                let confirmed = try await postgres.read("SELECT COUNT(*) AS n FROM checkouts WHERE status = 'confirmed'").first?.int("n") ?? 0
                if confirmed > 0 && confirmed < winners {
                    doomed.kill9()
                    killedMidway = true
                    return
                }
                if confirmed >= winners { return }
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        doomed.kill9()
        let replacement = try await Self.startWorker(cluster.environment)
        defer { replacement.stop() }
        let deadline = ContinuousClock.now + .seconds(60)
        var stats = try await Self.stats(cluster)
        while (stats["paid"] as? Int) != winners {
            try #require(ContinuousClock.now < deadline, "not every payment was confirmed: \(stats)")
            try await Task.sleep(for: .milliseconds(200))
            stats = try await Self.stats(cluster)
        }
        #expect(killedMidway, "the worker died with payments in flight")
        // Settled: nothing is captured after the last confirmation.
        try await Task.sleep(for: .seconds(1))
        #expect(stub.totals == .init(capturedMinor: Int64(winners) * 49_900, refundedMinor: 0, captures: winners, refunds: 0), "each order charged once")
        #expect((stats["held"] as? Int) == 0 && (stats["remaining"] as? Int) == 0, "\(stats)")
        let cardRows = try await PostgresTestServer.shared.withDatabase(database) { database in
            try await database.read("SELECT COUNT(*) AS n FROM payments WHERE method = 'card'").first?.int("n")
        }
        #expect(cardRows == Int64(winners))
        await stub.close()
        try await PostgresTestServer.shared.dropDatabase(database)
    }

    @Test func aWorkerKilledMidPersistingLosesAndRepeatsNothing() async throws {
        var cluster = try await Self.cluster(serves: 1)
        defer { cluster.stop() }
        try await Self.openSale(&cluster, quantity: 3_000)
        let doomed = try await Self.startWorker(cluster.environment)
        let ready = cluster
        async let load = Self.loadtest(ready, instance: 0, buyers: 3_000)
        // Kill the worker while orders are being persisted: some of the sale's 3,000 in the
        // database, not all. Counted straight in PostgreSQL, polled densely: through the API of a
        // serve under the storm a poll could take longer than the whole window.
        var killedWhilePending = false
        var seen: [Int64] = []
        let database = try PostgresDatabase(url: try PostgresTestServer.url(database: cluster.database), maximumConnections: 1, logger: TestLog.logger)
        try await database.closing { database in
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(30) {
                let persisted = try await database.read("SELECT COUNT(*) AS n FROM flash_sale_orders WHERE sale_id = \(cluster.saleID)").first?.int("n") ?? 0
                if seen.last != persisted { seen.append(persisted) }
                if persisted > 0 && persisted < 3_000 {
                    doomed.kill9()
                    killedWhilePending = true
                    return
                }
                if persisted >= 3_000 { return }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        doomed.kill9()
        let replacement = try await Self.startWorker(cluster.environment)
        defer { replacement.stop() }
        let result = try await load
        #expect(killedWhilePending, "the worker died mid-sale (persisted counts seen: \(seen.suffix(40)))")
        #expect(result.status == 0 && result.output.contains("verdict      PASS"), "\(result.output)")
        let orders = try await Self.persistedOrders(cluster)
        #expect(orders.count == 3_000 && Set(orders).count == 3_000)
        let stats = try await Self.stats(cluster)
        #expect((stats["persisted"] as? Int) == 3_000 && (stats["pending"] as? Int) == 0, "\(stats)")
        try await PostgresTestServer.shared.dropDatabase(cluster.database)
    }

    /// SIGTERM mid-sale: `souk serve` stops taking connections, answers what it took (an open
    /// event stream does not hold it up) and exits; `souk worker` finishes its batch and exits
    /// without acknowledging anything unpersisted. Every purchase answered "admitted" — by the
    /// stopping instance or the other — is persisted exactly once, and nothing is oversold.
    @Test func sigtermDuringASaleUnderLoadLosesNothing() async throws {
        var cluster = try await Self.cluster(serves: 2)
        defer { cluster.stop() }
        try await Self.openSale(&cluster, quantity: 2_000)
        let worker = try await Self.startWorker(cluster.environment)
        let stopping = cluster.serve[0]
        let events = try await RawHTTP.open(stopping.baseURL, path: "/api/v1/flash-sales/\(cluster.saleID)/events",
                                            headers: ["Authorization": "Bearer \(cluster.token)"])
        defer { events.close() }

        // Buyers on the instance that will stop, recording every order it admitted.
        let admittedByStopping = AdmittedLog()
        let saleID = cluster.saleID
        let shoppers = try await Self.shoppers(cluster, count: 16 * 500)
        let storm = Task {
            await withTaskGroup(of: Void.self) { group in
                for lane in 0..<16 {
                    group.addTask {
                        for shopper in shoppers[(lane * 500)..<(lane * 500 + 500)] {
                            let client = HTTPTestClient(baseURL: stopping.baseURL, token: shopper.token)
                            guard let reply = try? await client.send("POST", "/api/v1/flash-sales/\(saleID)/purchases", json: "{}") else {
                                continue  // refused or cut once the instance is gone
                            }
                            if reply.status == 202, let order = reply.json["order_id"] as? String { admittedByStopping.add(order) }
                        }
                    }
                }
            }
        }
        let ready = cluster
        let other = Task { try await Self.loadtest(ready, instance: 1, buyers: 1_500) }

        let stormStarted = ContinuousClock.now
        while admittedByStopping.count < 150 {
            try #require(ContinuousClock.now - stormStarted < .seconds(60), "the stopping instance admitted only \(admittedByStopping.count)")
            try await Task.sleep(for: .milliseconds(10))
        }
        let signalled = ContinuousClock.now
        stopping.process.send(SIGTERM)
        worker.process.send(SIGTERM)
        while stopping.process.isRunning || worker.process.isRunning {
            try #require(ContinuousClock.now - signalled < .seconds(20), "shutdown took too long:\n\(stopping.outputText.suffix(1_000))\n\(worker.outputText.suffix(1_000))")
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(stopping.process.termination == .exit(0), "souk serve exited by itself")
        #expect(worker.process.termination == .exit(0), "souk worker exited by itself")
        #expect(ContinuousClock.now - signalled < .seconds(10), "an open event stream did not hold the shutdown up")
        await storm.value

        // A new worker finishes what the stopped one left.
        let replacement = try await Self.startWorker(cluster.environment)
        defer { replacement.stop() }
        let result = try await other.value
        #expect(result.status == 0, "\(result.output)")
        var stats: [String: Any] = [:]
        for _ in 0..<300 {
            stats = try await Self.stats(cluster, instance: 1)
            if (stats["pending"] as? Int) == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect((stats["pending"] as? Int) == 0 && (stats["admitted"] as? Int) == (stats["persisted"] as? Int), "\(stats)")
        let orders = try await Self.persistedOrders(cluster, instance: 1)
        #expect(orders.count == Set(orders).count, "no order persisted twice")
        #expect(orders.count <= 2_000, "nothing oversold")
        let missing = admittedByStopping.orders.subtracting(orders)
        #expect(missing.isEmpty, "orders answered 'admitted' by the stopping instance and never persisted: \(missing.prefix(10))")
        #expect(admittedByStopping.count >= 150)
        try await PostgresTestServer.shared.dropDatabase(cluster.database)
    }

    /// Embedded mode: the same storm against `souk` alone (SQLite, in-process gate).
    @Test func embeddedModeSellsExactlyTheQuantity() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-fs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let souk = try await SoukProcess.start(["--data-dir", directory.path])
        defer { souk.stop() }
        // `souk loadtest` makes its buyers in the same SQLite file.
        var cluster = Cluster(environment: ["SOUK_DATA_DIR": directory.path], serve: [souk], redis: try await PrivateRedisServer(), database: "")
        try await Self.openSale(&cluster, quantity: 100)
        let result = try await Self.loadtest(cluster, instance: 0, buyers: 10_000)
        #expect(result.status == 0 && result.output.contains("verdict      PASS") && result.output.contains("admitted     100 "), "\(result.output)")
        let orders = try await Self.persistedOrders(cluster)
        #expect(orders.count == 100 && Set(orders).count == 100)
        // The vendor's live counters arrive as server-sent events.
        let stream = try await RawHTTP.read(souk.baseURL, path: "/api/v1/flash-sales/\(cluster.saleID)/events",
                                            headers: ["Authorization": "Bearer \(cluster.token)"], for: .milliseconds(1_200))
        #expect(stream.lowercased().contains("content-type: text/event-stream"), "\(stream)")
        #expect(stream.components(separatedBy: "event: stats").count >= 3, "two updates in 1.2 s")
        #expect(stream.contains(#""persisted":100"#))
    }
}

/// Order ids answered "admitted", collected from many tasks.
final class AdmittedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var set = Set<String>()

    func add(_ order: String) { lock.withLock { _ = set.insert(order) } }
    var count: Int { lock.withLock { set.count } }
    var orders: Set<String> { lock.withLock { set } }
}
