import Foundation
import SoukCore
import SoukRedis
import SoukSQL
import SoukTesting
import Testing

/// The price log and price-history ports' behaviour, run against every backend: the SQL log and
/// history on SQLite and PostgreSQL, the Redis stream and sorted sets on a real redis-server.
enum PriceFeedBackend: String, CaseIterable, Sendable {
    case sqlite, postgres, redis

    /// Runs `body` with a log whose unacknowledged entries are delivered again after `claimIdle`.
    func withLog<T: Sendable>(claimIdle: Duration = .milliseconds(200), _ body: @Sendable (any PriceFeedLog) async throws -> T) async throws -> T {
        switch self {
        case .sqlite: try await TestBackend.sqlite.withDatabase { try await body(SQLPriceFeedLog(database: $0, chunkSize: 3)) }
        case .postgres: try await TestBackend.postgres.withDatabase { try await body(SQLPriceFeedLog(database: $0, chunkSize: 3)) }
        case .redis:
            // A private server: the log's keys are global, and other tests must not share them.
            try await Self.withPrivateRedis { redis in try await body(RedisPriceFeedLog(redis: redis, chunkSize: 3, claimIdle: claimIdle)) }
        }
    }

    func withHistory<T: Sendable>(_ body: @Sendable (any PriceHistory) async throws -> T) async throws -> T {
        switch self {
        case .sqlite: try await TestBackend.sqlite.withDatabase { try await body(SQLStorage(database: $0)) }
        case .postgres: try await TestBackend.postgres.withDatabase { try await body(SQLStorage(database: $0)) }
        case .redis: try await RedisTestServer.withClient { redis in try await body(RedisPriceHistory(redis: redis, retention: .seconds(3_600))) }
        }
    }

    static func withPrivateRedis<T: Sendable>(_ body: (RedisClient) async throws -> T) async throws -> T {
        let server = try await PrivateRedisServer()
        var configuration = try RedisConfiguration(url: server.url)
        configuration.poolSize = 2
        let client = RedisClient(configuration: configuration, logger: TestLog.logger)
        defer { client.shutdown() }
        let result = try await body(client)
        withExtendedLifetime(server) {}
        return result
    }
}

@Suite("Price feed conformance")
struct PriceFeedConformanceTests {
    static func batch(_ interval: Int64, items: [String] = ["A", "B", "C", "D", "E"], source: String = "test") -> PriceBatch {
        PriceBatch(source: source, interval: interval, ticks: items.enumerated().map { PriceTick(item: $1, at: interval, priceMinor: interval / 1_000 + Int64($0)) })
    }

    @Test(arguments: PriceFeedBackend.allCases)
    func anIntervalIsPublishedWholeAndOnce(backend: PriceFeedBackend) async throws {
        try await backend.withLog { log in
            #expect(try await log.checkpoint(source: "test") == nil)
            #expect(try await log.publish(Self.batch(60_000)), "five ticks in two chunks")
            #expect(try await log.checkpoint(source: "test") == 60_000)
            #expect(try await !log.publish(Self.batch(60_000)), "the same interval again is refused")
            #expect(try await !log.publish(Self.batch(0)), "an older interval is refused")
            #expect(try await log.publish(Self.batch(120_000, items: [])), "an interval without ticks still moves the checkpoint")
            #expect(try await log.checkpoint(source: "test") == 120_000)
            #expect(try await log.publish(Self.batch(60_000, source: "other")), "checkpoints are per source")

            let entries = try await log.read(consumer: "a", count: 100, wait: .milliseconds(100))
            #expect(entries.flatMap(\.ticks) == Self.batch(60_000).ticks + Self.batch(60_000, source: "other").ticks, "in publishing order, nothing doubled")
            #expect(entries.map(\.source) == ["test", "test", "other", "other"])
            #expect(entries.allSatisfy { $0.interval == 60_000 })
        }
    }

    @Test(arguments: PriceFeedBackend.allCases)
    func entriesAreDeliveredUntilAcknowledged(backend: PriceFeedBackend) async throws {
        try await backend.withLog { log in
            #expect(try await log.read(consumer: "a", count: 10, wait: .milliseconds(50)).isEmpty, "an empty log waits, then answers nothing")
            #expect(try await log.publish(Self.batch(60_000)))
            let first = try await log.read(consumer: "a", count: 10, wait: .milliseconds(100))
            #expect(first.flatMap(\.ticks).count == 5)
            // "a" dies without acknowledging: after the claim delay another consumer gets the same entries.
            try await Task.sleep(for: .milliseconds(300))
            let again = try await log.read(consumer: "b", count: 10, wait: .milliseconds(100))
            #expect(again == first)
            try await log.acknowledge(again)
            #expect(try await log.publish(Self.batch(120_000)))
            try await Task.sleep(for: .milliseconds(300))
            let next = try await log.read(consumer: "b", count: 10, wait: .milliseconds(100))
            #expect(next.flatMap(\.ticks) == Self.batch(120_000).ticks, "acknowledged entries are not delivered again")
            try await log.acknowledge(next)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await log.read(consumer: "c", count: 10, wait: .milliseconds(50)).isEmpty)
        }
    }

    @Test(arguments: PriceFeedBackend.allCases)
    func concurrentPublishersOfOneSourcePublishEachIntervalOnce(backend: PriceFeedBackend) async throws {
        try await backend.withLog { log in
            let wins = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var won = 0
                        for interval in stride(from: Int64(60_000), through: 600_000, by: 60_000) where try await log.publish(Self.batch(interval)) { won += 1 }
                        return won
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(wins <= 10)
            var ticks: [PriceTick] = []
            while true {
                let entries = try await log.read(consumer: "a", count: 100, wait: .milliseconds(50))
                if entries.isEmpty { break }
                ticks += entries.flatMap(\.ticks)
                try await log.acknowledge(entries)
            }
            #expect(Set(ticks).count == ticks.count, "no tick is in the log twice")
            #expect(ticks.map(\.at) == ticks.map(\.at).sorted(), "the log is in interval order")
            #expect(ticks.count == wins * 5)
        }
    }

    @Test(arguments: PriceFeedBackend.allCases)
    func historyKeepsOnePricePerItemAndTimeInOrder(backend: PriceFeedBackend) async throws {
        try await backend.withHistory { history in
            let item = "T-\(UUID().uuidString.prefix(8))"
            let now = FeedSchedule.now() / 1_000 * 1_000
            let ticks = (0..<10).map { PriceTick(item: item, at: now - Int64(10 - $0) * 1_000, priceMinor: 100 + Int64($0)) }
            try await history.apply(Array(ticks[5...]))
            try await history.apply(Array(ticks[..<7]))  // overlaps, out of order
            try await history.apply(ticks)  // all again
            #expect(try await history.ticks(item: item, from: 0, to: .max, limit: 100) == ticks)
            #expect(try await history.latest(item: item) == ticks.last)
            #expect(try await history.ticks(item: item, from: ticks[2].at, to: ticks[4].at, limit: 100) == Array(ticks[2...4]), "bounds are inclusive")
            #expect(try await history.ticks(item: item, from: 0, to: .max, limit: 3) == Array(ticks[7...]), "a limit keeps the newest")
            let corrected = PriceTick(item: item, at: ticks[3].at, priceMinor: 999)
            try await history.apply([corrected])
            #expect(try await history.ticks(item: item, from: ticks[3].at, to: ticks[3].at, limit: 10) == [corrected], "a tick replaces the one at its time")
            #expect(try await history.latest(item: "\(item)-none") == nil)
            #expect(try await history.ticks(item: "\(item)-none", from: 0, to: .max, limit: 10).isEmpty)
        }
    }
}
