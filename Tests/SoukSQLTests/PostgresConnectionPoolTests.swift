import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import PostgresNIO
import SoukCore
@testable import SoukSQL
import SoukTesting
import Testing

/// Souk's own PostgreSQL pool, against the real server of `scripts/test`.
@Suite("PostgreSQL connection pool")
struct PostgresConnectionPoolTests {
    /// A pool whose waiters wait as long as it takes (these tests are about sharing, and a machine
    /// running the whole suite can be slow); `leaseTimeout` has its own test.
    private func withPool<T: Sendable>(size: Int, leaseTimeout: Duration = .seconds(600), _ body: @Sendable (PostgresConnectionPool) async throws -> T) async throws -> T {
        let pool = PostgresConnectionPool(
            configuration: try PostgresDatabase.configuration(url: try PostgresTestServer.url()), maximumConnections: size, leaseTimeout: leaseTimeout, logger: TestLog.logger
        )
        do {
            let result = try await body(pool)
            await pool.close()
            return result
        } catch {
            await pool.close()
            throw error
        }
    }

    /// Ends a backend from outside, as an administrator or a failover would.
    private static func terminate(_ pid: Int32) async throws {
        let admin = try await PostgresConnection.connect(
            configuration: try PostgresDatabase.configuration(url: try PostgresTestServer.url()), id: 99, logger: TestLog.logger
        )
        try await admin.query("SELECT pg_terminate_backend(\(pid))", logger: TestLog.logger)
        try await admin.close()
    }

    /// Leases a connection and keeps it until `release` is called; returns once it is held.
    private static func holdingTheOnlyConnection(_ pool: PostgresConnectionPool) async -> (holder: Task<Void, any Error>, release: @Sendable () -> Void) {
        let holding = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await pool.withConnection { _ in
                holding.continuation.yield()
                for await _ in release.stream { break }
            }
        }
        for await _ in holding.stream { break }
        return (holder, { release.continuation.yield() })
    }

    /// The first answer of `attempt` within a few tries (a dead connection fails one attempt at most).
    private static func eventually<T: Sendable>(_ attempt: () async throws -> T) async throws -> T? {
        for _ in 0..<4 {
            if let value = try? await attempt() { return value }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    private static func backendPID(_ connection: PostgresConnection) async throws -> Int32 {
        for try await pid in try await connection.query("SELECT pg_backend_pid()", logger: TestLog.logger).decode(Int32.self) { return pid }
        throw TestFailure("no pid")
    }

    @Test func manyCallersShareAtMostTheMaximumOfConnectionsAndAllFinish() async throws {
        let (peak, backends) = try await withPool(size: 3) { pool in
            let counters = NIOLockedValueBox((inUse: 0, peak: 0, backends: Set<Int32>()))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        try await pool.withConnection { connection in
                            counters.withLockedValue { $0.inUse += 1; $0.peak = max($0.peak, $0.inUse) }
                            let pid = try await Self.backendPID(connection)
                            counters.withLockedValue { $0.inUse -= 1; $0.backends.insert(pid) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            return counters.withLockedValue { ($0.peak, $0.backends) }
        }
        #expect(peak <= 3)
        #expect(backends.count <= 3, "connections are kept and reused, not opened per lease")
    }

    @Test func aCancelledWaiterGivesUpWithoutTakingTheConnection() async throws {
        try await withPool(size: 1) { pool in
            let (holder, release) = await Self.holdingTheOnlyConnection(pool)
            let waiter = Task { try await pool.withConnection { try await Self.backendPID($0) } }
            try await Task.sleep(for: .milliseconds(50))
            waiter.cancel()
            await #expect(throws: CancellationError.self) { try await waiter.value }
            release()
            try await holder.value
            // The one connection is free again: the cancelled waiter did not keep it.
            _ = try await pool.withConnection { try await Self.backendPID($0) }
        }
    }

    @Test func aConnectionTheServerClosedIsReplaced() async throws {
        try await withPool(size: 1) { pool in
            let first = try await pool.withConnection { try await Self.backendPID($0) }
            try await Self.terminate(first)
            // The idle connection is dead now; one failed attempt at most, then a fresh backend.
            let replaced = try #require(try await Self.eventually { try await pool.withConnection { try await Self.backendPID($0) } })
            #expect(replaced != first)
        }
    }

    /// Nothing waits forever: a waiter still waiting at the lease timeout fails, temporarily (503),
    /// and the pool goes on serving once a connection is free.
    @Test func aWaiterGivesUpAtTheLeaseTimeout() async throws {
        try await withPool(size: 1, leaseTimeout: .milliseconds(300)) { pool in
            let (holder, release) = await Self.holdingTheOnlyConnection(pool)
            let started = ContinuousClock.now
            do {
                try await pool.withConnection { _ in }
                Issue.record("a lease was granted while the only connection was held")
            } catch let error as PostgresConnectionPool.PoolError {
                #expect(error.isTemporary && ContinuousClock.now - started >= .milliseconds(300))
            }
            release()
            try await holder.value
            #expect(try await pool.withConnection { try await Self.backendPID($0) } > 0, "served again")
        }
    }

    @Test func closingFailsWaitersAndLaterLeases() async throws {
        let pool = PostgresConnectionPool(
            configuration: try PostgresDatabase.configuration(url: try PostgresTestServer.url()), maximumConnections: 1, logger: TestLog.logger
        )
        // The holder keeps the only connection until told, not for a time a loaded machine may exceed.
        let (holder, release) = await Self.holdingTheOnlyConnection(pool)
        let waiter = Task { try await pool.withConnection { _ in } }
        try await Task.sleep(for: .milliseconds(50))  // waiting by now, or a later lease: both must fail
        await pool.close()
        await #expect(throws: PostgresConnectionPool.PoolError.self) { try await waiter.value }
        release()
        try await holder.value
        await #expect(throws: PostgresConnectionPool.PoolError.self) { try await pool.withConnection { _ in } }
    }

    /// Reads have connections of their own: with every writer held by an open transaction, a read
    /// is still answered at once; a write is answered once a writer is free.
    @Test func readsDoNotQueueBehindWrites() async throws {
        let database = PostgresDatabase(configuration: try PostgresDatabase.configuration(url: try PostgresTestServer.url()), maximumConnections: 4, logger: TestLog.logger)
        try await database.closing { database in
            let holding = AsyncStream<Void>.makeStream()
            let release = AsyncStream<Void>.makeStream()
            let writers = (0..<3).map { _ in
                Task {
                    try await database.transaction { transaction in
                        try await transaction.query("SELECT 1")
                        holding.continuation.yield()
                        for await _ in release.stream { break }
                    }
                }
            }
            var held = 0
            for await _ in holding.stream {
                held += 1
                if held == 3 { break }
            }
            let write = Task { try await database.execute("SELECT 2 AS n").first?.int("n") }
            let answer = try await withThrowingTaskGroup(of: Int64?.self) { group in
                group.addTask { try await database.read("SELECT 1 AS n").first?.int("n") }
                group.addTask { try await Task.sleep(for: .seconds(10)); return nil }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
            #expect(answer == 1, "the read did not wait for the writers")
            release.continuation.finish()
            for writer in writers { try await writer.value }
            #expect(try await write.value == 2)
        }
    }

    /// PostgreSQL out of reach is a temporary failure (the API answers 503 with `Retry-After`); a
    /// statement the server refuses is not.
    @Test func anUnreachableServerIsATemporaryFailure() async throws {
        let socket = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(socket.localAddress?.port)
        try await socket.close()  // a port nobody listens on
        let unreachable = try PostgresDatabase(url: "postgres://souk@127.0.0.1:\(port)/postgres", maximumConnections: 2, logger: TestLog.logger)
        try await unreachable.closing { database in
            await #expect { try await database.read("SELECT 1") } throws: { error in
                (error as? any TemporaryFailure)?.isTemporary == true
            }
        }
        let database = PostgresDatabase(configuration: try PostgresDatabase.configuration(url: try PostgresTestServer.url()), maximumConnections: 2, logger: TestLog.logger)
        try await database.closing { database in
            await #expect { try await database.read("SELECT no_such_column FROM no_such_table") } throws: { error in
                (error as? any TemporaryFailure)?.isTemporary == false
            }
        }
    }

    /// Statements marked `prepared()` give the same rows as unnamed ones, from many callers, after the
    /// connection is replaced, with a NULL parameter (run unnamed) and past the prepared slots.
    @Test func preparedStatementsAnswerAsUnnamedOnesDo() async throws {
        let database = PostgresDatabase(configuration: try PostgresDatabase.configuration(url: try PostgresTestServer.url()), maximumConnections: 1, logger: TestLog.logger)
        try await database.closing { database in
            func sum(_ a: Int64, _ b: Int64, prepared: Bool) async throws -> Int64 {
                let sql: SQL = "SELECT \(a) + \(b) AS total, \("text") || 'x' AS label, \(true) AS flag"
                let row = try #require(try await database.read(prepared ? sql.prepared() : sql).first)
                #expect(try row.string("label") == "textx")
                return try row.int("total")
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in Int64(0)..<40 {
                    group.addTask {
                        let total = try await sum(n, 1, prepared: true)
                        #expect(total == n + 1)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await sum(2, 3, prepared: false) == 5)

            // The backend gone: its replacement prepares again.
            let pid = try #require(try await database.read("SELECT pg_backend_pid() AS pid").first?.int("pid"))
            try await Self.terminate(Int32(pid))
            #expect(try await Self.eventually { try await sum(7, 8, prepared: true) } == 15)

            let withNull: SQL = "SELECT COALESCE(\(nil as Int64?), 4) AS n"
            #expect(try await database.read(withNull.prepared()).first?.int("n") == 4)
            for shape in 0..<12 {
                let distinct = SQL(stringLiteral: "SELECT \(shape) AS shape")
                #expect(try await database.read(distinct.prepared()).first?.int("shape") == Int64(shape))
            }
        }
    }
}

private struct TestFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
