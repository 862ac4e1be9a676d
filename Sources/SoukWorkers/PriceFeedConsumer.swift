import Foundation
import Logging
import ServiceLifecycle
import SoukCore

/// An applier of the price log (any number run in one consumer group): applies each entry's ticks
/// to every price history (Redis lists, SQL history), moves products that follow an item to its
/// newest price, and acknowledges only then. Applying is idempotent, so an entry delivered again
/// after a crash changes nothing; an entry is never skipped: failures are retried.
public struct PriceFeedConsumer: Service {
    let log: any PriceFeedLog
    let histories: [any PriceHistory]
    let followers: (any PriceFollowers)?
    let invalidate: @Sendable (Int64) async -> Void
    let consumer: String
    let batchSize: Int
    let logger: Logger

    public init(
        log: any PriceFeedLog, histories: [any PriceHistory], followers: (any PriceFollowers)?, consumer: String,
        batchSize: Int = 20, logger: Logger, invalidate: @escaping @Sendable (Int64) async -> Void
    ) {
        self.log = log
        self.histories = histories
        self.followers = followers
        self.consumer = consumer
        self.batchSize = batchSize
        self.logger = logger
        self.invalidate = invalidate
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var followed: Set<String> = []
            var followedAt = ContinuousClock.now - .seconds(60)
            var failures = 0
            while !Task.isCancelled {
                do {
                    let entries = try await log.read(consumer: consumer, count: batchSize, wait: .milliseconds(500))
                    guard !entries.isEmpty else { continue }
                    if let followers, ContinuousClock.now - followedAt > .seconds(2) {
                        followed = try await followers.followedItems()
                        followedAt = .now
                    }
                    try await apply(entries, followed: followed)
                    try await log.acknowledge(entries)
                    failures = 0
                } catch is CancellationError {
                    return
                } catch {
                    failures += 1
                    logger.warning("price feed consumer retrying", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                    try? await Task.sleep(for: PriceFeedProducer.backoff(failures))
                }
            }
        }
    }

    func apply(_ entries: [PriceLogEntry], followed: Set<String>) async throws {
        let ticks = entries.flatMap(\.ticks)
        // The sinks are independent: Redis and PostgreSQL work at the same time.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for history in histories { group.addTask { try await history.apply(ticks) } }
            try await group.waitForAll()
        }
        guard let followers, !followed.isEmpty else { return }
        var newest: [String: PriceTick] = [:]
        for tick in ticks where followed.contains(tick.item) {
            if let known = newest[tick.item], known.at >= tick.at { continue }
            newest[tick.item] = tick
        }
        guard !newest.isEmpty else { return }
        for vendor in try await followers.follow(Array(newest.values)) { await invalidate(vendor) }
    }
}
