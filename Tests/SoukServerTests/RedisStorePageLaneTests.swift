import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
@testable import SoukServer
import SoukCore
import SoukRedis
import SoukTesting
import Testing

/// The store page read from the Redis page cache on the event loop (`StorePageLane` over
/// `RedisPageCache`): the router's bytes, never a page older than the vendor's last change, and
/// the visitors of one page in one turn of the loop served by one read.
@Suite("Store page lane over Redis", .serialized)
struct RedisStorePageLaneTests {
    static func run(_ body: @escaping @Sendable (TestApp, RedisClient) async throws -> Void) async throws {
        let server = try await PrivateRedisServer()
        let redis = RedisClient(configuration: try RedisConfiguration(url: server.url), logger: TestLog.logger)
        defer { redis.shutdown() }
        try await TestApp.run(pageCache: RedisPageCache(redis: redis, timeToLive: .seconds(60))) { app in
            try await body(app, redis)
        }
    }

    @Test func theLaneReadsTheRoutersPageAndNeverAnOlderOne() async throws {
        try await Self.run { app, redis in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, name: "Mint tea")
            let lane = try FastLaneTests.lane(app)
            let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
            try await AdmissionLaneTests.warm(redis, eventLoop)
            let request = FastLaneTests.request("/s/amina")
            #expect(try await lane.decide(request, body: ByteBuffer(), on: eventLoop) == nil, "nothing cached yet: the router renders")

            let routed = try await app.send(.get, "/s/amina", headers: [.cookie: "souk_csrf=\(FastLaneTests.csrf)"])
            #expect(routed.status == .ok && routed.body.contains("Mint tea"))
            let answer = try #require(try await lane.decide(request, body: ByteBuffer(), on: eventLoop))
            #expect(answer.status == .ok && answer.route == "/s/{username}")
            #expect(answer.body.map { Array(buffer: $0) } == routed.bytes, "the same page, with this visitor's form token")
            for name in [HTTPField.Name.contentType, .eTag, .cacheControl, .contentLength] {
                #expect(answer.headers[name] == routed.headers[name], "\(name)")
            }
            let etag = try #require(routed.headers[.eTag])
            let repeated = try #require(try await lane.decide(FastLaneTests.request("/s/amina", [.ifNoneMatch: etag]), body: ByteBuffer(), on: eventLoop))
            #expect(repeated.status == .notModified && repeated.body == nil)
            #expect(try await lane.decide(FastLaneTests.request("/s/amina", cookie: nil), body: ByteBuffer(), on: eventLoop) == nil, "a first visit is the router's")

            // An edit bumps the version in Redis: the old page is never read again.
            #expect(try await app.json(.patch, "/api/v1/products/\(tea)", #"{"name":"Saffron tea"}"#, token: token).status == .ok)
            #expect(try await lane.decide(request, body: ByteBuffer(), on: eventLoop) == nil)
            _ = try await app.send(.get, "/s/amina", headers: [.cookie: "souk_csrf=\(FastLaneTests.csrf)"])
            let fresh = try #require(try await lane.decide(request, body: ByteBuffer(), on: eventLoop))
            let page = String(buffer: try #require(fresh.body))
            #expect(page.contains("Saffron tea") && !page.contains("Mint tea"))

            // Forty visitors in one turn of the loop: one answer for all, from one read.
            let before = try await Self.reads(redis)
            let futures = try await eventLoop.submit { () -> [EventLoopFuture<FastAnswer?>] in
                (0..<40).compactMap { _ -> EventLoopFuture<FastAnswer?>? in
                    guard case .later(let future)? = lane.answer(request, body: ByteBuffer(), on: LaneConnection(eventLoop: eventLoop, peerAddress: nil)) else { return nil }
                    return future
                }
            }.get()
            #expect(futures.count == 40)
            for answer in try await EventLoopFuture.whenAllSucceed(futures, on: eventLoop).get() {
                #expect(answer?.body.map { Array(buffer: $0) } == fresh.body.map { Array(buffer: $0) })
            }
            #expect(try await Self.reads(redis) - before == 2, "one pipelined read of the version and the page")
        }
    }

    /// GET commands Redis has served so far.
    static func reads(_ redis: RedisClient) async throws -> Int {
        let info = try await redis.info("commandstats")
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_get:") }),
              let calls = line.split(separator: ",").first?.split(separator: "=").last.flatMap({ Int($0) })
        else { return 0 }
        return calls
    }
}
