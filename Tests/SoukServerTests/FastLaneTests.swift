import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
@testable import SoukServer
import SoukCore
import SoukTesting
import Testing

/// The store page answered on the event loop (`StorePageLane`): the router's very answer, never a
/// stale one, never out of order, and only for the anonymous visitor it is meant for.
@Suite("Fast lane")
struct FastLaneTests {
    static let csrf = String(repeating: "t", count: 43)

    static func request(_ path: String, cookie: String? = "souk_csrf=\(csrf)", _ extra: HTTPFields = [:]) -> HTTPRequest {
        var headers = extra
        if let cookie { headers[.cookie] = cookie }
        return HTTPRequest(method: .get, scheme: nil, authority: "127.0.0.1", path: path, headerFields: headers)
    }

    static func lane(_ app: TestApp) throws -> StorePageLane {
        try #require(app.services.fastLanes.lazy.compactMap { $0 as? StorePageLane }.first, "the in-process page cache opens the lane")
    }

    /// A lane's answer goes to the socket as bytes the handler encodes: the status line, every
    /// header once, and the length of a body (never chunked, never twice); none for a 304.
    @Test func answersAreEncodedAsHTTP1() {
        let headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .contentLength: "999", .eTag: "\"v1\""]
        let ok = FastLaneHandler.encodedHead(.ok, headers, bodyLength: 12, allocator: ByteBufferAllocator())
        #expect(String(buffer: ok) == "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nETag: \"v1\"\r\nContent-Length: 12\r\n\r\n")
        let notModified = FastLaneHandler.encodedHead(.notModified, [.eTag: "\"v1\""], bodyLength: 0, allocator: ByteBufferAllocator())
        #expect(String(buffer: notModified) == "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n")
        let conflict = FastLaneHandler.encodedHead(.conflict, [:], bodyLength: 0, allocator: ByteBufferAllocator())
        #expect(String(buffer: conflict) == "HTTP/1.1 409 Conflict\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func theLaneAnswersWithTheRoutersBytesOnceTheRouterHasCachedThePage() async throws {
        try await TestApp.run(pageCache: InProcessPageCache(timeToLive: .seconds(60))) { app in
            let token = try await app.vendorToken("amina")
            _ = try await app.product(token: token, name: "Mint tea")
            let lane = try Self.lane(app)
            #expect(lane.answer(Self.request("/s/amina")) == nil, "nothing cached yet: the router renders")

            let routed = try await app.send(.get, "/s/amina", headers: [.cookie: "souk_csrf=\(Self.csrf)"])
            #expect(routed.status == .ok && routed.body.contains("Mint tea"))
            let answer = try #require(lane.answer(Self.request("/s/amina")))
            #expect(answer.status == .ok && answer.route == "/s/{username}")
            #expect(answer.body.map { Array(buffer: $0) } == routed.bytes, "the same page, with this visitor's form token")
            for name in [HTTPField.Name.contentType, .eTag, .cacheControl, .contentLength] {
                #expect(answer.headers[name] == routed.headers[name], "\(name)")
            }
            #expect(lane.answer(Self.request("/s/AMINA?ref=mail")) != nil, "usernames are case-insensitive; the query is ignored")

            let etag = try #require(routed.headers[.eTag])
            let repeated = try #require(lane.answer(Self.request("/s/amina", [.ifNoneMatch: etag])))
            #expect(repeated.status == .notModified && repeated.body == nil)

            // Everything else is the router's.
            #expect(lane.answer(Self.request("/s/amina", cookie: nil)) == nil, "a first visit gets its form-token cookie from the router")
            #expect(lane.answer(Self.request("/s/amina", cookie: "souk_csrf=short")) == nil)
            #expect(lane.answer(Self.request("/s/amina", cookie: "souk_csrf=\(Self.csrf); souk_session=abc")) == nil, "a logged-in vendor sees its own page")
            #expect(lane.answer(Self.request("/s/amina", [.authorization: "Bearer \(token)"])) == nil)
            for path in ["/s/amina/orders", "/s/", "/s/am%69na", "/s/nobody", "/dashboard", "/api/v1/stores/amina"] {
                #expect(lane.answer(Self.request(path)) == nil, "\(path)")
            }
        }
    }

    @Test func aChangeIsNeverServedStaleFromTheLane() async throws {
        try await TestApp.run(pageCache: InProcessPageCache(timeToLive: .seconds(60))) { app in
            let token = try await app.vendorToken("amina")
            let tea = try await app.product(token: token, name: "Mint tea")
            _ = try await app.send(.get, "/s/amina", headers: [.cookie: "souk_csrf=\(Self.csrf)"])
            let lane = try Self.lane(app)
            #expect(lane.answer(Self.request("/s/amina")) != nil)

            let edit = try await app.json(.patch, "/api/v1/products/\(tea)", #"{"name":"Saffron tea"}"#, token: token)
            #expect(edit.status == .ok, "\(edit.body)")
            #expect(lane.answer(Self.request("/s/amina")) == nil, "the edit's commit bumped the version: the old page is gone")
            let fresh = try await app.send(.get, "/s/amina", headers: [.cookie: "souk_csrf=\(Self.csrf)"])
            #expect(fresh.body.contains("Saffron tea") && !fresh.body.contains("Mint tea"))
            let answer = try #require(lane.answer(Self.request("/s/amina")))
            #expect(String(buffer: try #require(answer.body)).contains("Saffron tea"))
        }
    }

    /// Over a real connection: pipelined requests are answered in order even when the first is
    /// the router's and the second the lane's, and the lane's answers carry the server's headers
    /// and are counted in the route's metrics.
    @Test func pipelinedRequestsKeepTheirOrderOnALiveServer() async throws {
        try await TestApp.run(pageCache: InProcessPageCache(timeToLive: .seconds(60)), testing: .live) { app in
            let token = try await app.vendorToken("amina")
            _ = try await app.product(token: token, name: "Mint tea")
            let port = try #require(app.client.port)
            let cookie = "Cookie: souk_csrf=\(Self.csrf)\r\n"
            let store = "GET /s/amina HTTP/1.1\r\nHost: x\r\n\(cookie)X-Request-Id: lane-request-1\r\n\r\n"
            _ = try await RawHTTP.exchange(port: port, store, expecting: 1)  // the router caches the page

            let before = try await app.send(.get, "/metrics").body
            let slow = "GET /api/v1/stores/amina/products-that-do-not-exist HTTP/1.1\r\nHost: x\r\n\r\n"
            let replies = try await RawHTTP.exchange(port: port, slow + store + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + store, expecting: 4)
            #expect(replies.map(\.status) == [404, 200, 200, 200])
            #expect(replies[1].body.contains("Mint tea") && replies[3].body.contains("Mint tea"))
            #expect(replies[2].body == #"{"status":"ok"}"#)
            for reply in [replies[1], replies[3]] {
                #expect(reply.headers["x-request-id"] == "lane-request-1")
                #expect(reply.headers["server"] == "Souk" && reply.headers["date"]?.hasSuffix(" GMT") == true)
                #expect(reply.headers["x-frame-options"] == "DENY" && reply.headers["content-security-policy"] != nil)
            }
            let after = try await app.send(.get, "/metrics").body
            let counted = #"souk_http_requests_total{route="/s/{username}",method="GET",code="2xx"}"#
            // At least these two (tests running beside this one count store pages too).
            #expect((ObservabilityTests.metric(after, counted) ?? 0) - (ObservabilityTests.metric(before, counted) ?? 0) >= 2)
        }
    }

    /// A gate that has seen its sale sold out after one buyer, as the Redis gate remembers it.
    final class SoldOutGate: FlashSaleGate, @unchecked Sendable {
        /// The customer admitted before the sale sold out (set once the test has signed it up).
        var first = "first"
        func admit(_ sale: FlashSale, buyerID: String, requestKey: String, limits: [RateCheck], now: Date) async throws -> Admission {
            settledAdmission(sale, buyerID: buyerID, requestKey: requestKey, now: now) ?? .soldOut
        }
        func admittedCount(_ sale: FlashSale) async throws -> Int { 1 }
        func release(_ sale: FlashSale, expiredOrderIDs: [String]) async throws {}
        func hasSettledAdmissions(saleID: Int64) -> Bool { true }
        func settledAdmission(_ sale: FlashSale, buyerID: String, requestKey: String, now: Date) -> Admission? {
            if buyerID == first && requestKey == "1" { return .admitted(HeldOrder(orderID: "\(sale.id)-\(first)-1", admittedAt: Date(timeIntervalSince1970: 1_800_000_000)), repeated: true) }
            return now >= sale.endsAt ? .ended : .soldOut
        }
    }

    static func purchase(_ sale: Int64, _ body: String, key: String? = nil, token: String? = nil) -> (HTTPRequest, ByteBuffer) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let key { headers[.idempotencyKey] = key }
        if let token { headers[.authorization] = "Bearer \(token)" }
        return (HTTPRequest(method: .post, scheme: nil, authority: "127.0.0.1", path: "/api/v1/flash-sales/\(sale)/purchases", headerFields: headers), ByteBuffer(string: body))
    }

    @Test func attemptsOnASoldOutSaleGetTheRoutersAnswerFromTheLane() async throws {
        let gate = SoldOutGate()
        try await TestApp.run(flashSaleGate: gate) { app in
            let token = try await app.vendorToken("amina")
            let phone = try await app.product(token: token, stock: 5)
            let created = try await FlashSaleAPITests.createSale(app, token: token, product: phone, quantity: 1)
            let sale = try #require((created.json["id"] as? NSNumber)?.int64Value)
            var buyers: [(id: String, token: String)] = []
            for name in ["first", "second", "third", "fourth"] { buyers.append(try await app.customer("\(name)@example.com")) }
            let (first, second, third, fourth) = (buyers[0], buyers[1], buyers[2], buyers[3])
            gate.first = first.id
            let lane = try #require(app.services.fastLanes.first { $0 is SoldOutLane })
            let (request, body) = Self.purchase(sale, #"{"buyer_id":"\#(second.id)"}"#, token: second.token)
            #expect(lane.takes(request))
            #expect(lane.answer(request, body: body) == nil, "a sale this process has not read yet is the router's")

            let attempts: [(String, String?, (id: String, token: String))] = [
                (#"{"buyer_id":"\#(second.id)"}"#, nil, second), (#" { "buyer_id" : "\#(third.id)" } "#, nil, third), (#"{"buyer_id":"\#(first.id)"}"#, nil, first),
                (#"{"buyer_id":"\#(fourth.id)","note":"extra keys are ignored, as by the router"}"#, nil, fourth), (#"{"buyer_id":"\#(first.id)"}"#, "retry-1", first),
                ("{}", nil, first), ("", nil, second),
            ]
            for (buyer, key, customer) in attempts {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let key { headers[.idempotencyKey] = key }
                let routed = try await app.send(.post, "/api/v1/flash-sales/\(sale)/purchases", body: ByteBuffer(string: buyer), token: customer.token, headers: headers)
                let (request, body) = Self.purchase(sale, buyer, key: key, token: customer.token)
                let answer = try #require(lane.answer(request, body: body), "\(buyer)")
                #expect(answer.status == routed.status, "\(buyer)")
                #expect(answer.body.map { String(buffer: $0) } == routed.body, "\(buyer)")
                #expect(answer.headers[.contentType] == routed.headers[.contentType])
                #expect(answer.route == "/api/v1/flash-sales/{id}/purchases")
            }
            #expect(try await app.send(.post, "/api/v1/flash-sales/\(sale)/purchases", body: ByteBuffer(string: "{}"), token: first.token).status == .accepted)

            // What the router refuses for other reasons stays the router's, so the answer is the same:
            // bodies it refuses, no customer, a vendor, and a body naming another customer.
            for bad in [#"{"buyer_id":""}"#, #"{"buyer_id":"a\u0000b"}"#, "not json", #"{"buyer_id":42}"#, #"{"buyer_id":"\#(first.id)"}"#] {
                let (request, body) = Self.purchase(sale, bad, token: second.token)
                #expect(lane.answer(request, body: body) == nil, "\(bad)")
            }
            for credential in [nil, token, "c1.forged"] as [String?] {
                let (request, body) = Self.purchase(sale, "{}", token: credential)
                #expect(lane.answer(request, body: body) == nil, "\(credential ?? "no token")")
            }
            let (keyed, keyedBody) = Self.purchase(sale, "{}", key: "no spaces allowed", token: second.token)
            #expect(lane.answer(keyed, body: keyedBody) == nil)
            for path in ["/api/v1/flash-sales/x/purchases", "/api/v1/flash-sales//purchases", "/api/v1/flash-sales/1/purchases/2", "/api/v1/flash-sales/99999999999999999999/purchases"] {
                #expect(!lane.takes(HTTPRequest(method: .post, scheme: nil, authority: nil, path: path)), "\(path)")
            }
            #expect(!lane.takes(HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/api/v1/flash-sales/\(sale)/purchases")))
        }
    }

    /// On a live connection: bodies in several parts, a body too large for a lane, `Expect` and
    /// `Connection: close` all get the router's answer, in order, and the connection stays usable.
    @Test func whatALaneDoesNotTakeReachesTheRouterWholeOnALiveServer() async throws {
        let gate = SoldOutGate()
        try await TestApp.run(flashSaleGate: gate, testing: .live) { app in
            let token = try await app.vendorToken("amina")
            let phone = try await app.product(token: token, stock: 5)
            let created = try await FlashSaleAPITests.createSale(app, token: token, product: phone, quantity: 1)
            let sale = try #require((created.json["id"] as? NSNumber)?.int64Value)
            let first = try await app.customer("first@example.com"), second = try await app.customer("second@example.com")
            gate.first = first.id
            let port = try #require(app.client.port)
            func post(_ body: String, _ extra: String = "", as customer: (id: String, token: String)) -> String {
                "POST /api/v1/flash-sales/\(sale)/purchases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(customer.token)\r\nContent-Type: application/json\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            let large = #"{"padding":""# + String(repeating: "a", count: 6_000) + #""}"#
            let replies = try await RawHTTP.exchange(port: port, [
                post(#"{"buyer_id":"\#(second.id)"}"#, as: second),
                post(large, as: second),
                post("{}", as: first),
                post(#"{"buyer_id":""}"#, as: second),
                post("{}", "Expect: 100-continue\r\n", as: second),
                post("{}", "Connection: close\r\n", as: second),
            ].joined(), expecting: 6)
            #expect(replies.map(\.status) == [409, 409, 202, 403, 409, 409], "\(replies.map(\.body))")
            #expect(replies[0].body.contains(#""code":"sold_out""#) && replies[1].body.contains(#""code":"sold_out""#))
            #expect(replies[2].body.contains(#""order_id":"\#(sale)-\#(first.id)-1""#), "the gate's own order, as it said")
        }
    }

    @Test func theBuyerIsReadWithoutADecoderOnlyFromThePlainBody() {
        #expect(FlashSaleController.PurchaseInput.plain(ByteBuffer(string: #"{"buyer_id":"amina-7"}"#)) == "amina-7")
        for empty in ["{}", " { } ", "\n{\t}\r\n"] { #expect(FlashSaleController.PurchaseInput.isEmptyObject(ByteBuffer(string: empty)), "\(empty)") }
        for other in ["{", "}", "{}}", "{{}", "{ x }", "[]", "", "{} {}"] { #expect(!FlashSaleController.PurchaseInput.isEmptyObject(ByteBuffer(string: other)), "\(other)") }
        #expect(FlashSaleController.PurchaseInput.plain(ByteBuffer(string: "\n{ \"buyer_id\" :\t\"b\" }\r\n")) == "b")
        for other in [#"{"buyer_id":"a\"b"}"#, #"{"buyer_id":"a\u0041"}"#, #"{"buyer_id":"a","x":1}"#, #"{"buyerId":"a"}"#, #"{"buyer_id":"a"}x"#, #"["a"]"#, #"{"buyer_id":"a"#, ""] {
            #expect(FlashSaleController.PurchaseInput.plain(ByteBuffer(string: other)) == nil, "\(other)")
        }
    }
}

extension FastLane {
    /// The answer a lane gives at once (nil when it leaves the request to the router, or would
    /// answer later); a GET has no body.
    func answer(_ request: HTTPRequest, body: ByteBuffer = ByteBuffer()) -> FastAnswer? {
        guard case .now(let answer)? = answer(request, body: body, on: LaneConnection(eventLoop: MultiThreadedEventLoopGroup.singleton.next(), peerAddress: "127.0.0.1")) else { return nil }
        return answer
    }

    /// The answer at once or late, as the handler would write it; nil: the router's request.
    func decide(_ request: HTTPRequest, body: ByteBuffer, on eventLoop: any EventLoop) async throws -> FastAnswer? {
        switch answer(request, body: body, on: LaneConnection(eventLoop: eventLoop, peerAddress: "127.0.0.1")) {
        case .now(let answer): answer
        case .later(let future): try await future.get()
        case nil: nil
        }
    }
}
