import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOPosix
@testable import SoukServer
import SoukCore
import SoukRedis
import SoukTesting
import Testing

/// Purchases decided by the Redis gate on the event loop that read them (`AdmissionLane`): the
/// router's very answers (admitted, a retry, over the buyer's limit, sold out, not started, over a
/// rate limit), answers kept in order behind a late one, and exactly the quantity sold when the
/// lane and the router admit side by side.
@Suite("Admission lane", .serialized)
struct AdmissionLaneTests {
    static func lane(_ app: TestApp) throws -> AdmissionLane {
        try #require(app.services.fastLanes.lazy.compactMap { $0 as? AdmissionLane }.first, "the Redis gate opens the lane")
    }

    /// An app whose gate and rate limiter are Redis's (a private redis-server), with one sale of
    /// `quantity` units, one per buyer: `body` gets the app, the Redis client and server, the sale id.
    static func withSale(
        quantity: Int, startsIn: TimeInterval = -5, redisArguments: [String] = [], rateLimits: RateLimitPolicy = .off, testing: TestingSetup = .router,
        _ body: @escaping @Sendable (TestApp, RedisClient, PrivateRedisServer, Int64) async throws -> Void
    ) async throws {
        let server = try await PrivateRedisServer(arguments: redisArguments)
        let redis = RedisClient(configuration: try RedisConfiguration(url: server.url), logger: TestLog.logger)
        defer { redis.shutdown() }
        try await TestApp.run(rateLimits: rateLimits, gate: { RedisFlashSaleGate(redis: redis, store: $0) }, rateLimiter: RedisRateLimiter(redis: redis), testing: testing) { app in
            let token = try await app.vendorToken("amina")
            let phone = try await app.product(token: token, stock: 100)
            let created = try await FlashSaleAPITests.createSale(app, token: token, product: phone, quantity: quantity, limit: 1, startsIn: startsIn)
            try await body(app, redis, server, try #require((created.json["id"] as? NSNumber)?.int64Value))
        }
    }

    /// A purchase attempt as raw HTTP/1.1, for pipelining on a live server.
    static func rawPurchase(_ sale: Int64, _ buyer: (id: String, token: String), _ extraHeaders: String = "") -> String {
        let body = #"{"buyer_id":"\#(buyer.id)"}"#
        return "POST /api/v1/flash-sales/\(sale)/purchases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(buyer.token)\r\nContent-Type: application/json\r\n\(extraHeaders)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// The `order_id` of an admission's body.
    static func orderID(in body: String) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["order_id"] as? String
    }

    /// The lane's connection on `eventLoop` is opened in the background by its first use.
    static func warm(_ redis: RedisClient, _ eventLoop: any EventLoop) async throws {
        for _ in 0..<200 where redis.connection(on: eventLoop) == nil { try await Task.sleep(for: .milliseconds(10)) }
        #expect(redis.connection(on: eventLoop) != nil)
    }

    @Test func theLaneGivesTheRoutersAnswers() async throws {
        let limits = RateLimitPolicy(limits: [.purchasePerBuyer: RateLimit(count: 4, window: .seconds(60))])
        try await Self.withSale(quantity: 3, rateLimits: limits) { app, redis, _, sale in
            let lane = try Self.lane(app)
            let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
            try await Self.warm(redis, eventLoop)
            // A sale this process has not read yet is the router's.
            let buyers = try await app.shoppers(["first", "nadia", "omar", "rachid", "zoe"])
            let (first, firstBody) = FastLaneTests.purchase(sale, "{}", token: buyers["first"]!.token)
            #expect(try await lane.decide(first, body: firstBody, on: eventLoop) == nil)
            // The router's first purchase reads the sale and loads the scripts into this new Redis
            // (until then, the lane's attempts go to the router, which loads them).
            #expect(try await app.send(.post, "/api/v1/flash-sales/\(sale)/purchases", body: firstBody, token: buyers["first"]!.token).status == .accepted)

            func both(_ name: String, key: String? = nil) async throws -> (lane: FastAnswer?, router: TestApp.Reply) {
                let buyer = buyers[name]!
                let (request, body) = FastLaneTests.purchase(sale, #"{"buyer_id":"\#(buyer.id)"}"#, key: key, token: buyer.token)
                #expect(lane.takes(request))
                let answer = try await lane.decide(request, body: body, on: eventLoop)
                var headers: HTTPFields = [.contentType: "application/json"]
                if let key { headers[.idempotencyKey] = key }
                let routed = try await app.send(.post, "/api/v1/flash-sales/\(sale)/purchases", body: body, token: buyer.token, headers: headers)
                return (answer, routed)
            }
            func expectSame(_ pair: (lane: FastAnswer?, router: TestApp.Reply), _ status: HTTPResponse.Status, _ label: String) throws {
                let answer = try #require(pair.lane, "\(label): the lane answers")
                #expect(answer.status == status && pair.router.status == status, "\(label): \(answer.status) \(pair.router.status) \(pair.router.body)")
                // A wait in the message ("try again in 14 seconds") may differ by the second between the two.
                func withoutWait(_ text: String) -> String { text.replacing(/in \d+ seconds?/, with: "in N seconds") }
                #expect(answer.body.map { withoutWait(String(buffer: $0)) } == withoutWait(pair.router.body), "\(label)")
                #expect(answer.headers[.contentType] == pair.router.headers[.contentType], "\(label)")
                // The waits were computed a moment apart; both ask the client to wait, or neither.
                #expect((answer.headers[.retryAfter] == nil) == (pair.router.headers[.retryAfter] == nil), "\(label)")
                #expect(answer.route == "/api/v1/flash-sales/{id}/purchases")
            }

            let admitted = try await both("nadia")
            try expectSame(admitted, .accepted, "admitted, then the same purchase again")
            #expect(Self.orderID(in: admitted.router.body)?.count == 16, "\(admitted.router.body)")
            try expectSame(try await both("nadia", key: "second-phone"), .conflict, "over the buyer's limit")
            // nadia has tried 4 times (twice through each path): her 5th and later attempts are limited.
            let limited = try await both("nadia")
            try expectSame(limited, .tooManyRequests, "over the rate limit")
            #expect(limited.router.errorCode == "rate_limited")
            try expectSame(try await both("omar"), .accepted, "the last unit")
            try expectSame(try await both("rachid"), .conflict, "sold out")
            #expect(app.services.flashSales.gate.hasSettledAdmissions(saleID: sale), "after sold out, attempts are the sold-out lane's")

            // What the lane cannot read stays the router's.
            for bad in [#"{"buyer_id":""}"#, "not json", #"{"buyer_id":42}"#, #"{"buyer_id":"\#(buyers["nadia"]!.id)"}"#] {
                let (request, body) = FastLaneTests.purchase(sale, bad, token: buyers["zoe"]!.token)
                #expect(try await lane.decide(request, body: body, on: eventLoop) == nil, "\(bad)")
            }
            let (anonymous, anonymousBody) = FastLaneTests.purchase(sale, "{}")
            #expect(try await lane.decide(anonymous, body: anonymousBody, on: eventLoop) == nil, "no customer: the router's 401")
            let (keyed, keyedBody) = FastLaneTests.purchase(sale, "{}", key: "no spaces allowed", token: buyers["zoe"]!.token)
            #expect(try await lane.decide(keyed, body: keyedBody, on: eventLoop) == nil)
        }
    }

    /// A sale for verified customers: the lane leaves an unverified buyer to the router (403, nothing
    /// admitted) and admits a verified one itself; once sold out, the sold-out lane does the same.
    @Test func aSaleForVerifiedCustomersIsDecidedAsTheRouterDecidesIt() async throws {
        try await Self.withSale(quantity: 1) { app, redis, _, first in
            // A purchase through the router loads the admission script into this new Redis.
            let loader = try await app.customer("loader@example.com")
            #expect(try await app.json(.post, "/api/v1/flash-sales/\(first)/purchases", "{}", token: loader.token).status == .accepted)
            let vendor = try await app.vendorToken("bilal")
            let phone = try await app.product(token: vendor, stock: 10)
            let created = try await app.json(.post, "/api/v1/flash-sales",
                #"{"product_id":\#(phone),"quantity":1,"starts_at":"\#(FlashSaleAPITests.iso(-5))","ends_at":"\#(FlashSaleAPITests.iso(3_600))","verified_only":true}"#, token: vendor)
            let sale = try #require((created.json["id"] as? NSNumber)?.int64Value, "\(created.body)")
            _ = try await Self.flashSalesKnow(app, sale)
            let lane = try Self.lane(app)
            let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
            try await Self.warm(redis, eventLoop)
            let unverified = try await app.customer("unverified@example.com")
            let (request, body) = FastLaneTests.purchase(sale, "{}", token: unverified.token)
            #expect(try await lane.decide(request, body: body, on: eventLoop) == nil, "the router's to refuse")
            let refused = try await app.send(.post, "/api/v1/flash-sales/\(sale)/purchases", body: body, token: unverified.token)
            #expect(refused.status == .forbidden && refused.errorCode == "verification_required")

            let code = try await EmailVerificationTests.code(app, for: "unverified@example.com")
            let verified = try #require(try await app.json(.post, "/api/v1/customers/me/verification/confirm", #"{"code":"\#(code)"}"#, token: unverified.token).json["token"] as? String)
            let (admit, admitBody) = FastLaneTests.purchase(sale, "{}", token: verified)
            let answer = try #require(try await lane.decide(admit, body: admitBody, on: eventLoop))
            #expect(answer.status == .accepted)
            #expect(try await redis.hlen(RedisKeys.sale(sale).orders) == 1)
        }
    }

    /// Reads a sale through the use case, as a first purchase would, so its terms are remembered.
    static func flashSalesKnow(_ app: TestApp, _ sale: Int64) async throws -> FlashSale? {
        try await app.services.flashSales.sale(id: sale)
    }

    @Test func aSaleNotStartedYetIsRefusedAsTheRouterRefusesIt() async throws {
        try await Self.withSale(quantity: 3, startsIn: 600) { app, redis, _, sale in
            _ = try await Self.flashSalesKnow(app, sale)
            let lane = try Self.lane(app)
            let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
            try await Self.warm(redis, eventLoop)
            let early = try await app.customer("early@example.com")
            let (request, body) = FastLaneTests.purchase(sale, "{}", token: early.token)
            let answer = try #require(try await lane.decide(request, body: body, on: eventLoop))
            let routed = try await app.send(.post, "/api/v1/flash-sales/\(sale)/purchases", body: body, token: early.token)
            #expect(answer.status == .conflict && routed.errorCode == "not_started")
            #expect(answer.body.map { String(buffer: $0) } == routed.body)
        }
    }

    /// On a live server: pipelined attempts, some decided late by the lane and some by the router,
    /// come back in order; then 400 concurrent buyers for 60 units buy exactly 60.
    @Test func lateAnswersKeepTheirOrderAndTheQuantityIsExact() async throws {
        try await Self.withSale(quantity: 60, testing: .live) { app, redis, _, sale in
            let port = try #require(app.client.port)
            var names = ["warm-up"] + (0..<5).flatMap { ["p\($0)a", "p\($0)b", "p\($0)c"] }
            names += (0..<8).flatMap { connection in (0..<50).map { "c\(connection)x\($0)" } }
            let buyers = try await app.shoppers(names)
            func post(_ buyer: String, _ extra: String = "") -> String { Self.rawPurchase(sale, buyers[buyer]!, extra) }
            _ = try await RawHTTP.exchange(port: port, post("warm-up"), expecting: 1)
            for round in 0..<5 {
                let replies = try await RawHTTP.exchange(port: port, [
                    post("p\(round)a"), "GET /api/v1/flash-sales/\(sale)/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n",
                    post("p\(round)b"), post("p\(round)a"), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", post("p\(round)c", "Connection: close\r\n"),
                ].joined(), expecting: 6)
                #expect(replies.map(\.status) == [202, 404, 202, 202, 200, 202], "\(replies.map(\.body))")
                let orders = [0, 2, 5].compactMap { Self.orderID(in: replies[$0].body) }
                #expect(Set(orders).count == 3 && orders.allSatisfy { $0.count == 16 }, "three new orders: \(orders)")
                #expect(replies[3].body == replies[0].body, "a repeated attempt is the same order")
            }
            // 1 + 15 units sold above; 400 buyers on 8 connections each take one attempt.
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for connection in 0..<8 {
                    group.addTask {
                        try await RawHTTP.exchange(port: port, (0..<50).map { post("c\(connection)x\($0)") }.joined(), expecting: 50).map(\.status)
                    }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(statuses.filter { $0 == 202 }.count == 60 - 16, "exactly the units left")
            #expect(statuses.filter { $0 == 409 }.count == 400 - 44)
            #expect(try await redis.hlen(RedisKeys.sale(sale).orders) == 60)
            #expect(try await redis.getString(RedisKeys.sale(sale).stock) == "0")
        }
    }

    /// Redis killed and restarted under the lane: its event loop's connection is replaced by itself,
    /// attempts meanwhile fail cleanly (they go to the router, which answers 503 and asks the client
    /// to try again), and the same buyer retrying afterwards gets one order, not two.
    @Test func theLaneReconnectsAfterRedisRestarts() async throws {
        try await Self.withSale(quantity: 50, redisArguments: ["--appendonly", "yes", "--appendfsync", "always"], testing: .live) { app, redis, server, sale in
            let port = try #require(app.client.port)
            let buyers = try await app.shoppers((0..<10).map { "before\($0)" } + ["during", "after"])
            func attempt(_ buyer: String) async throws -> RawHTTP.Reply {
                try await RawHTTP.exchange(port: port, Self.rawPurchase(sale, buyers[buyer]!), expecting: 1)[0]
            }
            for index in 0..<10 { #expect(try await attempt("before\(index)").status == 202) }

            server.kill9()
            let during = try await attempt("during")
            #expect(during.status == 503 && during.body.contains(#""code":"unavailable""#) && during.headers["retry-after"] == "1",
                    "Redis away: the client is asked to try again: \(during.status) \(during.body)")
            try await server.start()
            var statuses: [Int] = []
            var admitted: RawHTTP.Reply?
            for _ in 0..<200 {
                let reply = try await attempt("after")
                statuses.append(reply.status)
                if reply.status == 202 { admitted = reply; break }
                #expect(reply.status == 503 && reply.body.contains(#""code":"unavailable""#) && reply.headers["retry-after"] == "1",
                        "Redis away: the client is asked to try again: \(reply.status) \(reply.body)")
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(statuses.last == 202, "admitted again once Redis is back: \(statuses)")
            let again = try await attempt("after")
            #expect(again.status == 202 && Self.orderID(in: again.body) != nil && Self.orderID(in: again.body) == admitted.flatMap { Self.orderID(in: $0.body) }, "the retry is the same order")
            #expect(try await redis.hlen(RedisKeys.sale(sale).orders) == 11, "ten before the crash (fsync always), one after")
            #expect(try await redis.getString(RedisKeys.sale(sale).stock) == "39")
        }
    }

    /// A backend that is away for a moment is a 503 with `Retry-After`, not a 500; a Redis reply of
    /// the wrong shape is still a 500 (a bug, logged as one).
    @Test func aRedisOutageAsksTheClientToTryAgain() {
        for code in [RedisClientError.Code.connectionClosed, .connectionUnavailable, .timeout] {
            let problem = ErrorMiddleware.problem(for: RedisClientError(code))
            #expect(problem.status == .serviceUnavailable && problem.code == "unavailable" && problem.retryAfterSeconds == 1, "\(code)")
        }
        #expect(ErrorMiddleware.problem(for: RedisClientError(.unexpectedReply)).status == .internalServerError)
    }
}
