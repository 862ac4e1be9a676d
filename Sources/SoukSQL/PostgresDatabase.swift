import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SoukCore

/// The production backend: PostgreSQL through pools of PostgresNIO connections
/// (``PostgresConnectionPool``). ``close()`` closes the connections.
///
/// Reads have connections of their own, a quarter of `maximumConnections` (at least one), as they
/// have in SQLite: under a storm of checkouts or orders, a buyer reading an order (or opening its
/// event stream) waits for a reader, never behind the queue of writes.
///
/// Nothing waits forever: the server cancels a statement after `statementTimeout` and ends a session
/// left idle inside a transaction (a frozen client holding locks); a statement still unanswered a
/// little later — the server frozen or gone without a word — is abandoned and its connection closed.
public final class PostgresDatabase: SQLDatabase {
    public var dialect: SQLDialect { .postgres }

    private let writers: PostgresConnectionPool
    private let readers: PostgresConnectionPool
    private let logger: Logger
    /// How long the client waits for one statement: the server's own limit plus time to hear it.
    private let statementDeadline: Duration

    public init(configuration: PostgresConnection.Configuration, maximumConnections: Int = 20, statementTimeout: Duration = .seconds(30), logger: Logger) {
        var configuration = configuration
        configuration.options.additionalStartupParameters += Self.sessionLimits(statementTimeout: statementTimeout)
        configuration.options.connectTimeout = .seconds(5)
        let readers = max(1, maximumConnections / 4)
        self.readers = PostgresConnectionPool(configuration: configuration, maximumConnections: readers, logger: logger)
        self.writers = PostgresConnectionPool(configuration: configuration, maximumConnections: max(1, maximumConnections - readers), logger: logger)
        self.logger = logger
        self.statementDeadline = statementTimeout + .seconds(2)
    }

    /// Connects to `postgres://user:password@host:port/database?sslmode=disable|prefer|require`.
    public convenience init(url: String, maximumConnections: Int = 20, statementTimeout: Duration = .seconds(30), logger: Logger) throws {
        self.init(configuration: try Self.configuration(url: url), maximumConnections: maximumConnections, statementTimeout: statementTimeout, logger: logger)
    }

    /// Session settings sent when a connection starts: the statement limit, and the same limit for a
    /// transaction left idle. Souk's transactions never pause between statements on purpose, so one
    /// idle that long belongs to a frozen or dead client whose locks stop everyone else. (10 s was
    /// too short: on two busy cores a migration's transaction waited that long for its own client.)
    static func sessionLimits(statementTimeout: Duration) -> [(String, String)] {
        let statement = max(1, statementTimeout.milliseconds)
        return [
            ("statement_timeout", "\(statement)"),
            ("idle_in_transaction_session_timeout", "\(statement)"),
        ]
    }

    public static func configuration(url: String) throws -> PostgresConnection.Configuration {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql"
        else { throw SQLDatabaseError.invalidURL("expected postgres://user@host:port/database") }
        guard let host = components.host, !host.isEmpty else { throw SQLDatabaseError.invalidURL("no host") }
        guard let user = components.user, !user.isEmpty else { throw SQLDatabaseError.invalidURL("no user") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        let sslMode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch sslMode {
            case "disable": tls = .disable
            case "prefer": tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case "require": tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            default: throw SQLDatabaseError.invalidURL("sslmode must be disable, prefer or require")
            }
        } catch let error as SQLDatabaseError {
            throw error
        } catch {
            throw SQLDatabaseError.invalidURL("TLS could not be set up: \(error)")
        }
        return PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database.isEmpty ? user : database, tls: tls
        )
    }

    public func read(_ sql: SQL) async throws -> [SQLRow] {
        try await run(sql, on: readers)
    }

    /// A statement that deadlocked or failed to serialize was rolled back whole, so it is sent again.
    public func execute(_ sql: SQL) async throws -> [SQLRow] {
        try await retryingWhenAsked { try await run(sql, on: writers) }
    }

    private func run(_ sql: SQL, on pool: PostgresConnectionPool) async throws -> [SQLRow] {
        try await pool.withConnection { connection in
            try await Self.bounded(connection, within: statementDeadline) { [logger] in
                if sql.isPrepared { return try await Self.executePrepared(sql, on: connection, logger: logger) }
                return try await Self.collect(connection.query(Self.query(sql), logger: logger))
            }
        }
    }

    /// Runs one statement on `connection`, but waits for it at most `deadline`. PostgresNIO 1.33
    /// writes a statement without a promise, so one written as the connection closes is never
    /// answered, and a frozen server answers nothing: past the deadline the connection is closed
    /// (the pool replaces it) and the caller told at once, without waiting for the statement's task.
    static func bounded<T: Sendable>(
        _ connection: PostgresConnection, within deadline: Duration, _ statement: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try requireOpen(connection)
        let waiter = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(nil)
        let work = NIOLockedValueBox<Task<Void, Never>?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                waiter.withLockedValue { $0 = continuation }
                let timer = connection.eventLoop.scheduleTask(in: .nanoseconds(deadline.nanoseconds)) {
                    guard let continuation = waiter.withLockedValue({ $0.take() }) else { return }
                    connection.close().whenComplete { _ in continuation.resume(throwing: PostgresStatementTimedOut(deadline: deadline)) }
                }
                work.withLockedValue {
                    $0 = Task {
                        let result: Result<T, any Error>
                        do { result = .success(try await statement()) } catch { result = .failure(error) }
                        timer.cancel()
                        waiter.withLockedValue { $0.take() }?.resume(with: result)
                    }
                }
            }
        } onCancel: {
            work.withLockedValue { $0 }?.cancel()
        }
    }

    /// Runs a statement marked ``SQL/prepared()`` through PostgresNIO's prepared statements: parsed
    /// and planned once per connection, with the parameter types the unnamed path sends. A statement
    /// with a NULL parameter (whose type the server infers), or beyond the slots, runs unnamed.
    static func executePrepared(_ sql: SQL, on connection: PostgresConnection, logger: Logger) async throws -> [SQLRow] {
        guard !sql.binds.contains(.null), let slot = PreparedSlots.shared.slot(for: sql.text) else {
            return try await Self.collect(connection.query(Self.query(sql), logger: logger))
        }
        return try await execute(slot, Self.bindings(sql.binds), on: connection, logger: logger)
    }

    private static func execute<Slot: PreparedSlot>(_ slot: Slot.Type, _ bindings: PostgresBindings, on connection: PostgresConnection, logger: Logger) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        for try await row in try await connection.execute(SlotStatement<Slot>(bindings: bindings), logger: logger) {
            result.append(try Self.row(row))
        }
        return result
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        try await retryingWhenAsked {
            try await writers.withConnection { connection in
                try await Self.inTransaction(connection, deadline: statementDeadline, logger: logger, body)
            }
        }
    }

    /// Serialization failures and deadlocks are the database asking us to try again: up to five tries.
    private func retryingWhenAsked<T>(_ attemptOnce: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await attemptOnce()
            } catch let error as PSQLError where attempt < 5 && Self.isRetryable(error) {
                logger.debug("retrying", metadata: ["attempt": "\(attempt)", "sqlstate": "\(error.serverInfo?[.sqlState] ?? "")"])
                attempt += 1
                try await Task.sleep(for: .milliseconds(5 * attempt))
            }
        }
    }

    private static func inTransaction<T: Sendable>(
        _ connection: PostgresConnection, deadline: Duration, logger: Logger, _ body: @Sendable (any SQLTransaction) async throws -> T
    ) async throws -> T {
        // BEGIN, COMMIT and ROLLBACK run in tasks of their own, so that a cancelled caller never
        // hands the connection back to the pool inside an open transaction.
        try await Task { try await Self.send("BEGIN", on: connection, deadline: deadline, logger: logger) }.value
        do {
            let result = try await body(Transaction(connection: connection, deadline: deadline, logger: logger))
            try await Task { try await Self.send("COMMIT", on: connection, deadline: deadline, logger: logger) }.value
            return result
        } catch {
            // A lost connection took its transaction with it: there is nothing to roll back, and a
            // statement written to a closing PostgresNIO connection is never answered.
            guard !connection.isClosed, !Self.lostConnection(error) else { throw error }
            do {
                try await Task { try await Self.send("ROLLBACK", on: connection, deadline: deadline, logger: logger) }.value
            } catch {
                logger.error("PostgreSQL rollback failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            throw error
        }
    }

    /// Sends a statement without parameters, unless the connection is already closed.
    private static func send(_ statement: PostgresQuery, on connection: PostgresConnection, deadline: Duration, logger: Logger) async throws {
        try await bounded(connection, within: deadline) { _ = try await connection.query(statement, logger: logger) }
    }

    /// PostgresNIO 1.33 writes a statement to its channel without a promise: written after the
    /// connection closed, it is never answered. A closed connection is a temporary failure, at once.
    static func requireOpen(_ connection: PostgresConnection) throws {
        if connection.isClosed { throw PostgresConnectionLost() }
    }

    /// Whether `error` means the connection itself is gone (not a statement the server refused).
    static func lostConnection(_ error: any Error) -> Bool {
        if error is PostgresConnectionLost { return true }
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection: return true
        default: return false
        }
    }

    public func close() async throws {
        await readers.close()
        await writers.close()
    }

    static func isRetryable(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    struct Transaction: SQLTransaction {
        let connection: PostgresConnection
        let deadline: Duration
        let logger: Logger

        func query(_ sql: SQL) async throws -> [SQLRow] {
            try await PostgresDatabase.bounded(connection, within: deadline) { [connection, logger] in
                try await PostgresDatabase.collect(connection.query(PostgresDatabase.query(sql), logger: logger))
            }
        }
    }

    static func query(_ sql: SQL) -> PostgresQuery {
        PostgresQuery(unsafeSQL: sql.text, binds: bindings(sql.binds))
    }

    static func bindings(_ values: [SQLValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .int(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .bool(let value): bindings.append(value)
            case .null: bindings.appendNull()
            case .ints(let values): bindings.append(values)
            case .texts(let values): bindings.append(values)
            }
        }
        return bindings
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        for try await row in rows { result.append(try self.row(row)) }
        return result
    }

    static func row(_ row: PostgresRow) throws -> SQLRow {
        var values: [String: SQLValue] = [:]
        for cell in row {
            values[cell.columnName] = try value(of: cell)
        }
        return SQLRow(values)
    }

    private static func value(of cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2: return .int(try cell.decode(Int64.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        default: return .text(try cell.decode(String.self))
        }
    }
}

/// PostgresNIO keys a prepared statement by a static name and text, so each of a few slot types is
/// given one statement's text, the first time that text is run prepared. The texts are those of
/// ``SQL/prepared()`` statements, a handful of fixed shapes; past the slots, statements run unnamed.
protocol PreparedSlot {}
enum PreparedSlot0: PreparedSlot {}
enum PreparedSlot1: PreparedSlot {}
enum PreparedSlot2: PreparedSlot {}
enum PreparedSlot3: PreparedSlot {}
enum PreparedSlot4: PreparedSlot {}
enum PreparedSlot5: PreparedSlot {}
enum PreparedSlot6: PreparedSlot {}
enum PreparedSlot7: PreparedSlot {}

final class PreparedSlots: Sendable {
    static let shared = PreparedSlots()
    private static let all: [any PreparedSlot.Type] = [
        PreparedSlot0.self, PreparedSlot1.self, PreparedSlot2.self, PreparedSlot3.self,
        PreparedSlot4.self, PreparedSlot5.self, PreparedSlot6.self, PreparedSlot7.self,
    ]
    private struct State {
        var slotOfText: [String: Int] = [:]
        var textOfSlot: [String] = []
    }
    private let state = NIOLockedValueBox(State())

    /// The slot holding `text`, given the next free one on first sight; nil when all are taken.
    func slot(for text: String) -> (any PreparedSlot.Type)? {
        state.withLockedValue { state in
            if let index = state.slotOfText[text] { return Self.all[index] }
            guard state.textOfSlot.count < Self.all.count else { return nil }
            state.slotOfText[text] = state.textOfSlot.count
            state.textOfSlot.append(text)
            return Self.all[state.textOfSlot.count - 1]
        }
    }

    func text(of slot: any PreparedSlot.Type) -> String {
        state.withLockedValue { state in
            guard let index = Self.all.firstIndex(where: { $0 == slot }), index < state.textOfSlot.count else { return "" }
            return state.textOfSlot[index]
        }
    }
}

struct SlotStatement<Slot: PreparedSlot>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var name: String { "souk_\(Slot.self)" }
    static var sql: String { PreparedSlots.shared.text(of: Slot.self) }
    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

/// A statement unanswered past its deadline: the server is frozen, unreachable or overloaded. Its
/// connection was closed, which rolls back a transaction it was in; the caller may try again.
public struct PostgresStatementTimedOut: Error, TemporaryFailure, CustomStringConvertible {
    let deadline: Duration
    public var isTemporary: Bool { true }
    public var description: String { "PostgreSQL did not answer a statement within \(deadline)" }
}

/// A connection found closed before a statement was sent: the server went away (or was
/// restarted); the pool replaces the connection, and the caller may try again.
public struct PostgresConnectionLost: Error, TemporaryFailure, CustomStringConvertible {
    public var isTemporary: Bool { true }
    public var description: String { "the PostgreSQL connection was closed" }
}

/// PostgreSQL out of reach — no connection, a connection lost, the server shutting down or out of
/// connections — is temporary: the HTTP layer answers 503 with `Retry-After`, not 500. A statement
/// the server refused (a constraint, bad SQL) is not.
extension PSQLError: TemporaryFailure {
    public var isTemporary: Bool {
        switch code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
            // A connection closed under the statement, by either side (PostgresNIO closes it itself
            // on a FATAL such as 57P01 when the server is killed): the statement never ran or its
            // transaction was rolled back with the session.
            return true
        case .server:
            return serverInfo?[.sqlState].map(Self.isTemporaryState) ?? false
        default:
            // The server's own error may be wrapped (a closed connection that carries the FATAL).
            return (underlying as? PSQLError)?.isTemporary ?? false
        }
    }

    /// 08: connection exception; 57P01-03 and 57P05: shutdown, crash, cannot connect now, idle
    /// session cut; 57014: cancelled at the statement timeout (an overloaded server, a lock held by a
    /// frozen client); 25P03: the session was ended idle in a transaction; 53xxx: out of resources
    /// (too many connections, memory, disk).
    static func isTemporaryState(_ state: String) -> Bool {
        state.hasPrefix("08") || state.hasPrefix("53") || ["57P01", "57P02", "57P03", "57P05", "57014", "25P03"].contains(state)
    }
}

extension SQLStorage {
    /// Whether the one-statement order was refused whole, so that trying again cannot make a second
    /// order: a reference already taken (23505) or a total past BIGINT (22003). Anything else, above
    /// all a connection lost after the commit, is not tried again: the order may exist. (Trying again
    /// on every error placed one order twice in the chaos run.)
    static func isRetryableOrderStatement(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "23505" || state == "22003"
    }

    /// Whether PostgreSQL refused a statement for a row that is already there (23505): the
    /// statement did nothing.
    static func isUniqueViolation(_ error: any Error) -> Bool {
        (error as? PSQLError)?.serverInfo?[.sqlState] == "23505"
    }
}
