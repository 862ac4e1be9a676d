import NIOConcurrencyHelpers

/// Runs `operation` and returns its result, or `nil` once `deadline` has passed — at the deadline,
/// even when the operation is slow to notice its cancellation (a task group would wait for it: an
/// HTTP client stuck connecting under load kept a 2 s call waiting 8 s). The operation is cancelled
/// then, and when the caller is.
func answer<Value: Sendable>(
    by deadline: ContinuousClock.Instant,
    _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value? {
    let pending = NIOLockedValueBox<CheckedContinuation<Value?, any Error>?>(nil)
    let tasks = NIOLockedValueBox<[Task<Void, Never>]>([])
    @Sendable func finish(_ result: Result<Value?, any Error>) {
        let continuation = pending.withLockedValue { pending in
            defer { pending = nil }
            return pending
        }
        continuation?.resume(with: result)
        cancelAll()
    }
    @Sendable func cancelAll() {
        for task in tasks.withLockedValue({ $0 }) { task.cancel() }
    }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            pending.withLockedValue { $0 = continuation }
            let work = Task {
                do { finish(.success(try await operation())) } catch { finish(.failure(error)) }
            }
            let timer = Task {
                try? await Task.sleep(until: deadline)
                finish(.success(nil))
                work.cancel()
            }
            tasks.withLockedValue { $0 = [work, timer] }
            if Task.isCancelled { cancelAll(); finish(.failure(CancellationError())) }
        }
    } onCancel: {
        cancelAll()
        finish(.failure(CancellationError()))
    }
}
