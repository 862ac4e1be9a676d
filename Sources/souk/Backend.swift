import Foundation
import Logging
import PostgresNIO
import SoukServer
import SoukSQL

/// Opens the configured database for the length of `body` and closes it afterwards.
enum Backend {
    static func with(_ configuration: SoukConfiguration, logger: Logger, _ body: @Sendable (any SQLDatabase) async throws -> Void) async throws {
        switch configuration.database {
        case .sqlite(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            try await SQLiteDatabase.open(path: path, logger: logger).closing(body)
        case .postgres(let url):
            try await PostgresDatabase(url: url, maximumConnections: configuration.databaseConnections, statementTimeout: configuration.databaseTimeout, logger: logger).closing(body)
        }
    }

    static func exitIfStillRunning(after delay: Duration) {
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: Double(delay.components.seconds))
            FileHandle.standardError.write(Data("souk: shutdown took too long; exiting\n".utf8))
            exit(0)
        }
    }
}

/// Installs stdout logging once per process (each subcommand loads settings once).
enum LogSetup {
    private static let once = NSLock()
    nonisolated(unsafe) private static var done = false

    static func bootstrap(level: Logger.Level) {
        once.lock()
        defer { once.unlock() }
        guard !done else { return }
        done = true
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: level) }
    }
}
