import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RESP
import ServiceLifecycle

/// Souk's Redis client: a small pool of pipelined connections. A connection that dies is replaced
/// on the next use; while Redis is unreachable, callers fail fast and reconnection is retried with
/// exponential backoff. Run it as a ServiceLifecycle `Service` so it closes with the process.
public final class RedisClient: Service, Sendable {
    public let configuration: RedisConfiguration
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    private let slots: [Slot]
    /// One connection per event loop for ``connection(on:)``, opened on that loop.
    private let loopSlots = NIOLockedValueBox<[ObjectIdentifier: Slot]>([:])
    private let next = NIOLockedValueBox(0)
    private let isShutdown = NIOLockedValueBox(false)

    public init(configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.slots = (0..<max(1, configuration.poolSize)).map { _ in Slot() }
    }

    public convenience init(url: String, logger: Logger) throws {
        self.init(configuration: try RedisConfiguration(url: url), logger: logger)
    }

    /// Runs until shutdown, then closes every connection.
    public func run() async throws {
        try? await gracefulShutdown()
        shutdown()
    }

    public func shutdown() {
        isShutdown.withLockedValue { $0 = true }
        for slot in slots { slot.close() }
        for slot in loopSlots.withLockedValue({ Array($0.values) }) { slot.close() }
    }

    /// Sends commands as one pipelined batch on one connection and returns the replies in order.
    /// Server error replies are returned as `.error` values (a batch can partly fail).
    public func pipeline(_ commands: [RESPCommand], timeout: Duration? = nil) async throws -> [RESPValue] {
        try await connection().execute(commands, timeout: timeout).map(\.value)
    }

    /// One command; a server error reply is thrown as ``RESPServerError``.
    @discardableResult
    public func execute(_ command: RESPCommand, timeout: Duration? = nil) async throws -> RESPValue {
        let reply = try await pipeline([command], timeout: timeout)[0]
        if case .error(let error) = reply { throw error }
        return reply
    }

    /// Runs commands inside MULTI/EXEC, atomically, and returns each command's reply.
    /// Throws if the transaction was aborted (a command was refused while queueing).
    public func transaction(_ commands: [RESPCommand], timeout: Duration? = nil) async throws -> [RESPValue] {
        let replies = try await pipeline([RESPCommand("MULTI")] + commands + [RESPCommand("EXEC")], timeout: timeout)
        guard let exec = replies.last else { throw RedisClientError(.unexpectedReply, "no EXEC reply") }
        if case .error(let error) = exec { throw error }
        for reply in replies.dropLast() { if case .error(let error) = reply { throw error } }
        guard let results = exec.elements else { throw RedisClientError(.unexpectedReply, "EXEC returned \(exec)") }
        return results
    }

    /// A connection of its own for `body`, for blocking reads (XREADGROUP … BLOCK) that would hold up
    /// everyone pipelined behind them.
    public func withDedicatedConnection<T: Sendable>(_ body: (RedisConnection) async throws -> T) async throws -> T {
        guard !isShutdown.withLockedValue({ $0 }) else { throw RedisClientError(.shutdown) }
        let connection = try await RedisConnection.connect(configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        defer { connection.close() }
        return try await body(connection)
    }

    func connection() async throws -> RedisConnection {
        guard !isShutdown.withLockedValue({ $0 }) else { throw RedisClientError(.shutdown) }
        let index = next.withLockedValue { next in
            defer { next = (next + 1) % slots.count }
            return next
        }
        return try await slots[index].connection { [configuration, eventLoopGroup, logger] in
            try await RedisConnection.connect(configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        }
    }

    /// The connection that lives on `eventLoop`, for work that stays on that loop from request to
    /// answer (``RedisConnection/submit(_:timeout:)`` completes there, so nothing hops to a task).
    /// Never waits: nil while it is being opened (in the background, with the pool's backoff) or
    /// Redis is unreachable, and the caller takes the ordinary path.
    public func connection(on eventLoop: any EventLoop) -> RedisConnection? {
        guard !isShutdown.withLockedValue({ $0 }) else { return nil }
        let slot = loopSlots.withLockedValue { slots in
            if let slot = slots[ObjectIdentifier(eventLoop)] { return slot }
            let slot = Slot()
            slots[ObjectIdentifier(eventLoop)] = slot
            return slot
        }
        if let ready = slot.ready { return ready }
        guard slot.mayOpen else { return nil }
        Task { [configuration, logger] in
            _ = try? await slot.connection { try await RedisConnection.connect(configuration, eventLoopGroup: eventLoop, logger: logger) }
        }
        return nil
    }

    /// One place in the pool: a live connection, one being opened (shared by everyone who waits),
    /// or a pause after a failed attempt.
    final class Slot: Sendable {
        enum State {
            case empty
            case connecting(Task<RedisConnection, any Error>)
            case connected(RedisConnection)
            case backingOff(until: ContinuousClock.Instant, failures: Int, error: any Error)
        }

        private let state = NIOLockedValueBox<State>(.empty)

        /// Whether a connection may be opened now: none is being opened and no backoff is running.
        var mayOpen: Bool {
            state.withLockedValue { state in
                switch state {
                case .connecting: return false
                case .backingOff(let until, _, _): return ContinuousClock.now >= until
                case .empty, .connected: return true
                }
            }
        }

        /// The live connection, if there is one, without waiting.
        var ready: RedisConnection? {
            state.withLockedValue { state in
                if case .connected(let connection) = state, !connection.isClosed { return connection }
                return nil
            }
        }

        static let firstBackoff: Duration = .milliseconds(25)
        static let maximumBackoff: Duration = .seconds(2)

        func connection(open: @escaping @Sendable () async throws -> RedisConnection) async throws -> RedisConnection {
            enum Next {
                case ready(RedisConnection)
                case wait(Task<RedisConnection, any Error>)
            }
            let next: Next = try state.withLockedValue { state in
                var failures = 0
                switch state {
                case .connected(let connection) where !connection.isClosed:
                    return .ready(connection)
                case .connecting(let task):
                    return .wait(task)
                case .backingOff(let until, let count, let error):
                    if ContinuousClock.now < until { throw RedisClientError(.connectionUnavailable, "\(error)") }
                    failures = count
                case .empty, .connected:
                    break
                }
                let task = Task { [weak self] in
                    do {
                        let connection = try await open()
                        self?.state.withLockedValue { $0 = .connected(connection) }
                        return connection
                    } catch {
                        let delay = min(Self.maximumBackoff, Self.firstBackoff * (1 << min(failures, 10)))
                        self?.state.withLockedValue { $0 = .backingOff(until: .now + delay, failures: failures + 1, error: error) }
                        throw error
                    }
                }
                state = .connecting(task)
                return .wait(task)
            }
            switch next {
            case .ready(let connection): return connection
            case .wait(let task): return try await task.value
            }
        }

        func close() {
            state.withLockedValue { state in
                switch state {
                case .connected(let connection): connection.close()
                case .connecting(let task): task.cancel()
                default: break
                }
                state = .empty
            }
        }
    }
}
