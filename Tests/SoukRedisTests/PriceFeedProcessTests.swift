import Foundation
import RESP
import SoukCore
import SoukRedis
import SoukSQL
import SoukTesting
import Testing

/// Invariant 6 across real processes: `souk feed` and `souk worker` on one PostgreSQL and one
/// Redis (AOF), each killed with SIGKILL at random moments and restarted after a pause.
@Suite("Price feed (real processes)", .serialized)
struct PriceFeedProcessTests {
    static let items = 5
    static let interval: Int64 = 50

    @Test func producerAndConsumerKilledAtRandomLoseAndRepeatNothing() async throws {
        let database = try await PostgresTestServer.shared.createDatabase(migrated: true)
        let server = try await PrivateRedisServer(arguments: ["--appendonly", "yes"])
        let environment = [
            "SOUK_DATABASE_URL": try PostgresTestServer.url(database: database), "SOUK_REDIS_URL": server.url,
            "SOUK_FEED_INTERVAL": "\(Self.interval)ms", "SOUK_FEED_ITEMS": String(Self.items),
        ]
        func startFeed() async throws -> SoukProcess { try await SoukProcess.start(["feed"], environment: environment, announcement: "Souk feed running") }
        func startWorker() async throws -> SoukProcess { try await SoukProcess.start(["worker", "--consumers", "1"], environment: environment, announcement: "Souk worker running") }

        let started = FeedSchedule.now()
        var feed = try await startFeed()
        var worker = try await startWorker()
        var kills = (feed: 0, worker: 0)
        for round in 0..<6 {
            try await Task.sleep(for: .milliseconds(Int64.random(in: 500...2_000)))
            let victims = round % 3  // the feed, the worker, then both at once
            if victims != 1 { feed.kill9(); kills.feed += 1 }
            if victims != 0 { worker.kill9(); kills.worker += 1 }
            try await Task.sleep(for: .milliseconds(Int64.random(in: 300...1_500)))
            if victims != 1 { feed = try await startFeed() }
            if victims != 0 { worker = try await startWorker() }
        }
        try await Task.sleep(for: .seconds(1))
        feed.stop()

        var configuration = try RedisConfiguration(url: server.url)
        configuration.poolSize = 1
        let redis = RedisClient(configuration: configuration, logger: TestLog.logger)
        defer { redis.shutdown() }
        let checkpoint = try #require(try await redis.hget(RedisKeys.feedCheckpoints, "simulated").flatMap { Int64($0) })
        let market = SimulatedMarket(items: Self.items)

        // The worker catches up with everything published, then stops.
        let deadline = ContinuousClock.now + .seconds(60)
        func caughtUp() async throws -> Bool {
            for item in market.itemNames where try await RedisPriceHistory(redis: redis).latest(item: item)?.at != checkpoint { return false }
            return try await redis.xpendingCount(RedisKeys.feedLog, group: RedisKeys.feedGroup) == 0
        }
        while try await !caughtUp() {
            try #require(ContinuousClock.now < deadline, "the worker did not catch up: \(worker.outputText.suffix(2_000))")
            try await Task.sleep(for: .milliseconds(100))
        }
        worker.stop()

        let sql = try await PostgresTestServer.shared.withDatabase(database) { postgres in
            let storage = SQLStorage(database: postgres)
            var lists: [String: [PriceTick]] = [:]
            for item in market.itemNames { lists[item] = try await storage.ticks(item: item, from: 0, to: .max, limit: 1_000_000) }
            return lists
        }
        let lists = try await withThrowingTaskGroup(of: (String, [PriceTick]).self) { group in
            for item in market.itemNames {
                group.addTask { (item, try await RedisPriceHistory(redis: redis).ticks(item: item, from: 0, to: .max, limit: 1_000_000)) }
            }
            return try await group.reduce(into: [String: [PriceTick]]()) { $0[$1.0] = $1.1 }
        }

        let first = try #require(lists["SIM-0001"]?.first?.at)
        #expect(first >= FeedSchedule(length: .milliseconds(Self.interval)).interval(containing: started), "the feed starts where it was first started")
        let intervals = Int((checkpoint - first) / Self.interval) + 1
        #expect(intervals >= 150, "hundreds of intervals: \(intervals)")
        for (index, item) in market.itemNames.enumerated() {
            let expected = stride(from: first, through: checkpoint, by: Int(Self.interval)).map {
                PriceTick(item: item, at: $0, priceMinor: market.price(index: index + 1, at: $0))
            }
            let (redisList, sqlList) = (lists[item] ?? [], sql[item] ?? [])
            let redisExact = redisList == expected, sqlExact = sqlList == expected
            #expect(redisExact, "\(item) in Redis: \(Self.difference(redisList, expected))")
            #expect(sqlExact, "\(item) in SQL: \(Self.difference(sqlList, expected))")
        }
        #expect(kills.feed >= 4 && kills.worker >= 4)
        try? await PostgresTestServer.shared.dropDatabase(database)
    }

    /// A short account of how two series differ, for a failure message.
    static func difference(_ actual: [PriceTick], _ expected: [PriceTick]) -> String {
        let actualTimes = actual.map(\.at)
        let expectedTimes = Set(expected.map(\.at))
        let missing = expected.map(\.at).filter { !Set(actualTimes).contains($0) }
        let extra = actualTimes.filter { !expectedTimes.contains($0) }
        let duplicates = actualTimes.count - Set(actualTimes).count
        let wrong = zip(actual, expected).filter { $0.0.at == $0.1.at && $0.0.priceMinor != $0.1.priceMinor }.count
        return "\(actual.count) ticks vs \(expected.count); missing \(missing.prefix(5)) (\(missing.count)), extra \(extra.prefix(5)) (\(extra.count)), duplicates \(duplicates), wrong prices \(wrong)"
    }
}
