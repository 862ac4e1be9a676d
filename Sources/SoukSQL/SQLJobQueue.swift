import Foundation
import SoukCore

/// The job queue in a table: embedded mode's queue, and a correct one on PostgreSQL too. A claim is
/// one statement that takes the oldest due job (or one whose lease ran out) and leases it; on
/// PostgreSQL `FOR UPDATE SKIP LOCKED` lets workers claim different jobs at once.
public struct SQLJobQueue: JobQueue {
    let database: any SQLDatabase

    public init(database: any SQLDatabase) {
        self.database = database
    }

    public func enqueue(id: String, kind: String, payload: String) async throws {
        let now = Date()
        try await database.write("""
            INSERT INTO jobs (id, kind, payload, state, attempts, run_at, created_at, updated_at)
            VALUES (\(id), \(kind), \(payload), 'queued', 0, \(now), \(now), \(now))
            ON CONFLICT (id) DO NOTHING
            """)
    }

    public func claim(worker: String, lease: Duration, wait: Duration) async throws -> Job? {
        let deadline = ContinuousClock.now + wait
        while true {
            let now = Date()
            var sql: SQL = """
                UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = \(worker),
                    lease_until = \(now.addingTimeInterval(lease.seconds)), updated_at = \(now)
                WHERE id = (SELECT id FROM jobs
                            WHERE (state = 'queued' AND run_at <= \(now)) OR (state = 'running' AND lease_until < \(now))
                            ORDER BY run_at LIMIT 1
                """
            if database.dialect == .postgres { sql.append(" FOR UPDATE SKIP LOCKED") }
            sql.append(") RETURNING id, kind, payload, attempts")
            if let row = try await database.write(sql).first {
                let attempts = try row.int("attempts")
                let id = try row.string("id")
                return Job(id: id, kind: try row.string("kind"), payload: try row.string("payload"), attempt: Int(attempts), receipt: "\(attempts)")
            }
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
        }
    }

    /// Only the current delivery may settle a job: one whose lease ran out and that another worker
    /// took since is left to that worker.
    public func complete(_ job: Job) async throws {
        try await database.write("DELETE FROM jobs WHERE id = \(job.id) AND state = 'running' AND attempts = \(Int64(job.receipt) ?? -1)")
    }

    public func fail(_ job: Job, reason: String, retryAfter delay: Duration?) async throws {
        let now = Date()
        let reason = String(reason.prefix(2_000))
        if let delay {
            try await database.write("""
                UPDATE jobs SET state = 'queued', run_at = \(now.addingTimeInterval(delay.seconds)), lease_owner = NULL, lease_until = NULL,
                    last_error = \(reason), updated_at = \(now)
                WHERE id = \(job.id) AND state = 'running' AND attempts = \(Int64(job.receipt) ?? -1)
                """)
        } else {
            try await database.write("""
                UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_until = NULL, last_error = \(reason), updated_at = \(now)
                WHERE id = \(job.id) AND state = 'running' AND attempts = \(Int64(job.receipt) ?? -1)
                """)
        }
    }

    public func deadJobs(limit: Int) async throws -> [DeadJob] {
        try await database.read("""
            SELECT id, kind, payload, attempts, last_error, updated_at FROM jobs WHERE state = 'dead' ORDER BY updated_at DESC, id LIMIT \(limit)
            """).map { row in
            DeadJob(id: try row.string("id"), kind: try row.string("kind"), payload: try row.string("payload"), attempts: Int(try row.int("attempts")),
                    reason: try row.optionalString("last_error") ?? "", failedAt: try row.date("updated_at"))
        }
    }

    public func retry(id: String) async throws -> Bool {
        let now = Date()
        return !(try await database.write("""
            UPDATE jobs SET state = 'queued', attempts = 0, run_at = \(now), updated_at = \(now) WHERE id = \(id) AND state = 'dead' RETURNING id
            """).isEmpty)
    }

    public func purge(id: String?) async throws -> Int {
        if let id { return try await database.write("DELETE FROM jobs WHERE id = \(id) AND state = 'dead' RETURNING id").count }
        return try await database.write("DELETE FROM jobs WHERE state = 'dead' RETURNING id").count
    }

    public func counts() async throws -> JobCounts {
        var counts = JobCounts()
        for row in try await database.read("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state") {
            let n = Int(try row.int("n"))
            switch try row.string("state") {
            case "queued": counts.queued = n
            case "running": counts.running = n
            default: counts.dead = n
            }
        }
        return counts
    }
}

extension Duration {
    var seconds: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
