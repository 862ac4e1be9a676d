/// The two SQL engines Souk runs on. Queries are shared; only DDL and a few statements differ.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// Runs statements inside one open transaction.
public protocol SQLTransaction: Sendable {
    @discardableResult
    func query(_ sql: SQL) async throws -> [SQLRow]
}

/// A relational database that the stores use without knowing which engine is behind it.
public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }

    /// A read outside any transaction (each statement sees the latest committed data).
    func read(_ sql: SQL) async throws -> [SQLRow]

    /// One statement that writes, sent alone: atomic by itself, without the round trips of
    /// BEGIN and COMMIT. For statements that do all of their work at once (data-modifying CTEs).
    func execute(_ sql: SQL) async throws -> [SQLRow]

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    /// The body may run again after a serialization failure or deadlock, so it must only talk to the database.
    func transaction<T: Sendable>(_ body: @Sendable (any SQLTransaction) async throws -> T) async throws -> T

    /// Releases connections. The database is unusable afterwards.
    func close() async throws
}

extension SQLTransaction {
    /// The first row, or nil.
    func first(_ sql: SQL) async throws -> SQLRow? { try await query(sql).first }
}

extension SQLDatabase {
    /// Runs `body`, then closes the database, whether `body` returned or threw.
    public func closing<T>(_ body: (Self) async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body(self)
        } catch {
            try? await close()
            throw error
        }
        try await close()
        return result
    }

    func readFirst(_ sql: SQL) async throws -> SQLRow? { try await read(sql).first }

    /// An engine without autocommit statements of its own runs it as a one-statement transaction.
    public func execute(_ sql: SQL) async throws -> [SQLRow] { try await write(sql) }

    /// One statement in its own transaction.
    @discardableResult
    func write(_ sql: SQL) async throws -> [SQLRow] {
        try await transaction { try await $0.query(sql) }
    }
}
