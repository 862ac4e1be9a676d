import Foundation
import SoukCore
import SoukRedis
import SoukSQL
import SoukTesting
import Testing

/// The page-cache port's behaviour, run against every backend.
enum PageCacheBackend: String, CaseIterable, Sendable {
    case inProcess, redis, twoLayer

    func withCache<T: Sendable>(timeToLive: Duration = .seconds(60), _ body: @Sendable (any PageCache) async throws -> T) async throws -> T {
        switch self {
        case .inProcess:
            return try await body(InProcessPageCache(timeToLive: timeToLive))
        case .redis:
            return try await RedisTestServer.withClient { redis in try await body(RedisPageCache(redis: redis, timeToLive: timeToLive)) }
        case .twoLayer:
            return try await RedisTestServer.withClient { redis in
                try await body(TwoLayerPageCache(local: InProcessPageCache(timeToLive: timeToLive), remote: RedisPageCache(redis: redis, timeToLive: timeToLive)))
            }
        }
    }
}

@Suite("Page cache conformance")
struct PageCacheConformanceTests {
    /// Vendor ids no other test (or run) uses on the shared Redis.
    static func vendorID() -> Int64 { Int64.random(in: 1_000_000_000...Int64.max / 2) }

    static func page(_ text: String, age: TimeInterval = 0) -> CachedPage {
        CachedPage(body: Array(text.utf8), etag: "\"\(text.hashValue)\"", createdAt: Date().addingTimeInterval(-age))
    }

    @Test(arguments: PageCacheBackend.allCases)
    func storedPagesAreServedAtTheirVersionOnly(backend: PageCacheBackend) async throws {
        try await backend.withCache { cache in
            let vendor = Self.vendorID()
            let html = PageKey(vendorID: vendor, variant: "html")
            let json = PageKey(vendorID: vendor, variant: "json")
            let v1 = try await cache.version(of: vendor)
            #expect(try await cache.version(of: vendor) == v1, "reading does not change the version")
            #expect(try await cache.page(html, version: v1) == nil)
            try await cache.store(Self.page("<h1>one</h1>"), for: html, version: v1)
            #expect(try await cache.page(html, version: v1)?.body == Array("<h1>one</h1>".utf8))
            #expect(try await cache.page(json, version: v1) == nil, "variants are separate")
            #expect(try await cache.page(PageKey(vendorID: vendor + 1, variant: "html"), version: v1) == nil, "vendors are separate")

            try await cache.invalidate(vendorID: vendor)
            let v2 = try await cache.version(of: vendor)
            #expect(v2 != v1)
            #expect(try await cache.page(html, version: v2) == nil, "after a change the old page is gone")
            try await cache.store(Self.page("<h1>two</h1>"), for: html, version: v2)
            #expect(try await cache.page(html, version: v2)?.body == Array("<h1>two</h1>".utf8))
        }
    }

    @Test(arguments: PageCacheBackend.allCases)
    func pagesExpireByAge(backend: PageCacheBackend) async throws {
        try await backend.withCache(timeToLive: .seconds(2)) { cache in
            let key = PageKey(vendorID: Self.vendorID(), variant: "html")
            let version = try await cache.version(of: key.vendorID)
            try await cache.store(Self.page("old", age: 3), for: key, version: version)
            #expect(try await cache.page(key, version: version) == nil, "a page older than the limit is never served")
            try await cache.store(Self.page("fresh"), for: key, version: version)
            #expect(try await cache.page(key, version: version) != nil)
            try await Task.sleep(for: .milliseconds(2_300))
            #expect(try await cache.page(key, version: version) == nil)
        }
    }

    @Test func redisVersionsNeverGoBackEvenIfTheKeyIsLost() async throws {
        try await RedisTestServer.withClient { redis in
            let cache = RedisPageCache(redis: redis)
            let vendor = Self.vendorID()
            let before = try await cache.version(of: vendor)
            try await redis.del([RedisKeys.storeVersion(vendor)])  // as after a Redis restart without persistence
            let after = try await cache.version(of: vendor)
            #expect(after != before)
            try await cache.invalidate(vendorID: vendor)
            #expect(try await cache.version(of: vendor) == after + 1)
        }
    }

    /// Two instances, each with its own in-process layer over one Redis: once B's invalidation has
    /// returned, A never serves the page it holds in memory.
    @Test func anInstanceNeverServesAPageAnotherInstanceInvalidated() async throws {
        try await RedisTestServer.withClient { redis in
            let a = TwoLayerPageCache(local: InProcessPageCache(), remote: RedisPageCache(redis: redis))
            let b = TwoLayerPageCache(local: InProcessPageCache(), remote: RedisPageCache(redis: redis))
            let key = PageKey(vendorID: Self.vendorID(), variant: "html")
            for round in 0..<20 {
                let version = try await a.version(of: key.vendorID)
                if try await a.page(key, version: version) == nil {
                    try await a.store(Self.page("round \(round)"), for: key, version: version)
                }
                #expect(try await a.local.page(key, version: version) != nil)
                try await b.invalidate(vendorID: key.vendorID)
                let next = try await a.version(of: key.vendorID)
                #expect(try await a.page(key, version: next) == nil, "round \(round): A must miss after B's change")
            }
        }
    }

    @Test func theInProcessCacheIsBounded() async throws {
        let cache = InProcessPageCache(maximumEntries: 50, maximumBytes: 1_000_000)
        for vendor in 1...200 {
            try await cache.store(Self.page(String(repeating: "x", count: 100)), for: PageKey(vendorID: Int64(vendor), variant: "html"), version: 1)
        }
        #expect(cache.count <= 50)
        let small = InProcessPageCache(maximumEntries: 1_000, maximumBytes: 10_000)
        for vendor in 1...100 {
            try await small.store(Self.page(String(repeating: "y", count: 1_000)), for: PageKey(vendorID: Int64(vendor), variant: "html"), version: 1)
        }
        #expect(small.count <= 10)
        #expect(try await small.page(PageKey(vendorID: 100, variant: "html"), version: 1) != nil, "the newest entry stays")
    }

    @Test func redisSessionsExpireAndEnd() async throws {
        try await TestBackend.sqlite.withDatabase { database in
            try await RedisTestServer.withClient { redis in
                let storage = SoukSQL.SQLStorage(database: database)
                let vendor = try #require(try await storage.createVendor(username: "amina", storeName: "A", passwordHash: "h"))
                let sessions = RedisSessionStore(redis: redis, vendors: storage)
                let hash = "test-\(UUID().uuidString)"
                // Long enough that a suite keeping both cores busy still reads it before it ends.
                try await sessions.createSession(tokenHash: hash, vendorID: vendor.id, expiresAt: Date().addingTimeInterval(5))
                #expect(try await sessions.vendor(sessionTokenHash: hash, now: Date()) == vendor)
                try await Task.sleep(for: .milliseconds(5_300))
                #expect(try await sessions.vendor(sessionTokenHash: hash, now: Date()) == nil)
                try await sessions.createSession(tokenHash: hash, vendorID: vendor.id, expiresAt: Date().addingTimeInterval(60))
                try await sessions.deleteSession(tokenHash: hash)
                #expect(try await sessions.vendor(sessionTokenHash: hash, now: Date()) == nil)
            }
        }
    }
}

