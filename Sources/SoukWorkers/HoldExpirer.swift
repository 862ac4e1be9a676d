import Foundation
import Logging
import ServiceLifecycle
import SoukCore

/// Expires unpaid flash-sale holds a moment after their time and gives their units back to the
/// sale: in `souk worker` with Redis, and in the process that owns the in-process gate without.
/// Several may run at once (the expiry is a compare-and-set, the release once per order).
public struct HoldExpirer: Service {
    let flashSales: FlashSales
    let interval: Duration
    let logger: Logger

    /// `interval` bounds the expiry lag: a hold is expired at most that long after its time (plus
    /// the time to expire the ones before it).
    public init(flashSales: FlashSales, interval: Duration = .milliseconds(200), logger: Logger) {
        self.flashSales = flashSales
        self.interval = interval
        self.logger = logger
    }

    /// Holds expired per transaction.
    static let batch = 2_000

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    // A full batch means more are due: go on at once.
                    let handled = try await flashSales.expireDueHolds(limit: Self.batch)
                    failures = 0
                    if handled == Self.batch { continue }
                } catch {
                    failures += 1
                    if failures == 1 || failures % 50 == 0 {
                        logger.warning("expiring holds failed", metadata: ["error": "\(String(reflecting: error))", "failures": "\(failures)"])
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
