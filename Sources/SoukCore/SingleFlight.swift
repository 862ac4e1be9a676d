import Foundation

/// One run of an expensive load per key at a time: callers that arrive while it runs share its
/// result (the first attempts on a new sale arrive together, and would each read the database).
public final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var running: [Key: Task<Value, any Error>] = [:]

    public init() {}

    /// The result of the load under way for `key`, or of `load` started now.
    public func value(for key: Key, _ load: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = lock.withLock {
            if let task = running[key] { return task }
            let task = Task { [self] in
                defer { lock.withLock { _ = running.removeValue(forKey: key) } }
                return try await load()
            }
            running[key] = task
            return task
        }
        return try await task.value
    }
}
