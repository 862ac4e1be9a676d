import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import SoukCore

/// Souk's own pool of PostgreSQL connections.
///
/// PostgresNIO 1.33's `PostgresClient` keeps a few kilobytes for every lease and never gives them
/// back, so a server doing thousands of queries a second grows without bound. This pool does the
/// little Souk needs: at most `maximumConnections` connections, opened on demand and kept open,
/// handed to waiters first come first served, and replaced when the server closed them.
final class PostgresConnectionPool: Sendable {
    enum PoolError: Error, CustomStringConvertible, TemporaryFailure {
        case closed
        /// Every connection stayed busy (or could not be opened) for the whole lease timeout.
        case timedOut

        var description: String {
            switch self {
            case .closed: "the PostgreSQL connection pool is closed"
            case .timedOut: "no PostgreSQL connection became free in time"
            }
        }

        /// A pool that waited too long is a passing state (a storm, a restarting server); a closed
        /// one is the process shutting down: also answered 503 rather than 500.
        var isTemporary: Bool { true }
    }

    /// What a caller gets: a connection, or a reserved slot to open one in.
    private enum Grant {
        case connection(PostgresConnection)
        case slot
    }

    private struct State {
        var idle: [PostgresConnection] = []
        /// Connections open, being opened, or leased.
        var opened = 0
        var waiters: [UInt64: CheckedContinuation<Grant, any Error>] = [:]
        var queue: [UInt64] = []
        var queueHead = 0
        var nextID: UInt64 = 0
        var closed = false

        mutating func popWaiter() -> CheckedContinuation<Grant, any Error>? {
            while queueHead < queue.count {
                let id = queue[queueHead]
                queueHead += 1
                if let waiter = waiters.removeValue(forKey: id) { return waiter }
            }
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
            return nil
        }
    }

    private let configuration: PostgresConnection.Configuration
    private let maximumConnections: Int
    /// The longest a caller waits for a connection before failing (temporarily): nothing waits forever.
    let leaseTimeout: Duration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let connectionIDs = NIOLockedValueBox(0)

    init(configuration: PostgresConnection.Configuration, maximumConnections: Int, leaseTimeout: Duration = .seconds(30), logger: Logger) {
        precondition(maximumConnections > 0)
        self.configuration = configuration
        self.maximumConnections = maximumConnections
        self.leaseTimeout = leaseTimeout
        self.logger = logger
    }

    /// Runs `body` with a connection of its own; the connection goes back to the pool afterwards
    /// (or is dropped, if it was closed meanwhile).
    func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    /// Closes idle connections now and leased ones when they come back; waiters fail.
    func close() async {
        let (idle, waiters) = state.withLockedValue { state in
            state.closed = true
            let idle = state.idle
            state.opened -= idle.count
            state.idle = []
            let waiters = Array(state.waiters.values)
            state.waiters = [:]
            state.queue = []
            state.queueHead = 0
            return (idle, waiters)
        }
        for waiter in waiters { waiter.resume(throwing: PoolError.closed) }
        for connection in idle { try? await connection.close() }
    }

    deinit {
        // A pool nobody closed still closes its connections (PostgresNIO insists on it).
        for connection in state.withLockedValue({ $0.idle }) { Self.closeInBackground(connection) }
    }

    /// Closes `connection` and keeps it alive until it is closed.
    private static func closeInBackground(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    private func lease() async throws -> PostgresConnection {
        let id = state.withLockedValue { state in
            state.nextID += 1
            return state.nextID
        }
        let grant = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                let immediate: Result<Grant, any Error>? = state.withLockedValue { state in
                    if state.closed { return .failure(PoolError.closed) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    while let connection = state.idle.popLast() {
                        if !connection.isClosed { return .success(.connection(connection)) }
                        state.opened -= 1
                    }
                    if state.opened < maximumConnections {
                        state.opened += 1
                        return .success(.slot)
                    }
                    state.waiters[id] = continuation
                    state.queue.append(id)
                    return nil
                }
                if let immediate {
                    continuation.resume(with: immediate)
                } else {
                    // A waiter still waiting at the deadline fails; one already handed a grant is gone from `waiters`.
                    MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(leaseTimeout.nanoseconds)) { [state] in
                        state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume(throwing: PoolError.timedOut)
                    }
                }
            }
        } onCancel: {
            let waiter = state.withLockedValue { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
        switch grant {
        case .connection(let connection):
            return connection
        case .slot:
            do {
                return try await connect()
            } catch {
                giveBackSlot()
                throw error
            }
        }
    }

    private func release(_ connection: PostgresConnection) {
        enum Next {
            case handOver(CheckedContinuation<Grant, any Error>, Grant)
            case close
            case none
        }
        let next: Next = state.withLockedValue { state in
            if state.closed {
                state.opened -= 1
                return .close
            }
            let usable = !connection.isClosed
            if let waiter = state.popWaiter() {
                return .handOver(waiter, usable ? .connection(connection) : .slot)
            }
            if usable {
                state.idle.append(connection)
            } else {
                state.opened -= 1
            }
            return .none
        }
        switch next {
        case .handOver(let waiter, let grant): waiter.resume(returning: grant)
        case .close: Self.closeInBackground(connection)
        case .none: break
        }
    }

    /// A slot whose connection could not be opened goes to the next waiter, who tries again.
    private func giveBackSlot() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Grant, any Error>? in
            if !state.closed, let waiter = state.popWaiter() { return waiter }
            state.opened -= 1
            return nil
        }
        waiter?.resume(returning: .slot)
    }

    private func connect() async throws -> PostgresConnection {
        let id = connectionIDs.withLockedValue { id in
            id += 1
            return id
        }
        return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
    }
}
