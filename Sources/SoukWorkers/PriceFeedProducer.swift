import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import SoukCore

/// Counts of what a producer did, for logs, tests and metrics.
public struct PriceFeedCounts: Sendable, Equatable {
    public var published = 0
    public var ticks = 0
    public var rejected = 0
    public var fetchFailures = 0
    /// Intervals given up: missed while down by a source that cannot answer for the past, or whose
    /// fetch kept failing until the next interval was due.
    public var skipped = 0
}

/// `souk feed`: polls a source once per interval and publishes each interval's ticks to the log,
/// atomically with its checkpoint. After downtime it resumes right after the checkpoint and
/// backfills, in order, every interval the source can still answer for, then follows the clock.
public struct PriceFeedProducer: Service {
    public let source: any PriceSource
    let log: any PriceFeedLog
    let schedule: FeedSchedule
    let since: Duration?
    let logger: Logger
    let counts = NIOLockedValueBox(PriceFeedCounts())

    /// - Parameter since: on the very first start (no checkpoint), begin this long ago instead of now.
    public init(source: any PriceSource, log: any PriceFeedLog, interval: Duration, since: Duration? = nil, logger: Logger) {
        self.source = source
        self.log = log
        self.schedule = FeedSchedule(length: interval)
        self.since = since
        self.logger = logger
    }

    public var snapshot: PriceFeedCounts { counts.withLockedValue { $0 } }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            do {
                try await produce()
            } catch {
                if !(error is CancellationError) { logger.error("price feed producer stopped", metadata: ["error": "\(String(reflecting: error))"]) }
            }
        }
    }

    func produce() async throws {
        var next = try await retrying("reading the checkpoint") { () -> Int64 in
            if let checkpoint = try await log.checkpoint(source: source.name) { return checkpoint + schedule.length }
            let start = FeedSchedule.now() - (since.map { FeedSchedule(length: $0).length } ?? 0)
            return schedule.interval(containing: start)
        }
        logger.info("price feed producing", metadata: ["source": "\(source.name)", "from": "\(next)", "interval_ms": "\(schedule.length)"])
        while !Task.isCancelled {
            let now = FeedSchedule.now()
            let current = schedule.interval(containing: now)
            if next > current {
                try await Task.sleep(for: .milliseconds(next - now))
                continue
            }
            if !source.answersForThePast && next < current {
                let missed = Int((current - next) / schedule.length)
                counts.withLockedValue { $0.skipped += missed }
                logger.warning("price feed intervals missed while down; this source cannot answer for the past", metadata: ["count": "\(missed)"])
                next = current
            }
            guard let fetch = try await fetch(next) else {
                counts.withLockedValue { $0.skipped += 1 }
                next += schedule.length
                continue
            }
            let batch = PriceBatch(source: source.name, interval: next, ticks: fetch.ticks, rejected: fetch.rejected.count)
            if !fetch.rejected.isEmpty {
                logger.warning("price rows rejected", metadata: ["interval": "\(next)", "count": "\(fetch.rejected.count)", "first": "\(fetch.rejected[0])"])
            }
            let published = try await retrying("publishing") { try await log.publish(batch) }
            counts.withLockedValue {
                $0.rejected += batch.rejected
                if published {
                    $0.published += 1
                    $0.ticks += batch.ticks.count
                }
            }
            next += schedule.length
        }
    }

    /// The interval's ticks, retried with backoff. A source that can answer later is retried until
    /// it does; one that only knows the present is given up on (nil) when the next interval is due.
    func fetch(_ interval: Int64) async throws -> PriceFetch? {
        var attempt = 0
        while true {
            do {
                return try await source.fetch(interval: interval, length: schedule.length)
            } catch let error as CancellationError {
                throw error
            } catch {
                attempt += 1
                counts.withLockedValue { $0.fetchFailures += 1 }
                logger.warning("price source failed", metadata: ["interval": "\(interval)", "attempt": "\(attempt)", "error": "\(String(reflecting: error))"])
                let pause = Self.backoff(attempt)
                if !source.answersForThePast, FeedSchedule.now() + pause.milliseconds >= interval + schedule.length { return nil }
                try await Task.sleep(for: pause)
            }
        }
    }

    /// Our own log must take the batch: retried with backoff until it does.
    func retrying<T: Sendable>(_ what: String, _ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as CancellationError {
                throw error
            } catch {
                attempt += 1
                logger.warning("price feed \(what) failed; retrying", metadata: ["attempt": "\(attempt)", "error": "\(String(reflecting: error))"])
                try await Task.sleep(for: Self.backoff(attempt))
            }
        }
    }

    static func backoff(_ attempt: Int) -> Duration {
        min(.seconds(5), .milliseconds(50) * (1 << min(attempt, 7)))
    }
}
