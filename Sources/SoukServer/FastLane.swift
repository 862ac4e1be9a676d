import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization
import SoukCore

/// An answer given from memory on the event loop that read the request.
struct FastAnswer {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer?
    /// The route pattern the router would have counted it under in `souk_http_*`.
    let route: String
}

/// A request that can sometimes be answered at once from memory, without suspending.
protocol FastLane: Sendable {
    /// The answer, or nil to leave the request to the router (which then answers it as always).
    func answer(_ request: HTTPRequest) -> FastAnswer?
}

/// Answers the hottest reads (a cached store page) on the event loop that read them, before the
/// router: no task, no hop to the concurrency pool and back, which is most of what such a request
/// costs. A request no lane answers goes on to the router untouched. Answers carry what the
/// router's middleware adds (security headers, request id, `Date`, `Server`) and are counted in
/// the same metrics. A pipelined request that arrives while the router is still answering an
/// earlier one goes to the router too, so answers always keep the order of requests.
final class FastLaneHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let lanes: [any FastLane]
    let metrics: HTTPMetrics
    let serverName: String
    /// Requests handed to the router whose response has not ended yet.
    private var routerRequests = 0
    /// True from an answered request's head until its end: its remaining parts are not the router's.
    private var answered = false

    init(lanes: [any FastLane], metrics: HTTPMetrics, serverName: String) {
        self.lanes = lanes
        self.metrics = metrics
        self.serverName = serverName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            let start = ContinuousClock.now
            guard routerRequests == 0, request.method == .get,
                  request.headerFields[.connection]?.lowercased() != "close",
                  let answer = lanes.lazy.compactMap({ $0.answer(request) }).first
            else {
                routerRequests += 1
                context.fireChannelRead(data)
                return
            }
            answered = true
            write(answer, to: request, context: context)
            metrics.record(method: request.method, path: answer.route, status: answer.status.code, nanoseconds: HTTPMetricsMiddleware.elapsed(since: start))
        case .body:
            if !answered { context.fireChannelRead(data) }
        case .end:
            if answered { answered = false } else { context.fireChannelRead(data) }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { routerRequests = max(0, routerRequests - 1) }
        context.write(data, promise: promise)
    }

    private func write(_ answer: FastAnswer, to request: HTTPRequest, context: ChannelHandlerContext) {
        var headers = answer.headers
        headers.append(contentsOf: SecurityHeadersMiddleware.headers)
        headers[.xRequestID] = request.headerFields[.xRequestID].flatMap(RequestIDMiddleware.accepted) ?? RequestIDMiddleware.generate()
        headers[.date] = HTTPDate.now()
        headers[.server] = serverName
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: headers))), promise: nil)
        if let body = answer.body {
            context.write(wrapOutboundOut(.body(body)), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// The anonymous visitor's store page (`GET /s/{username}`) from the in-process page cache: the
/// same bytes, ETag and `304` as ``PagesController``'s handler, which answers everything else
/// (a logged-in vendor, a first visit without a form-token cookie, a page not cached yet).
struct StorePageLane: FastLane {
    let services: SoukServices
    let cache: InProcessPageCache

    func answer(_ request: HTTPRequest) -> FastAnswer? {
        guard let username = Self.username(in: request.path ?? ""),
              request.headerFields[.authorization] == nil,
              SessionMiddleware.cookie(SessionTokens.cookieName, in: request.headerFields) == nil,
              let csrfToken = CSRFMiddleware.token(in: request.headerFields),
              let vendor = services.knownVendor(username),
              let page = cache.currentPage(PageKey(vendorID: vendor.id, variant: "html"))
        else { return nil }
        services.views.count(vendorID: vendor.id)
        StorefrontCache.hits.increment()
        let (status, headers, body) = StorefrontCache.answer(page, requestHeaders: request.headerFields, contentType: "text/html; charset=utf-8", csrfToken: csrfToken)
        return FastAnswer(status: status, headers: headers, body: body, route: "/s/{username}")
    }

    /// The lowercased username of `/s/{username}` (query ignored, as the router does), or nil for
    /// any other path or a name with characters a username never has.
    static func username(in path: String) -> String? {
        var path = Substring(path)
        if let query = path.firstIndex(of: "?") { path = path[..<query] }
        guard path.hasPrefix("/s/") else { return nil }
        let name = path.dropFirst(3)
        guard (1...64).contains(name.utf8.count),
              name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F })
        else { return nil }
        return name.lowercased()
    }
}

/// The `Date` header's value (RFC 9110 IMF-fixdate), formatted once a second.
enum HTTPDate {
    private static let cached = Mutex<(second: Int, text: String)>((-1, ""))

    static func now() -> String {
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        let second = clock.tv_sec
        return cached.withLock { cached in
            if cached.second != second { cached = (second, format(second)) }
            return cached.text
        }
    }

    static func format(_ second: Int) -> String {
        var seconds = time_t(second)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
