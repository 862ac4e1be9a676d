import Foundation

/// Wakes the requests (SSE streams, long polls) waiting for a checkout's result in this process.
/// The saga runner calls ``resolve(_:)`` when it decides; with several instances a pub/sub listener
/// calls it for decisions made elsewhere.
public final class CheckoutNotifier: @unchecked Sendable {
    private let lock = NSLock()
    private var waiters: [String: [UUID: CheckedContinuation<Void, Never>]] = [:]

    public init() {}

    /// Returns when the order is resolved or after `timeout`, whichever comes first.
    public func wait(for orderID: String, timeout: Duration) async {
        let id = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    self.lock.withLock { self.waiters[orderID, default: [:]][id] = continuation }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.wake(orderID, only: id)
            }
            await group.next()
            group.cancelAll()
            self.wake(orderID, only: id)
        }
    }

    public func resolve(_ orderID: String) {
        let continuations = lock.withLock { waiters.removeValue(forKey: orderID) ?? [:] }
        for continuation in continuations.values { continuation.resume() }
    }

    private func wake(_ orderID: String, only id: UUID) {
        let continuation: CheckedContinuation<Void, Never>? = lock.withLock {
            let found = waiters[orderID]?.removeValue(forKey: id)
            if waiters[orderID]?.isEmpty == true { waiters[orderID] = nil }
            return found
        }
        continuation?.resume()
    }
}
