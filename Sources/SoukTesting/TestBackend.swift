import Foundation
import Logging
import PostgresNIO
import SoukSQL

/// The SQL backends every storage behaviour test runs against.
public enum TestBackend: String, CaseIterable, Sendable {
    case sqlite
    case postgres

    /// Runs `body` with a fresh, migrated database of this backend that no other test sees, and
    /// removes it afterwards. PostgreSQL comes from `SOUK_TEST_POSTGRES_URL` (set by `scripts/test`).
    public func withDatabase<T: Sendable>(migrated: Bool = true, _ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        switch self {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            return try await SQLiteDatabase.open(path: directory.appendingPathComponent("souk.sqlite").path, logger: TestLog.logger).closing { database in
                if migrated { try await Migrator(database: database).migrate() }
                return try await body(database)
            }
        case .postgres:
            let name = try await PostgresTestServer.shared.createDatabase(migrated: migrated)
            do {
                let result = try await PostgresTestServer.shared.withDatabase(name) { database in
                    try await body(database)
                }
                try await PostgresTestServer.shared.dropDatabase(name)
                return result
            } catch {
                try? await PostgresTestServer.shared.dropDatabase(name)
                throw error
            }
        }
    }
}

public enum TestLog {
    public static let logger: Logger = {
        var logger = Logger(label: "souk.test")
        logger.logLevel = .warning
        return logger
    }()
}

public enum TestEnvironmentError: Error, CustomStringConvertible {
    case missing(String)

    public var description: String {
        switch self {
        case .missing(let name): "\(name) is not set: run the tests with scripts/test, which starts PostgreSQL and Redis"
        }
    }
}

/// The PostgreSQL server started by `scripts/test`. Each test gets its own database, copied from a
/// template that is migrated once per test process, so no test sees another's rows.
public actor PostgresTestServer {
    public static let shared = PostgresTestServer()

    /// The one migrated template, made by the first caller; callers arriving meanwhile (the actor
    /// is reentrant across awaits) wait for it instead of each making their own.
    private var templateTask: Task<String, any Error>?

    public static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SOUK_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw TestEnvironmentError.missing("SOUK_TEST_POSTGRES_URL")
        }
        return url
    }

    /// The server URL with another database name.
    public static func url(database: String) throws -> String {
        var components = URLComponents(string: try url())!
        components.path = "/" + database
        return components.string!
    }

    /// Creates a new database (migrated from the template, or empty) and returns its name.
    public func createDatabase(migrated: Bool) async throws -> String {
        let name = "souk_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased())"
        let source = migrated ? try await template() : "template0"
        // The template's own client may still be closing its connections; PostgreSQL then refuses the copy.
        for attempt in 1...50 {
            do {
                try await admin("CREATE DATABASE \(name) TEMPLATE \(source)")
                return name
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55006" && attempt < 50 {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return name
    }

    public func dropDatabase(_ name: String) async throws {
        try await admin("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    private func template() async throws -> String {
        if let templateTask { return try await templateTask.value }
        let task = Task<String, any Error> {
            let name = "souk_template_\(ProcessInfo.processInfo.processIdentifier)_\(UInt32.random(in: 0 ... .max))"
            try await self.admin("CREATE DATABASE \(name) TEMPLATE template0")
            try await self.withDatabase(name) { database in
                try await Migrator(database: database).migrate()
            }
            return name
        }
        templateTask = task
        do {
            return try await task.value
        } catch {
            templateTask = nil  // the next caller tries again
            throw error
        }
    }

    /// Runs `body` with `database` open, and closes its connections afterwards.
    @discardableResult
    public nonisolated func withDatabase<T: Sendable>(_ name: String, _ body: @Sendable (SoukSQL.PostgresDatabase) async throws -> T) async throws -> T {
        try await PostgresDatabase(configuration: try PostgresDatabase.configuration(url: try Self.url(database: name)), maximumConnections: 10, logger: TestLog.logger)
            .closing(body)
    }

    private func admin(_ statement: String) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: try PostgresDatabase.configuration(url: try Self.url(database: "postgres")), id: 0, logger: TestLog.logger
        )
        do {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: TestLog.logger)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }
}
