import Foundation
import Logging
import SoukCore
import SoukSQL
import SoukTesting
@testable import SoukWorkers
import Testing

@Suite("Price feed producer")
struct PriceFeedProducerTests {
    /// Waits until `condition` holds, or fails the test after `timeout`.
    static func eventually(_ what: String, timeout: Duration = .seconds(45), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            try #require(ContinuousClock.now < deadline, "timed out waiting until \(what)")
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func drain(_ log: any PriceFeedLog) async throws -> [PriceLogEntry] {
        var all: [PriceLogEntry] = []
        while true {
            let entries = try await log.read(consumer: "test", count: 100, wait: .milliseconds(20))
            if entries.isEmpty { return all }
            all += entries
            try await log.acknowledge(entries)
        }
    }

    @Test func sourceFailuresAreRetriedOrRejectedAndCountedNeverHalfPublished() async throws {
        try await TestBackend.sqlite.withDatabase { database in
            let seconds = FeedSchedule.now() / 1_000 - 5
            let mixed = """
                item,price,timestamp
                AAA,1.50,\(seconds)
                CCC,-1,\(seconds)
                BBB,2.00,\(seconds)
                DDD,abc,\(seconds)
                EEE,3.00
                """
            let good = "AAA,1.60,\(seconds + 1)\nBBB,2.10,\(seconds + 1)\n"
            let stub = try await StubHTTPServer([.answer(status: 500, body: "oops"), .stall, .answer(status: 200, body: mixed), .answer(status: 503, body: "down")])
            defer { stub.close() }
            let log = SQLPriceFeedLog(database: database)
            let http = try OutboundHTTP(logger: TestLog.logger)
            // Shut down whatever happens (the client must be, before it is released).
            defer { Task { try? await http.shutdown() } }
            let producer = PriceFeedProducer(
                // A stall costs the timeout; an answer that a loaded machine delivers later than the
                // timeout would be lost to the script (the stub moves on), so the timeout is generous.
                source: try HTTPPriceSource(url: stub.url, http: http, timeout: .seconds(3)), log: log, interval: .seconds(5), logger: TestLog.logger)
            let running = Task { try await producer.run() }
            defer { running.cancel() }

            // A 500 and a stall are retried; the mixed answer is published without its bad rows;
            // then the source stays down until an interval is given up.
            try await Self.eventually("the mixed answer is published and a down interval skipped") {
                producer.snapshot.published == 1 && producer.snapshot.skipped >= 1 && producer.snapshot.fetchFailures >= 3
            }
            #expect(producer.snapshot.rejected == 3)
            stub.play([.answer(status: 200, body: "<html>not prices</html>"), .answer(status: 200, body: good)])
            try await Self.eventually("the garbage and the good answers are published") { producer.snapshot.published >= 3 }
            running.cancel()
            _ = await running.result

            #expect(producer.snapshot.rejected == 4, "three bad rows and one unreadable body")
            let ticks = try await Self.drain(log).flatMap(\.ticks)
            let valid: Set<PriceTick> = [
                PriceTick(item: "AAA", at: seconds * 1_000, priceMinor: 150), PriceTick(item: "BBB", at: seconds * 1_000, priceMinor: 200),
                PriceTick(item: "AAA", at: (seconds + 1) * 1_000, priceMinor: 160), PriceTick(item: "BBB", at: (seconds + 1) * 1_000, priceMinor: 210),
            ]
            #expect(Set(ticks) == valid, "every valid row is published, and nothing else")
            #expect(producer.snapshot.ticks == ticks.count)
        }
    }

    @Test func afterDowntimeEveryMissedIntervalIsBackfilledInOrder() async throws {
        try await TestBackend.sqlite.withDatabase { database in
            let schedule = FeedSchedule(length: .milliseconds(100))
            let log = SQLPriceFeedLog(database: database)
            let market = SimulatedMarket(items: 3)
            // The producer "was down" for the last 3 seconds: its checkpoint is 30 intervals old.
            let checkpoint = schedule.interval(containing: FeedSchedule.now()) - 30 * schedule.length
            #expect(try await log.publish(PriceBatch(source: market.name, interval: checkpoint, ticks: [])))
            let producer = PriceFeedProducer(source: market, log: log, interval: .milliseconds(100), logger: TestLog.logger)
            let running = Task { try await producer.run() }
            defer { running.cancel() }
            try await Self.eventually("the producer has caught up and follows the clock") { producer.snapshot.published >= 35 }
            running.cancel()
            _ = await running.result

            let entries = try await Self.drain(log)
            let intervals = entries.map(\.interval)
            #expect(intervals.first == checkpoint + schedule.length, "resumes right after the checkpoint")
            #expect(intervals == Array(stride(from: checkpoint + schedule.length, through: intervals.last ?? 0, by: Int(schedule.length))), "no gap, no repeat, in order")
            #expect(entries.allSatisfy { entry in entry.ticks.enumerated().allSatisfy { $1.priceMinor == market.price(index: $0 + 1, at: entry.interval) } })
        }
    }
}
