import DequeModule
import RESP

/// The bookkeeping of one connection, free of NIO so it can be tested on its own: requests are
/// answered strictly in the order they were written, a batch completes when all of its replies
/// are in, and any timeout, cancellation, protocol error or close ends the connection and fails
/// everything still pending. The caller carries out the returned actions.
struct RedisConnectionStateMachine<Promise: Sendable>: Sendable {
    struct Pending {
        let id: UInt64
        let expected: Int
        var replies: [RESPToken]
        let promise: Promise
        /// Uptime nanoseconds after which the request has timed out.
        let deadline: UInt64
    }

    private(set) var pending = Deque<Pending>()
    private(set) var closedBy: RedisClientError?
    private var nextID: UInt64 = 0

    var isClosed: Bool { closedBy != nil }

    enum SendAction {
        /// Write the request now (while still holding whatever serialises sends, so order is kept).
        case write(id: UInt64)
        case fail(RedisClientError)
    }

    mutating func send(expecting replies: Int, deadline: UInt64, promise: Promise) -> SendAction {
        if let closedBy { return .fail(closedBy) }
        nextID += 1
        pending.append(Pending(id: nextID, expected: replies, replies: [], promise: promise, deadline: deadline))
        return .write(id: nextID)
    }

    enum ReceiveAction {
        case none
        case succeed(Promise, [RESPToken])
        /// A reply with nothing waiting for it: the stream is out of step, so the connection must go.
        case close(failing: [Promise], RedisClientError)
    }

    mutating func receive(_ token: RESPToken) -> ReceiveAction {
        guard !isClosed else { return .none }
        guard !pending.isEmpty else {
            return .close(failing: [], close(RedisClientError(.protocolError, "reply with no request waiting")))
        }
        pending[pending.startIndex].replies.append(token)
        guard pending[pending.startIndex].replies.count == pending[pending.startIndex].expected else { return .none }
        let done = pending.removeFirst()
        return .succeed(done.promise, done.replies)
    }

    enum CloseAction {
        case none
        /// Close the channel and fail these promises with the error.
        case close(failing: [Promise], RedisClientError)
    }

    /// A request whose caller was cancelled: if it is still waiting, the connection is given up.
    mutating func cancel(id: UInt64) -> CloseAction {
        guard !isClosed, pending.contains(where: { $0.id == id }) else { return .none }
        return .close(failing: drain(), close(RedisClientError(.cancelled)))
    }

    /// Checks deadlines at `now` (uptime nanoseconds).
    mutating func checkDeadlines(now: UInt64) -> CloseAction {
        guard !isClosed, pending.contains(where: { $0.deadline <= now }) else { return .none }
        return .close(failing: drain(), close(RedisClientError(.timeout)))
    }

    /// The bytes could not be decoded.
    mutating func protocolError(_ description: String) -> CloseAction {
        failed(RedisClientError(.protocolError, description))
    }

    /// The connection failed (an I/O error such as a reset, or undecodable bytes): everything
    /// pending fails with `error`.
    mutating func failed(_ error: RedisClientError) -> CloseAction {
        guard !isClosed else { return .none }
        return .close(failing: drain(), close(error))
    }

    /// The channel went away (from either side); everything pending fails.
    mutating func closed() -> [Promise] {
        if !isClosed { _ = close(RedisClientError(.connectionClosed)) }
        return drain()
    }

    private mutating func close(_ error: RedisClientError) -> RedisClientError {
        closedBy = error
        return error
    }

    private mutating func drain() -> [Promise] {
        defer { pending.removeAll() }
        return pending.map(\.promise)
    }
}
