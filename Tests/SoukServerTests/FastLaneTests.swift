import Foundation
import HTTPTypes
import NIOCore
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
        try #require(app.services.fastLanes.first as? StorePageLane, "the in-process page cache opens the lane")
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
}
