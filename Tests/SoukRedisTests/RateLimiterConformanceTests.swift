import Foundation
import NIOCore
import NIOPosix
import Synchronization
import SoukCore
import SoukRedis
import SoukTesting
import Testing

/// The rate limiter's behaviour, run against both backends (the in-process one on the real clock,
/// like Redis, so one suite serves both).
enum RateLimiterBackend: String, CaseIterable, Sendable {
    case inProcess, redis

    func withLimiter<T: Sendable>(_ body: @Sendable (any RateLimiter) async throws -> T) async throws -> T {
        switch self {
        case .inProcess: return try await body(InProcessRateLimiter())
        case .redis: return try await RedisTestServer.withClient { redis in try await body(RedisRateLimiter(redis: redis)) }
        }
    }
}

@Suite("Rate limiter conformance")
struct RateLimiterConformanceTests {
    /// A key no other test (or run) uses on the shared Redis.
    static func key(_ name: String) -> String { "\(name)-\(UUID().uuidString)" }

    @Test(arguments: RateLimiterBackend.allCases)
    func aBurstOfTheCountIsAllowedThenTheRestWait(backend: RateLimiterBackend) async throws {
        try await backend.withLimiter { (limiter: any RateLimiter) async throws in
            // Windows are long in this suite, so that a slow machine's seconds cannot change an answer.
            let limit = RateLimit(count: 5, window: .seconds(600))  // one more every 120 s
            let check = RateCheck(limit, key: Self.key("burst"))
            for attempt in 1...5 { #expect(try await limiter.hit([check]) == .allowed, "attempt \(attempt)") }
            guard case .limited(let wait) = try await limiter.hit([check]) else {
                Issue.record("the sixth attempt was allowed")
                return
            }
            #expect(wait > .seconds(100) && wait <= .seconds(120), "\(wait)")
            // Another key is not affected.
            #expect(try await limiter.hit([RateCheck(limit, key: Self.key("other"))]) == .allowed)
        }
    }

    @Test(arguments: RateLimiterBackend.allCases)
    func refusedAttemptsUseNothingAndTheRateComesBack(backend: RateLimiterBackend) async throws {
        try await backend.withLimiter { (limiter: any RateLimiter) async throws in
            // Refused attempts use nothing: the wait only shrinks while a client keeps hammering.
            let slow = RateCheck(RateLimit(count: 2, window: .seconds(600)), key: Self.key("hammer"))  // one more every 300 s
            #expect(try await limiter.hit([slow]) == .allowed)
            #expect(try await limiter.hit([slow]) == .allowed)
            guard case .limited(let first) = try await limiter.hit([slow]) else { Issue.record("the third attempt was allowed"); return }
            for _ in 0..<20 { _ = try await limiter.hit([slow]) }
            guard case .limited(let last) = try await limiter.hit([slow]) else { Issue.record("an attempt was allowed while hammering"); return }
            #expect(last <= first && last > .seconds(250), "first wait \(first), after 20 refused attempts \(last)")

            // And the rate comes back with time.
            let fast = RateCheck(RateLimit(count: 1, window: .seconds(1)), key: Self.key("refill"))
            #expect(try await limiter.hit([fast]) == .allowed)
            try await Task.sleep(for: .milliseconds(1_100))
            #expect(try await limiter.hit([fast]) == .allowed)
        }
    }

    @Test(arguments: RateLimiterBackend.allCases)
    func severalChecksAreAllOrNothing(backend: RateLimiterBackend) async throws {
        try await backend.withLimiter { (limiter: any RateLimiter) async throws in
            let perAddress = RateCheck(RateLimit(count: 1, window: .seconds(600)), key: Self.key("address"))
            let perBuyer = RateCheck(RateLimit(count: 3, window: .seconds(600)), key: Self.key("buyer"))
            #expect(try await limiter.hit([perAddress, perBuyer]) == .allowed)
            #expect(try await limiter.hit([perAddress, perBuyer]) != .allowed, "the address is over its limit")
            // The refused attempt did not count for the buyer: two more are still allowed.
            #expect(try await limiter.hit([perBuyer]) == .allowed)
            #expect(try await limiter.hit([perBuyer]) == .allowed)
            #expect(try await limiter.hit([perBuyer]) != .allowed)
        }
    }

    @Test(arguments: RateLimiterBackend.allCases)
    func concurrentAttemptsNeverExceedTheBurst(backend: RateLimiterBackend) async throws {
        try await backend.withLimiter { (limiter: any RateLimiter) async throws in
            let check = RateCheck(RateLimit(count: 10, window: .seconds(600)), key: Self.key("storm"))
            let allowed = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<200 { group.addTask { try await limiter.hit([check]) == .allowed } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(allowed == 10)
        }
    }
}

@Suite("Rate limits")
struct RateLimitTests {
    @Test(arguments: RateLimiterBackend.allCases)
    func aPeekCountsNothingAndSeesWhatAHitWouldDecide(backend: RateLimiterBackend) async throws {
        try await backend.withLimiter { (limiter: any RateLimiter) async throws in
            let limit = RateLimit(count: 2, window: .seconds(600))
            let check = RateCheck(limit, key: RateLimiterConformanceTests.key("peek"))
            for _ in 0..<10 { #expect(try await limiter.peek([check]) == .allowed, "peeking uses nothing") }
            #expect(try await limiter.hit([check]) == .allowed)
            #expect(try await limiter.hit([check]) == .allowed)
            guard case .limited(let wait) = try await limiter.peek([check]) else {
                Issue.record("the peek does not see the limit the hits reached")
                return
            }
            #expect(wait > .seconds(200) && wait <= .seconds(300), "\(wait)")
            #expect(try await limiter.peek([RateCheck(limit, key: RateLimiterConformanceTests.key("untouched"))]) == .allowed)
        }
    }

    @Test func limitsAndPoliciesParse() throws {
        #expect(RateLimit(parsing: "20/1m") == RateLimit(count: 20, window: .seconds(60)))
        #expect(RateLimit(parsing: "5/10s")?.intervalMilliseconds == 2_000)
        for bad in ["", "20", "0/1m", "-1/1m", "20/0s", "20/forever", "x/1m", "20/2d"] { #expect(RateLimit(parsing: bad) == nil, "\(bad)") }
        #expect(RateLimitPolicy.parse("off") == .off)
        #expect(RateLimitPolicy.parse("default") == RateLimitPolicy())
        let custom = try #require(RateLimitPolicy.parse("login_ip=3/1m, purchase_ip=off"))
        #expect(custom.limits[.loginPerAddress] == RateLimit(count: 3, window: .seconds(60)))
        #expect(custom.limits[.purchasePerAddress] == nil)
        #expect(custom.limits[.loginPerUsername] == RateLimitPolicy.defaults[.loginPerUsername])
        #expect(RateLimitPolicy.parse("logins=3/1m") == nil)
        #expect(RateLimitPolicy.parse("login_ip=lots") == nil)
    }

    @Test func theInProcessLimiterForgetsKeysBeyondItsBound() async throws {
        let now = Mutex<Int64>(1_000_000)
        let limiter = InProcessRateLimiter(maximumKeys: 100) { now.withLock { $0 } }
        let limit = RateLimit(count: 1, window: .seconds(60))
        for index in 0..<1_000 { _ = try await limiter.hit([RateCheck(limit, key: "k\(index)")]) }
        // Bounded memory; the newest keys are still limited.
        #expect(try await limiter.hit([RateCheck(limit, key: "k999")]) != .allowed)
        now.withLock { $0 += 60_000 }
        #expect(try await limiter.hit([RateCheck(limit, key: "k999")]) == .allowed)
    }
}
