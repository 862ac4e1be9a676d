import Foundation
import Logging
import NIOConcurrencyHelpers
import SQLiteNIO

/// The embedded backend: one SQLite file in WAL mode, one writer connection behind a FIFO lock
/// (SQLite allows one writer at a time anyway) and a few reader connections that never block it.
public final class SQLiteDatabase: SQLDatabase {
    public var dialect: SQLDialect { .sqlite }

    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let nextReader = NIOLockedValueBox(0)
    private let writeLock = AsyncMutex()
    private let logger: Logger

    /// Opens (creating if needed) the database file at `path`.
    public static func open(path: String, readers readerCount: Int = 4, logger: Logger) async throws -> SQLiteDatabase {
        let writer = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        // WAL lets readers run while the writer commits; NORMAL sync is durable across process crashes.
        _ = try await writer.query("PRAGMA journal_mode=WAL")
        try await configure(writer)
        var readers: [SQLiteConnection] = []
        for _ in 0..<max(1, readerCount) {
            let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            try await configure(reader)
            readers.append(reader)
        }
        return SQLiteDatabase(writer: writer, readers: readers, logger: logger)
    }

    private static func configure(_ connection: SQLiteConnection) async throws {
        _ = try await connection.query("PRAGMA synchronous=NORMAL")
        _ = try await connection.query("PRAGMA foreign_keys=ON")
        _ = try await connection.query("PRAGMA busy_timeout=5000")
    }

    private init(writer: SQLiteConnection, readers: [SQLiteConnection], logger: Logger) {
        self.writer = writer
        self.readers = readers
        self.logger = logger
    }

    public func read(_ sql: SQL) async throws -> [SQLRow] {
        let index = nextReader.withLockedValue { next in
            defer { next = (next + 1) % readers.count }
            return next
        }
        return try await Self.run(sql, on: readers[index])
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        try await writeLock.withLock {
            // IMMEDIATE takes the write lock at BEGIN, so a transaction never fails half-way on it.
            let writer = writer
            // BEGIN, COMMIT and ROLLBACK run in tasks of their own: a cancelled caller must never
            // leave the one writer connection inside an open transaction.
            try await Task { _ = try await writer.query("BEGIN IMMEDIATE") }.value
            do {
                let result = try await body(Transaction(connection: writer))
                try await Task { _ = try await writer.query("COMMIT") }.value
                return result
            } catch {
                do {
                    try await Task { _ = try await writer.query("ROLLBACK") }.value
                } catch {
                    logger.error("SQLite rollback failed", metadata: ["error": "\(error)"])
                }
                throw error
            }
        }
    }

    public func close() async throws {
        for reader in readers { try await reader.close() }
        try await writer.close()
    }

    struct Transaction: SQLTransaction {
        let connection: SQLiteConnection

        func query(_ sql: SQL) async throws -> [SQLRow] { try await SQLiteDatabase.run(sql, on: connection) }
    }

    static func run(_ sql: SQL, on connection: SQLiteConnection) async throws -> [SQLRow] {
        let binds: [SQLiteData] = try sql.binds.map { value throws(SQLDatabaseError) in
            switch value {
            case .int(let value): .integer(Int(value))
            case .text(let value): .text(value)
            case .bool(let value): .integer(value ? 1 : 0)
            case .null: .null
            case .ints, .texts: throw .unsupported("SQLite binds no arrays")
            }
        }
        let rows = try await connection.query(sql.sqliteText, binds)
        return rows.map { row in
            var values: [String: SQLValue] = [:]
            for column in row.columns {
                values[column.name] = switch column.data {
                case .integer(let value): .int(Int64(value))
                // SQLite turns an integer sum that overflows into a REAL; read it without trapping.
                case .float(let value): .int(Int64(saturating: value))
                case .text(let value): .text(value)
                case .blob(let buffer): .text(String(buffer: buffer))
                case .null: .null
                }
            }
            return SQLRow(values)
        }
    }
}
