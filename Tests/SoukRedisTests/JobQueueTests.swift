import Foundation
import SoukCore
import SoukRedis
import SoukSQL
import SoukTesting
@testable import SoukWorkers
import Testing

/// The job queue's behaviour on every backend: a table on SQLite and PostgreSQL, a Redis stream.
enum JobQueueBackend: String, CaseIterable, Sendable {
    case sqlite, postgres, redis

    func withQueue<T: Sendable>(_ body: @Sendable (any JobQueue) async throws -> T) async throws -> T {
        switch self {
        case .sqlite: try await TestBackend.sqlite.withDatabase { try await body(SQLJobQueue(database: $0)) }
        case .postgres: try await TestBackend.postgres.withDatabase { try await body(SQLJobQueue(database: $0)) }
        case .redis: try await PriceFeedBackend.withPrivateRedis { try await body(RedisJobQueue(redis: $0)) }
        }
    }
}

@Suite("Job queue")
struct JobQueueTests {
    /// Long enough that a loaded machine never lets a lease run out by accident.
    static let lease = Duration.seconds(30)
    /// For the test about leases running out.
    static let shortLease = Duration.seconds(2)

    @Test(arguments: JobQueueBackend.allCases)
    func jobsAreClaimedOnceCompletedOnceAndNotDoubled(backend: JobQueueBackend) async throws {
        try await backend.withQueue { queue in
            #expect(try await queue.claim(worker: "a", lease: Self.lease, wait: .milliseconds(50)) == nil)
            try await queue.enqueue(id: "j1", kind: "thumbnails", payload: "1:abc")
            try await queue.enqueue(id: "j1", kind: "thumbnails", payload: "1:abc")  // the same job again: ignored
            try await queue.enqueue(id: "j2", kind: "thumbnails", payload: "2:def")
            #expect(try await queue.counts() == JobCounts(queued: 2))
            let first = try #require(try await queue.claim(worker: "a", lease: Self.lease, wait: .zero))
            let second = try #require(try await queue.claim(worker: "b", lease: Self.lease, wait: .zero))
            #expect(Set([first.id, second.id]) == ["j1", "j2"] && first.attempt == 1 && second.attempt == 1)
            #expect(first.kind == "thumbnails" && ["1:abc", "2:def"].contains(first.payload))
            #expect(try await queue.claim(worker: "c", lease: Self.lease, wait: .zero) == nil, "both are taken")
            #expect(try await queue.counts() == JobCounts(running: 2))
            try await queue.complete(first)
            try await queue.complete(second)
            try await queue.complete(second)  // a second completion changes nothing
            #expect(try await queue.counts() == JobCounts())
            #expect(try await queue.claim(worker: "c", lease: Self.lease, wait: .milliseconds(300)) == nil, "completed jobs never come back")
        }
    }

    @Test(arguments: JobQueueBackend.allCases)
    func aJobWhoseWorkerDiedIsTakenOverAfterItsLease(backend: JobQueueBackend) async throws {
        try await backend.withQueue { queue in
            try await queue.enqueue(id: "j1", kind: "k", payload: "p")
            let lost = try #require(try await queue.claim(worker: "doomed", lease: Self.shortLease, wait: .zero))
            #expect(try await queue.claim(worker: "b", lease: Self.shortLease, wait: .zero) == nil, "leased")
            try await Task.sleep(for: Self.shortLease + .milliseconds(200))
            let again = try #require(try await queue.claim(worker: "b", lease: Self.shortLease, wait: .zero))
            #expect(again.id == "j1" && again.attempt == 2)
            try await queue.complete(lost)  // the dead worker's late word does not settle the new delivery
            try await queue.complete(again)
            #expect(try await queue.counts() == JobCounts())
        }
    }

    @Test(arguments: JobQueueBackend.allCases)
    func failedJobsWaitTheirBackoffThenDieWithTheirReasonAndCanBeRetriedOrPurged(backend: JobQueueBackend) async throws {
        try await backend.withQueue { queue in
            try await queue.enqueue(id: "j1", kind: "k", payload: "p")
            let first = try #require(try await queue.claim(worker: "a", lease: Self.lease, wait: .zero))
            // Taken before the call: the backoff runs from a moment inside it, never earlier.
            let failedAt = ContinuousClock.now
            try await queue.fail(first, reason: "flaky", retryAfter: .seconds(2))
            let early = try await queue.claim(worker: "a", lease: Self.lease, wait: .zero)
            // On a machine running the whole suite, the claim may itself come after the backoff.
            if ContinuousClock.now - failedAt < .milliseconds(1_500) { #expect(early == nil, "not before its backoff") }
            var claimed = early
            if claimed == nil { claimed = try await queue.claim(worker: "a", lease: Self.lease, wait: .seconds(10)) }
            let second = try #require(claimed)
            #expect(second.attempt == 2)
            try await queue.fail(second, reason: "broken for good", retryAfter: nil)
            #expect(try await queue.counts() == JobCounts(dead: 1))
            let dead = try await queue.deadJobs(limit: 10)
            #expect(dead.count == 1 && dead[0].id == "j1" && dead[0].reason == "broken for good" && dead[0].attempts == 2 && dead[0].kind == "k")
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await queue.claim(worker: "a", lease: Self.lease, wait: .zero) == nil, "dead jobs do not run")

            #expect(try await queue.retry(id: "j1"))
            #expect(try await !queue.retry(id: "j1"), "only a dead job can be retried")
            let revived = try #require(try await queue.claim(worker: "a", lease: Self.lease, wait: .seconds(1)))
            #expect(revived.attempt == 1, "a retried job starts its attempts again")
            try await queue.fail(revived, reason: "still broken", retryAfter: nil)
            try await queue.enqueue(id: "j2", kind: "k", payload: "p")
            let other = try #require(try await queue.claim(worker: "a", lease: Self.lease, wait: .zero))
            try await queue.fail(other, reason: "also broken", retryAfter: nil)
            #expect(try await queue.purge(id: "j1") == 1)
            #expect(try await queue.deadJobs(limit: 10).map(\.id) == ["j2"])
            #expect(try await queue.purge(id: nil) == 1)
            #expect(try await queue.counts() == JobCounts())
        }
    }

    @Test(arguments: JobQueueBackend.allCases)
    func concurrentWorkersRunEveryJobExactlyOnce(backend: JobQueueBackend) async throws {
        try await backend.withQueue { queue in
            for index in 0..<60 { try await queue.enqueue(id: "j\(index)", kind: "k", payload: String(index)) }
            let done = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var mine: [String] = []
                        while let job = try await queue.claim(worker: "w\(worker)", lease: .seconds(30), wait: .zero) {
                            mine.append(job.id)
                            try await queue.complete(job)
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(done.count == 60 && Set(done).count == 60, "\(done.count) runs of \(Set(done).count) jobs")
        }
    }
}

@Suite("Job runner")
struct JobRunnerTests {
    /// Fails its first `failures` runs of each job, then succeeds; can hang to play a dying worker.
    final class Flaky: JobHandler, @unchecked Sendable {
        let failures: Int
        let hang: Bool
        private let lock = NSLock()
        private var runs: [String: Int] = [:]

        init(failures: Int, hang: Bool = false) {
            self.failures = failures
            self.hang = hang
        }

        func runs(of id: String) -> Int { lock.withLock { runs[id] ?? 0 } }

        func run(_ job: Job) async throws {
            let count = lock.withLock { () -> Int in
                runs[job.id, default: 0] += 1
                return runs[job.id]!
            }
            if hang { try await Task.sleep(for: .seconds(3_600)) }
            if count <= failures { throw CocoaError(.fileReadUnknown) }
        }
    }

    @Test(arguments: JobQueueBackend.allCases)
    func retriesBackOffAndGiveUpIntoTheDeadLetters(backend: JobQueueBackend) async throws {
        try await backend.withQueue { queue in
            let flaky = Flaky(failures: 2)
            let policy = RetryPolicy(maxAttempts: 3, base: .milliseconds(100), cap: .seconds(1))
            let runner = JobRunner(queue: queue, handlers: ["flaky": flaky, "doomed": Flaky(failures: 99)], worker: "r", lease: .seconds(5), policy: policy, logger: TestLog.logger)
            try await queue.enqueue(id: "ok", kind: "flaky", payload: "")
            try await queue.enqueue(id: "bad", kind: "doomed", payload: "")
            try await queue.enqueue(id: "odd", kind: "unknown-kind", payload: "")
            let running = Task { try await runner.run() }
            defer { running.cancel() }
            try await PriceFeedProducerTests.eventually("every job is settled") {
                let counts = try await queue.counts()
                return counts.queued == 0 && counts.running == 0 && counts.dead == 2
            }
            #expect(flaky.runs(of: "ok") == 3, "two failures, then success")
            let dead = try await queue.deadJobs(limit: 10).sorted { $0.id < $1.id }
            #expect(dead.map(\.id) == ["bad", "odd"])
            #expect(dead[0].attempts == 3, "the doomed job had its three attempts")
            #expect(dead[1].reason.contains("no handler"))
        }
    }

    @Test(arguments: JobQueueBackend.allCases)
    func aWorkerKilledMidJobLeavesItToAnother(backend: JobQueueBackend) async throws {
        try await backend.withQueue { queue in
            try await queue.enqueue(id: "j", kind: "work", payload: "")
            let hanging = Flaky(failures: 0, hang: true)
            let doomed = JobRunner(queue: queue, handlers: ["work": hanging], worker: "doomed", concurrency: 1, lease: .milliseconds(500), logger: TestLog.logger)
            let dying = Task { try await doomed.run() }
            try await PriceFeedProducerTests.eventually("the doomed worker has the job") { hanging.runs(of: "j") == 1 }
            dying.cancel()  // like kill -9: the job is neither completed nor failed
            _ = await dying.result
            let healthy = Flaky(failures: 0)
            let survivor = JobRunner(queue: queue, handlers: ["work": healthy], worker: "survivor", concurrency: 1, lease: .milliseconds(500), logger: TestLog.logger)
            let running = Task { try await survivor.run() }
            defer { running.cancel() }
            try await PriceFeedProducerTests.eventually("the job is done elsewhere") { try await queue.counts() == JobCounts() }
            #expect(healthy.runs(of: "j") == 1)
        }
    }
}
