import RESP
import SoukCore

/// Why a command did not get a reply. Server error replies are ``RESPServerError`` instead: those
/// leave the connection usable.
public struct RedisClientError: Error, Hashable, Sendable, CustomStringConvertible, TemporaryFailure {
    public enum Code: String, Sendable {
        /// The connection closed (or was closed) before the reply came.
        case connectionClosed
        /// The server could not be reached; the client is backing off before the next attempt.
        case connectionUnavailable
        /// The command's deadline passed; its connection was closed, since a sent command cannot be taken back.
        case timeout
        /// The caller's task was cancelled while waiting; the connection was closed for the same reason.
        case cancelled
        /// The server sent bytes that are not RESP.
        case protocolError
        /// The reply did not have the shape the command promises.
        case unexpectedReply
        /// The client has been shut down.
        case shutdown
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String = "") {
        self.code = code
        self.message = message
    }

    /// Redis gone or slow: it comes back (the pool reconnects with backoff).
    public var isTemporary: Bool {
        switch code {
        case .connectionClosed, .connectionUnavailable, .timeout: true
        case .cancelled, .protocolError, .unexpectedReply, .shutdown: false
        }
    }

    public var description: String { message.isEmpty ? "Redis \(code.rawValue)" : "Redis \(code.rawValue): \(message)" }
}

/// A server error reply that means "not now": Redis still loading its data after a restart, busy
/// running a script, or a replica not ready. Found by the chaos run (a purchase right after a
/// restart was answered 500). Any other error reply is the command's own fault.
extension RESPServerError: TemporaryFailure {
    public var isTemporary: Bool {
        ["LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "NOREPLICAS"].contains(code)
    }
}
