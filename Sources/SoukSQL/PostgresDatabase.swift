import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The production backend: PostgreSQL through a pool of PostgresNIO connections
/// (``PostgresConnectionPool``). ``close()`` closes the connections.
public final class PostgresDatabase: SQLDatabase {
    public var dialect: SQLDialect { .postgres }

    private let pool: PostgresConnectionPool
    private let logger: Logger

    public init(configuration: PostgresConnection.Configuration, maximumConnections: Int = 20, logger: Logger) {
        self.pool = PostgresConnectionPool(configuration: configuration, maximumConnections: maximumConnections, logger: logger)
        self.logger = logger
    }

    /// Connects to `postgres://user:password@host:port/database?sslmode=disable|prefer|require`.
    public convenience init(url: String, maximumConnections: Int = 20, logger: Logger) throws {
        self.init(configuration: try Self.configuration(url: url), maximumConnections: maximumConnections, logger: logger)
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
        try await pool.withConnection { connection in
            try await Self.collect(connection.query(Self.query(sql), logger: logger))
        }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await pool.withConnection { connection in
                    try await Self.inTransaction(connection, logger: logger, body)
                }
            } catch let error as PSQLError where attempt < 5 && Self.isRetryable(error) {
                // Serialization failures and deadlocks are the database asking us to try again.
                logger.debug("retrying transaction", metadata: ["attempt": "\(attempt)", "sqlstate": "\(error.serverInfo?[.sqlState] ?? "")"])
                attempt += 1
                try await Task.sleep(for: .milliseconds(5 * attempt))
            }
        }
    }

    private static func inTransaction<T: Sendable>(
        _ connection: PostgresConnection, logger: Logger, _ body: @Sendable (any SQLTransaction) async throws -> T
    ) async throws -> T {
        // BEGIN, COMMIT and ROLLBACK run in tasks of their own, so that a cancelled caller never
        // hands the connection back to the pool inside an open transaction.
        try await Task { try await connection.query("BEGIN", logger: logger) }.value
        do {
            let result = try await body(Transaction(connection: connection, logger: logger))
            try await Task { try await connection.query("COMMIT", logger: logger) }.value
            return result
        } catch {
            do {
                try await Task { try await connection.query("ROLLBACK", logger: logger) }.value
            } catch {
                logger.error("PostgreSQL rollback failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            throw error
        }
    }

    public func close() async throws {
        await pool.close()
    }

    static func isRetryable(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    struct Transaction: SQLTransaction {
        let connection: PostgresConnection
        let logger: Logger

        func query(_ sql: SQL) async throws -> [SQLRow] {
            try await PostgresDatabase.collect(connection.query(PostgresDatabase.query(sql), logger: logger))
        }
    }

    static func query(_ sql: SQL) -> PostgresQuery {
        var bindings = PostgresBindings(capacity: sql.binds.count)
        for value in sql.binds {
            switch value {
            case .int(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .bool(let value): bindings.append(value)
            case .null: bindings.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: sql.text, binds: bindings)
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        for try await row in rows {
            var values: [String: SQLValue] = [:]
            for cell in row {
                values[cell.columnName] = try value(of: cell)
            }
            result.append(SQLRow(values))
        }
        return result
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
