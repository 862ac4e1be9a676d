import Foundation
import RESP
import SoukCore

/// The job queue on a Redis stream read by a consumer group: a worker that dies leaves its entry
/// pending and another takes it over after the lease (`XAUTOCLAIM`); retries wait in a sorted set
/// until due; dead jobs keep their reason. Every change of a job's state is one script.
public struct RedisJobQueue: JobQueue {
    let redis: RedisClient
    typealias Keys = RedisKeys.Jobs

    public init(redis: RedisClient) {
        self.redis = redis
    }

    public func enqueue(id: String, kind: String, payload: String) async throws {
        _ = try await redis.evalsha(Self.enqueueScript, keys: [Keys.kinds, Keys.payloads, Keys.attempts, Keys.queue], arguments: [id, kind, payload])
    }

    public func claim(worker: String, lease: Duration, wait: Duration) async throws -> Job? {
        // Short blocking reads, so that a retry falling due during the wait is promoted and seen.
        let deadline = ContinuousClock.now + wait
        while true {
            _ = try await redis.evalsha(Self.promoteScript, keys: [Keys.delayed, Keys.queue], arguments: [String(Self.now())])
            let block = min(deadline - ContinuousClock.now, .milliseconds(250))
            let job: Job?
            do {
                job = try await take(worker: worker, lease: lease, wait: block)
            } catch let error as RESPServerError where error.code == "NOGROUP" {
                try await redis.xgroupCreate(Keys.queue, group: Keys.group, startingAt: "0")
                continue
            }
            if let job { return job }
            if ContinuousClock.now >= deadline { return nil }
        }
    }

    private func take(worker: String, lease: Duration, wait: Duration) async throws -> Job? {
        var entry = try await redis.xautoclaim(Keys.queue, group: Keys.group, consumer: worker, minIdle: lease, count: 1).entries.first
        if entry == nil {
            // BLOCK 0 would wait forever: no wait means a plain read.
            entry = try await redis.xreadgroup(group: Keys.group, consumer: worker, stream: Keys.queue, count: 1, block: wait > .zero ? wait : nil).first
        }
        guard let entry, let id = entry["id"] else { return nil }
        let reply = try await redis.evalsha(Self.startScript, keys: [Keys.kinds, Keys.payloads, Keys.attempts, Keys.queue], arguments: [id, entry.id, Keys.group])
        guard let parts = reply.elements, parts.count == 3, let kind = parts[0].string, let payload = parts[1].string, let attempt = parts[2].int else {
            return nil  // a leftover entry of a job that no longer exists: the script dropped it
        }
        return Job(id: id, kind: kind, payload: payload, attempt: Int(attempt), receipt: entry.id)
    }

    public func complete(_ job: Job) async throws {
        _ = try await redis.evalsha(Self.completeScript, keys: [Keys.queue, Keys.kinds, Keys.payloads, Keys.attempts], arguments: [job.receipt, Keys.group, job.id])
    }

    public func fail(_ job: Job, reason: String, retryAfter delay: Duration?) async throws {
        if let delay {
            let due = Self.now() + FeedSchedule(length: delay).length
            _ = try await redis.evalsha(Self.retryLaterScript, keys: [Keys.queue, Keys.delayed], arguments: [job.receipt, Keys.group, job.id, String(due)])
        } else {
            _ = try await redis.evalsha(Self.deadScript, keys: [Keys.queue, Keys.dead], arguments: [job.receipt, Keys.group, job.id, "\(Self.now()) \(reason.prefix(2_000))"])
        }
    }

    public func deadJobs(limit: Int) async throws -> [DeadJob] {
        let dead = try await redis.hgetall(Keys.dead)
        var jobs: [DeadJob] = []
        for (id, record) in dead {
            let parts = record.split(separator: " ", maxSplits: 1)
            let failedAt = parts.first.flatMap { Int64($0) }.map { Date(timeIntervalSince1970: Double($0) / 1_000) } ?? Date(timeIntervalSince1970: 0)
            jobs.append(DeadJob(
                id: id, kind: try await redis.hget(Keys.kinds, id) ?? "", payload: try await redis.hget(Keys.payloads, id) ?? "",
                attempts: Int(try await redis.hget(Keys.attempts, id) ?? "") ?? 0, reason: parts.count > 1 ? String(parts[1]) : "", failedAt: failedAt))
        }
        return Array(jobs.sorted { ($0.failedAt, $0.id) > ($1.failedAt, $1.id) }.prefix(limit))
    }

    public func retry(id: String) async throws -> Bool {
        try await redis.evalsha(Self.reviveScript, keys: [Keys.dead, Keys.attempts, Keys.queue], arguments: [id]).int == 1
    }

    public func purge(id: String?) async throws -> Int {
        var ids: [String]
        if let id { ids = [id] } else { ids = Array(try await redis.hgetall(Keys.dead).keys) }
        var purged = 0
        for id in ids {
            purged += Int(try await redis.evalsha(Self.purgeScript, keys: [Keys.dead, Keys.kinds, Keys.payloads, Keys.attempts], arguments: [id]).int ?? 0)
        }
        return purged
    }

    public func counts() async throws -> JobCounts {
        let replies = try await redis.pipeline([
            RESPCommand("XLEN", [Keys.queue]), RESPCommand("ZCARD", [Keys.delayed]), RESPCommand("HLEN", [Keys.dead]),
            RESPCommand("XPENDING", [Keys.queue, Keys.group]),
        ])
        // Counts from Redis, clamped before arithmetic: a damaged key must not trap the process.
        func count(_ value: Int64?) -> Int64 { min(max(value ?? 0, 0), Int64(Int32.max)) }
        let running = count(replies[3].elements?.first?.int)
        let inStream = count(replies[0].int)
        return JobCounts(queued: Int(max(0, inStream - running) + count(replies[1].int)), running: Int(running), dead: Int(count(replies[2].int)))
    }

    static func now() -> Int64 { FeedSchedule.now() }

    /// KEYS: kinds, payloads, attempts, queue. ARGV: id, kind, payload. A job already known is left alone.
    static let enqueueScript = RedisScript("""
        if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
        redis.call('HSET', KEYS[3], ARGV[1], 0)
        redis.call('XADD', KEYS[4], '*', 'id', ARGV[1])
        return 1
        """)

    /// KEYS: delayed, queue. ARGV: now (ms). Moves due retries into the stream.
    static let promoteScript = RedisScript("""
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
        for _, id in ipairs(due) do
            redis.call('ZREM', KEYS[1], id)
            redis.call('XADD', KEYS[2], '*', 'id', id)
        end
        return #due
        """)

    /// KEYS: kinds, payloads, attempts, queue. ARGV: id, entry, group. Counts the attempt and returns
    /// the job; an entry whose job is gone is acknowledged and dropped.
    static let startScript = RedisScript("""
        local kind = redis.call('HGET', KEYS[1], ARGV[1])
        if not kind then
            redis.call('XACK', KEYS[4], ARGV[3], ARGV[2])
            redis.call('XDEL', KEYS[4], ARGV[2])
            return false
        end
        local attempt = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
        return {kind, redis.call('HGET', KEYS[2], ARGV[1]), attempt}
        """)

    /// KEYS: queue, kinds, payloads, attempts. ARGV: entry, group, id.
    static let completeScript = RedisScript("""
        if redis.call('XACK', KEYS[1], ARGV[2], ARGV[1]) == 0 then return 0 end
        redis.call('XDEL', KEYS[1], ARGV[1])
        redis.call('HDEL', KEYS[2], ARGV[3])
        redis.call('HDEL', KEYS[3], ARGV[3])
        redis.call('HDEL', KEYS[4], ARGV[3])
        return 1
        """)

    /// KEYS: queue, delayed. ARGV: entry, group, id, due (ms).
    static let retryLaterScript = RedisScript("""
        if redis.call('XACK', KEYS[1], ARGV[2], ARGV[1]) == 0 then return 0 end
        redis.call('XDEL', KEYS[1], ARGV[1])
        redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
        return 1
        """)

    /// KEYS: queue, dead. ARGV: entry, group, id, "failed-at reason".
    static let deadScript = RedisScript("""
        if redis.call('XACK', KEYS[1], ARGV[2], ARGV[1]) == 0 then return 0 end
        redis.call('XDEL', KEYS[1], ARGV[1])
        redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
        return 1
        """)

    /// KEYS: dead, attempts, queue. ARGV: id.
    static let reviveScript = RedisScript("""
        if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
        redis.call('HSET', KEYS[2], ARGV[1], 0)
        redis.call('XADD', KEYS[3], '*', 'id', ARGV[1])
        return 1
        """)

    /// KEYS: dead, kinds, payloads, attempts. ARGV: id.
    static let purgeScript = RedisScript("""
        if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
        redis.call('HDEL', KEYS[2], ARGV[1])
        redis.call('HDEL', KEYS[3], ARGV[1])
        redis.call('HDEL', KEYS[4], ARGV[1])
        return 1
        """)
}
