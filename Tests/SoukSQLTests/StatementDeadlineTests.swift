import Foundation
import PostgresNIO
import SoukCore
@testable import SoukSQL
import SoukTesting
import Testing

/// Nothing waits forever on PostgreSQL: a slow statement is cancelled by the server at the statement
/// timeout, and a server that answers nothing at all (frozen with SIGSTOP) is given up on at the
/// client's deadline. Both are temporary failures, and the database works again afterwards.
@Suite("PostgreSQL statement deadlines", .serialized, .timeLimit(.minutes(2)))
struct StatementDeadlineTests {
    @Test func aStatementPastTheTimeoutIsCancelledByTheServerAsATemporaryFailure() async throws {
        let database = PostgresDatabase(
            configuration: try PostgresDatabase.configuration(url: try PostgresTestServer.url()), maximumConnections: 2, statementTimeout: .seconds(1), logger: TestLog.logger
        )
        try await database.closing { database in
            let started = ContinuousClock.now
            await #expect { try await database.read("SELECT pg_sleep(30)") } throws: { error in
                (error as? any TemporaryFailure)?.isTemporary == true
            }
            await #expect { try await database.transaction { try await $0.query("SELECT pg_sleep(30)") } } throws: { error in
                (error as? any TemporaryFailure)?.isTemporary == true
            }
            #expect(ContinuousClock.now - started < .seconds(20), "both statements were cut off near the 1 s timeout")
            let one = try await database.read("SELECT 1 AS one")[0].int("one")
            #expect(one == 1)
        }
    }

    @Test func aFrozenServerIsGivenUpOnAtTheDeadlineAndUsedAgainWhenItWakes() async throws {
        let postgres = try await PrivatePostgresServer()
        defer { postgres.stop() }
        let database = try PostgresDatabase(url: postgres.url, maximumConnections: 4, statementTimeout: .seconds(1), logger: TestLog.logger)
        try await database.closing { database in
            // Open connections first: frozen, the server still holds them open and answers nothing.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 { group.addTask { _ = try await database.read("SELECT pg_sleep(0.2)") } }
                for _ in 0..<1 { group.addTask { _ = try await database.execute("SELECT pg_sleep(0.2)") } }
                try await group.waitForAll()
            }
            postgres.freeze()
            let frozenAt = ContinuousClock.now
            // More callers than connections, reads, writes and transactions: every one is answered.
            let failures = try await withThrowingTaskGroup(of: (any Error)?.self) { group in
                for caller in 0..<8 {
                    group.addTask {
                        do {
                            switch caller % 3 {
                            case 0: _ = try await database.read("SELECT 1")
                            case 1: _ = try await database.execute("SELECT 1")
                            default: _ = try await database.transaction { try await $0.query("SELECT 1") }
                            }
                            return nil
                        } catch {
                            return error
                        }
                    }
                }
                var failures: [any Error] = []
                for try await failure in group { if let failure { failures.append(failure) } }
                return failures
            }
            let answeredAfter = ContinuousClock.now - frozenAt
            postgres.thaw()
            #expect(failures.count == 8, "nothing was answered by a frozen server")
            #expect(failures.allSatisfy { ($0 as? any TemporaryFailure)?.isTemporary == true }, "every failure is temporary: \(failures)")
            #expect(answeredAfter < .seconds(30), "every caller was answered (deadline 3 s, connect timeout 5 s), after \(answeredAfter)")

            var answer: Int64?
            for _ in 0..<50 where answer == nil {
                answer = try? await database.read("SELECT 1 AS one")[0].int("one")
                if answer == nil { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(answer == 1, "the database is used again once the server wakes")
        }
    }
}
