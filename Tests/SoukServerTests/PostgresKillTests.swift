import Foundation
import SoukSQL
import SoukTesting
import Testing

/// PostgreSQL killed (SIGKILL) under a checkout storm and started again 3 s later: every role
/// resumes by itself. Every checkout answered 202 is decided within its deadline plus bounded
/// retries after the restart, credit is conserved, and the outage was answered 503 with
/// `Retry-After`, never 500.
@Suite("PostgreSQL killed under load", .serialized)
struct PostgresKillTests {
    struct Answers: Sendable {
        var accepted: [String] = []
        var statuses: [Int: Int] = [:]
        var withoutRetryAfter = 0
    }

    @Test func everyAcceptedCheckoutIsDecidedAfterPostgreSQLComesBack() async throws {
        let postgres = try await PrivatePostgresServer()
        defer { postgres.stop() }
        let redis = try await PrivateRedisServer(arguments: ["--appendonly", "yes"])
        let environment = [
            "SOUK_DATABASE_URL": postgres.url, "SOUK_REDIS_URL": redis.url,
            "SOUK_VERIFIER_DELAY": "200ms-1s", "SOUK_VERIFY_DEADLINE": "5s", "SOUK_DATABASE_CONNECTIONS": "8",
        ]
        #expect(try await SoukProcess.run(["migrate"], environment: environment).status == 0)
        #expect(try await SoukProcess.run(["seed"], environment: environment).status == 0)
        let serve = try await SoukProcess.start(["serve"], environment: environment)
        defer { serve.stop() }
        let worker = try await SoukProcess.start(["worker"], environment: environment, announcement: "Souk worker running")
        defer { worker.stop() }
        let database = try PostgresDatabase(url: postgres.url, maximumConnections: 2, logger: TestLog.logger)
        defer { Task { try? await database.close() } }
        // The demo's customer user3 (credited by the demo store) signs in.
        let login = try await HTTPTestClient(baseURL: serve.baseURL).send("POST", "/api/v1/customers/sessions", json: #"{"email":"user3@example.com","password":"demo1234"}"#)
        let user3 = try #require(login.json["token"] as? String, "\(login.body)")
        let user3ID = try #require(try await HTTPTestClient(baseURL: serve.baseURL, token: user3).send("GET", "/api/v1/customers/me").json["id"] as? String)
        func credit() async throws -> Int64 {
            try await database.read("""
                SELECT CAST(COALESCE(SUM(balance_minor + held_minor + captured_minor), 0) AS BIGINT) AS total FROM store_credits WHERE buyer_id = \(user3ID)
                """)[0].int("total")
        }
        let creditBefore = try await credit()

        // A storm of one-unit buys by a credited demo buyer, across the demo's products, from 16
        // clients; PostgreSQL is killed a second in and started again 3 s later.
        let answers = NIOLockedAnswers()
        let stormEnds = ContinuousClock.now + .seconds(9)
        let client = HTTPTestClient(baseURL: serve.baseURL, token: user3)
        let storm = Task {
            await withTaskGroup(of: Void.self) { group in
                for lane in 0..<16 {
                    group.addTask {
                        var product = lane % 19 + 1
                        while ContinuousClock.now < stormEnds {
                            product = product % 19 + 1
                            guard let reply = try? await client.send("POST", "/api/v1/buy", json: #"{"user":"user3@example.com","stockid":\#(product),"quantity":1}"#) else {
                                answers.record(status: 0, orderID: nil, retryAfter: false)
                                continue
                            }
                            answers.record(status: reply.status, orderID: reply.status == 202 ? reply.json["order_id"] as? String : nil, retryAfter: reply.headers["retry-after"] != nil)
                        }
                    }
                }
            }
        }
        try await Task.sleep(for: .seconds(1))
        postgres.kill9()
        try await Task.sleep(for: .seconds(3))
        try await postgres.start()
        let restarted = ContinuousClock.now
        await storm.value
        let result = answers.value
        #expect(result.accepted.count > 20, "the storm was answered before and after the outage: \(result.statuses)")
        #expect(result.statuses[500] == nil, "no 500 during or after the outage: \(result.statuses)")
        #expect(result.statuses.keys.allSatisfy { $0 < 500 || $0 == 503 }, "only 503 while PostgreSQL was away: \(result.statuses)")
        #expect(result.withoutRetryAfter == 0, "every 503 carries Retry-After")

        // Every accepted checkout is decided: its deadline (5 s) and the runner's retries, counted
        // from the restart, within 60 s.
        var undecided = Set(result.accepted)
        while !undecided.isEmpty, ContinuousClock.now - restarted < .seconds(60) {
            let pending = try await database.read("SELECT id FROM checkouts WHERE status = \("in_progress")")
            undecided = Set(try pending.map { try $0.string("id") }).intersection(result.accepted)
            if !undecided.isEmpty { try await Task.sleep(for: .milliseconds(500)) }
        }
        print("postgres kill: answers \(result.statuses.sorted { $0.key < $1.key }), \(result.accepted.count) accepted, all decided \(ContinuousClock.now - restarted) after the restart")
        #expect(undecided.isEmpty, "\(undecided.count) of \(result.accepted.count) accepted checkouts still in progress 60 s after PostgreSQL came back")
        let known = Set(try await database.read("SELECT id FROM checkouts").map { try $0.string("id") })
        #expect(Set(result.accepted).isSubset(of: known), "every accepted checkout exists")
        #expect(try await credit() == creditBefore, "credit is conserved: balance + held + captured")
        #expect(serve.isRunning && worker.isRunning, "both processes lived through the outage")
    }
}

/// The storm's answers, shared by its clients.
final class NIOLockedAnswers: @unchecked Sendable {
    private let lock = NSLock()
    private var answers = PostgresKillTests.Answers()

    func record(status: Int, orderID: String?, retryAfter: Bool) {
        lock.withLock {
            answers.statuses[status, default: 0] += 1
            if let orderID { answers.accepted.append(orderID) }
            if status == 503 && !retryAfter { answers.withoutRetryAfter += 1 }
        }
    }

    var value: PostgresKillTests.Answers { lock.withLock { answers } }
}
