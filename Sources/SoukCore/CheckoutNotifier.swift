import Foundation

/// Wakes the requests (SSE streams, long polls) waiting for a checkout's result in this process,
/// handing them the decision. The saga runner calls ``resolve(_:)`` when it decides; with several
/// instances a pub/sub listener calls it for decisions made elsewhere.
public final class CheckoutNotifier: @unchecked Sendable {
    private let lock = NSLock()
    private var waiters: [String: [UUID: CheckedContinuation<CheckoutDecision?, Never>]] = [:]
    /// Decisions of the last seconds, for a waiter that registers just after its decision came
    /// (it read the order as in progress a moment before): without them that wake-up is lost and
    /// the waiter only learns the result at its next re-read.
    private var recent: [String: (decision: CheckoutDecision, at: ContinuousClock.Instant)] = [:]
    private let remembered: Duration = .seconds(10)
    private let maximumRemembered = 10_000

    public init() {}

    /// The decision, when it comes within `timeout`; nil after `timeout` (or when woken without
    /// one): the caller reads the order again.
    public func wait(for orderID: String, timeout: Duration) async -> CheckoutDecision? {
        let id = UUID()
        return await withTaskGroup(of: CheckoutDecision?.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<CheckoutDecision?, Never>) in
                    let known: (decision: CheckoutDecision, at: ContinuousClock.Instant)? = self.lock.withLock {
                        if let known = self.recent[orderID], ContinuousClock.now - known.at < self.remembered { return known }
                        self.waiters[orderID, default: [:]][id] = continuation
                        return nil
                    }
                    if let known { continuation.resume(returning: known.decision) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.wake(orderID, only: id)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            self.wake(orderID, only: id)
            return first
        }
    }

    public func resolve(_ decision: CheckoutDecision) {
        wakeAll(decision.orderID, with: decision)
    }

    /// Wakes the order's waiters without a decision (they read the order again).
    public func resolve(orderID: String) {
        wakeAll(orderID, with: nil)
    }

    private func wakeAll(_ orderID: String, with decision: CheckoutDecision?) {
        let continuations = lock.withLock {
            let now = ContinuousClock.now
            if recent.count >= maximumRemembered { recent = recent.filter { now - $0.value.at < remembered } }
            if recent.count >= maximumRemembered { recent.removeAll(keepingCapacity: true) }
            if let decision { recent[orderID] = (decision, now) }
            return waiters.removeValue(forKey: orderID) ?? [:]
        }
        for continuation in continuations.values { continuation.resume(returning: decision) }
    }

    private func wake(_ orderID: String, only id: UUID) {
        let continuation: CheckedContinuation<CheckoutDecision?, Never>? = lock.withLock {
            let found = waiters[orderID]?.removeValue(forKey: id)
            if waiters[orderID]?.isEmpty == true { waiters[orderID] = nil }
            return found
        }
        continuation?.resume(returning: nil)
    }
}
