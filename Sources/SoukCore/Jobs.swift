import Foundation

/// A unit of background work. Jobs are idempotent: running one twice (after a worker died mid-job)
/// has the effect of running it once.
public struct Job: Sendable, Equatable {
    /// Unique per enqueued job; enqueuing the same id again while it is queued adds nothing.
    public let id: String
    public let kind: String
    public let payload: String
    /// How many times it has been started, this run included.
    public let attempt: Int
    /// The backend's handle for this delivery (a stream entry id, or the job id).
    public let receipt: String

    public init(id: String, kind: String, payload: String, attempt: Int, receipt: String) {
        self.id = id
        self.kind = kind
        self.payload = payload
        self.attempt = attempt
        self.receipt = receipt
    }
}

/// A job that failed too often, kept with the reason until someone retries or purges it.
public struct DeadJob: Sendable, Equatable {
    public let id: String
    public let kind: String
    public let payload: String
    public let attempts: Int
    public let reason: String
    public let failedAt: Date

    public init(id: String, kind: String, payload: String, attempts: Int, reason: String, failedAt: Date) {
        self.id = id
        self.kind = kind
        self.payload = payload
        self.attempts = attempts
        self.reason = reason
        self.failedAt = failedAt
    }
}

public struct JobCounts: Sendable, Equatable {
    public var queued = 0
    public var running = 0
    public var dead = 0

    public init(queued: Int = 0, running: Int = 0, dead: Int = 0) {
        self.queued = queued
        self.running = running
        self.dead = dead
    }
}

/// A durable queue of jobs (a Redis stream in production, a table in embedded mode). A job taken
/// by a worker that dies is given to another after its lease; a failed job is retried after the
/// delay the caller asks for, or dead-lettered with the reason.
public protocol JobQueue: Sendable {
    func enqueue(id: String, kind: String, payload: String) async throws
    /// The next due job, leased to `worker` for `lease`; nil when none is due within `wait`. Every
    /// worker of a queue uses the same lease (on Redis it is also how long a job must sit idle
    /// before another worker takes it over).
    func claim(worker: String, lease: Duration, wait: Duration) async throws -> Job?
    func complete(_ job: Job) async throws
    /// Schedules the job again after `delay`, or dead-letters it with `reason` when `delay` is nil.
    func fail(_ job: Job, reason: String, retryAfter delay: Duration?) async throws
    func deadJobs(limit: Int) async throws -> [DeadJob]
    /// Puts a dead job back in the queue with its attempts reset; false when there is no such dead job.
    func retry(id: String) async throws -> Bool
    /// Forgets dead jobs (one, or all); returns how many.
    func purge(id: String?) async throws -> Int
    func counts() async throws -> JobCounts
}

/// When to try a failed job again: exponential, capped, with jitter so that a burst of failures
/// does not come back as a burst.
public struct RetryPolicy: Sendable {
    public let maxAttempts: Int
    public let base: Duration
    public let cap: Duration

    public init(maxAttempts: Int = 5, base: Duration = .seconds(1), cap: Duration = .seconds(300)) {
        self.maxAttempts = maxAttempts
        self.base = base
        self.cap = cap
    }

    /// Nil once the attempts are used up: the job goes to the dead letters.
    public func delay(afterAttempt attempt: Int) -> Duration? {
        guard attempt < maxAttempts else { return nil }
        let exponential = base * (1 << min(attempt - 1, 20))
        let capped = min(exponential, cap)
        return capped * Double.random(in: 0.8...1.2)
    }
}
