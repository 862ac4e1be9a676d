import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
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

/// A lane's answer: at once, or when a reply arrives on the request's event loop (nil then
/// leaves the request to the router after all).
enum FastReply {
    case now(FastAnswer)
    case later(EventLoopFuture<FastAnswer?>)
}

/// Where a request came in: the event loop a late answer must complete on, and the client.
struct LaneConnection {
    let eventLoop: any EventLoop
    let peerAddress: String?
}

/// A request that can sometimes be answered without a task: from memory, or from one reply that
/// arrives on the event loop that read the request.
protocol FastLane: Sendable {
    /// Whether this lane may answer the request once its body (if any) has arrived: a look at the
    /// method and path only.
    func takes(_ request: HTTPRequest) -> Bool
    /// The answer, or nil to leave the request to the router (which then answers it as always).
    func answer(_ request: HTTPRequest, body: ByteBuffer, on connection: LaneConnection) -> FastReply?
}

/// Answers the hottest requests (a cached store page, an attempt on a sold-out sale) on the event
/// loop that read them, before the router: no task, no hop to the concurrency pool and back,
/// which is most of what such a request costs. A request no lane answers goes on to the router
/// untouched. Answers carry what the router's middleware adds (security headers, request id,
/// `Date`, `Server`) and are counted in the same metrics. A pipelined request that arrives while
/// the router is still answering an earlier one goes to the router too, so answers always keep
/// the order of requests.
final class FastLaneHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Bodies larger than this are never a lane's: the request goes to the router as it came.
    static let maximumBody = 4_096

    enum State {
        case idle
        /// A lane may answer once the body is complete.
        case collecting(HTTPRequest, lane: any FastLane, body: ByteBuffer, since: ContinuousClock.Instant)
        /// The router's request: its parts pass through.
        case routing
        /// A lane answers later; requests that arrive meanwhile wait, so answers keep their order.
        case waiting(HTTPRequest, body: ByteBuffer, since: ContinuousClock.Instant)
    }

    let lanes: [any FastLane]
    let metrics: HTTPMetrics
    let serverName: String
    private var state = State.idle
    /// Requests handed to the router whose response has not ended yet.
    private var routerRequests = 0
    /// Parts read while a lane's answer is pending, and whether a read was held back meanwhile.
    private var held: [HTTPRequestPart] = []
    private var heldRead = false
    /// NIO's HTTP/1 response encoder in this pipeline: a lane's answer is written through its
    /// context as bytes this handler encodes, which go straight to the socket (a context writes to
    /// the handlers after it). The answer is one complete response with its length, so the
    /// encoder, idle between responses, has nothing to know about it. Nil in a pipeline without
    /// it: answers then go down as response parts.
    private var encoder: ChannelHandlerContext?

    init(lanes: [any FastLane], metrics: HTTPMetrics, serverName: String) {
        self.lanes = lanes
        self.metrics = metrics
        self.serverName = serverName
    }

    func handlerAdded(context: ChannelHandlerContext) {
        encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        encoder = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.waiting, _):
            held.append(part)
        case (_, .head(let request)):
            // `Connection: close` and `Expect: 100-continue` stay with the router, which knows them.
            if routerRequests == 0, request.headerFields[.connection]?.lowercased() != "close", request.headerFields[.expect] == nil,
               let lane = lanes.first(where: { $0.takes(request) }) {
                state = .collecting(request, lane: lane, body: ByteBuffer(), since: .now)
            } else {
                route(context, [part])
            }
        case (.collecting(let request, let lane, var body, let since), .body(var chunk)):
            if body.readableBytes + chunk.readableBytes > Self.maximumBody {
                route(context, [.head(request)] + (body.readableBytes > 0 ? [.body(body)] : []) + [.body(chunk)])
            } else {
                body.writeBuffer(&chunk)
                state = .collecting(request, lane: lane, body: body, since: since)
            }
        case (.collecting(let request, let lane, let body, let since), .end):
            state = .idle
            switch lane.answer(request, body: body, on: LaneConnection(eventLoop: context.eventLoop, peerAddress: context.channel.remoteAddress?.ipAddress)) {
            case .now(let answer):
                write(answer, to: request, since: since, context: context)
            case .later(let future):
                state = .waiting(request, body: body, since: since)
                future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                    self.finishWaiting(context, with: (try? result.get()) ?? nil)
                }
            case nil:
                route(context, Self.parts(request, body))
            }
        case (.routing, .end), (.idle, .end):
            state = .idle
            context.fireChannelRead(data)
        case (.routing, .body), (.idle, .body):
            context.fireChannelRead(data)
        }
    }

    /// A lane's late answer: written, or the request goes to the router after all; then the
    /// requests that arrived meanwhile are read, in order.
    private func finishWaiting(_ context: ChannelHandlerContext, with answer: FastAnswer?) {
        guard case .waiting(let request, let body, let since) = state else { return }
        state = .idle
        if let answer {
            write(answer, to: request, since: since, context: context)
        } else {
            route(context, Self.parts(request, body))
        }
        while !held.isEmpty, !isWaiting {
            let part = held.removeFirst()
            channelRead(context: context, data: wrapInboundOut(part))
        }
        // What was passed on now came outside a read from the socket: the router's channel
        // delivers reads when told a read is complete.
        context.fireChannelReadComplete()
        if !isWaiting, heldRead {
            heldRead = false
            context.read()
        }
    }

    private var isWaiting: Bool {
        if case .waiting = state { return true }
        return false
    }

    /// While a lane's answer is pending, no more is read from the socket (what one read brought
    /// is held), so a client pipelining requests cannot pile them up here.
    func read(context: ChannelHandlerContext) {
        if isWaiting {
            heldRead = true
        } else {
            context.read()
        }
    }

    private static func parts(_ request: HTTPRequest, _ body: ByteBuffer) -> [HTTPRequestPart] {
        body.readableBytes > 0 ? [.head(request), .body(body), .end(nil)] : [.head(request), .end(nil)]
    }

    /// Hands a request (or what has arrived of it) to the router.
    private func route(_ context: ChannelHandlerContext, _ parts: [HTTPRequestPart]) {
        routerRequests += 1
        state = .routing
        for part in parts {
            if case .end = part { state = .idle }
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { routerRequests = max(0, routerRequests - 1) }
        context.write(data, promise: promise)
    }

    private func write(_ answer: FastAnswer, to request: HTTPRequest, since: ContinuousClock.Instant, context: ChannelHandlerContext) {
        metrics.record(method: request.method, path: answer.route, status: answer.status.code, nanoseconds: HTTPMetricsMiddleware.elapsed(since: since))
        let requestID = request.headerFields[.xRequestID].flatMap(RequestIDMiddleware.accepted) ?? RequestIDMiddleware.generate()
        if let encoder {
            // The router's headers in the router's order: the answer's, the security headers
            // (encoded once), then the request id, the date and the server.
            var head = context.channel.allocator.buffer(capacity: 512)
            Self.writeStatusAndFields(answer.status, answer.headers, into: &head)
            head.writeBytes(Self.securityHeaderLines)
            Self.writeField("X-Request-Id", requestID, into: &head)
            Self.writeField("Date", HTTPDate.now(), into: &head)
            Self.writeField("Server", serverName, into: &head)
            Self.finishHead(answer.status, bodyLength: answer.body?.readableBytes ?? 0, into: &head)
            encoder.write(NIOAny(head), promise: nil)
            if let body = answer.body, body.readableBytes > 0 { encoder.write(NIOAny(body), promise: nil) }
            encoder.flush()
            context.triggerUserOutboundEvent(LaneAnswerWritten(), promise: nil)
            return
        }
        var headers = answer.headers
        headers.append(contentsOf: SecurityHeadersMiddleware.headers)
        headers[.xRequestID] = requestID
        headers[.date] = HTTPDate.now()
        headers[.server] = serverName
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: headers))), promise: nil)
        if let body = answer.body {
            context.write(wrapOutboundOut(.body(body)), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

extension FastLaneHandler {
    /// The status line and header block of an HTTP/1.1 response, as NIO's encoder writes them; a
    /// response that may have a body always says its length (the encoder would send it chunked).
    static func encodedHead(_ status: HTTPResponse.Status, _ headers: HTTPFields, bodyLength: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var head = allocator.buffer(capacity: 512)
        writeStatusAndFields(status, headers, into: &head)
        finishHead(status, bodyLength: bodyLength, into: &head)
        return head
    }

    static func writeStatusAndFields(_ status: HTTPResponse.Status, _ headers: HTTPFields, into head: inout ByteBuffer) {
        head.writeStaticString("HTTP/1.1 ")
        head.writeString(String(status.code))
        head.writeStaticString(" ")
        head.writeString(status.reasonPhrase)
        head.writeStaticString("\r\n")
        for field in headers where field.name != .contentLength && field.name != .transferEncoding {
            writeField(field.name.rawName, field.value, into: &head)
        }
    }

    static func writeField(_ name: String, _ value: String, into head: inout ByteBuffer) {
        head.writeString(name)
        head.writeStaticString(": ")
        head.writeString(value)
        head.writeStaticString("\r\n")
    }

    /// The length of a response that may have a body (always said: the encoder would otherwise
    /// send it chunked), and the blank line.
    static func finishHead(_ status: HTTPResponse.Status, bodyLength: Int, into head: inout ByteBuffer) {
        let mayHaveBody = status.code >= 200 && status.code != 204 && status.code != 304
        if mayHaveBody {
            head.writeStaticString("Content-Length: ")
            head.writeString(String(bodyLength))
            head.writeStaticString("\r\n")
        }
        head.writeStaticString("\r\n")
    }

    /// ``SecurityHeadersMiddleware/headers`` as header lines, encoded once.
    static let securityHeaderLines: [UInt8] = {
        var lines = ByteBuffer()
        for field in SecurityHeadersMiddleware.headers { writeField(field.name.rawName, field.value, into: &lines) }
        return Array(buffer: lines)
    }()
}

/// The anonymous visitor's store page (`GET /s/{username}`) from the page cache: the same bytes,
/// ETag and `304` as ``PagesController``'s handler, which answers everything else (a logged-in
/// vendor, a first visit without a form-token cookie, a page not cached at the current version).
/// The in-process cache answers at once; the Redis cache from one read on the request's event loop
/// (shared by the visitors of that page in the same turn of the loop).
struct StorePageLane: FastLane {
    enum Source: Sendable {
        case local(InProcessPageCache)
        case eventLoop(any EventLoopPageCache)
    }

    let services: SoukServices
    let source: Source

    func takes(_ request: HTTPRequest) -> Bool {
        request.method == .get && request.path?.hasPrefix("/s/") == true
    }

    func answer(_ request: HTTPRequest, body: ByteBuffer, on connection: LaneConnection) -> FastReply? {
        guard let username = Self.username(in: request.path ?? ""),
              request.headerFields[.authorization] == nil,
              SessionMiddleware.cookie(SessionTokens.cookieName, in: request.headerFields) == nil,
              let csrfToken = CSRFMiddleware.token(in: request.headerFields),
              let vendor = services.knownVendor(username)
        else { return nil }
        let key = PageKey(vendorID: vendor.id, variant: "html")
        switch source {
        case .local(let cache):
            return cache.currentPage(key).map { .now(answer($0, vendorID: vendor.id, request: request, csrfToken: csrfToken)) }
        case .eventLoop(let cache):
            return cache.currentPage(key, on: connection.eventLoop).map { read in
                .later(read.map { page in page.map { answer($0, vendorID: vendor.id, request: request, csrfToken: csrfToken) } })
            }
        }
    }

    private func answer(_ page: CachedPage, vendorID: Int64, request: HTTPRequest, csrfToken: String) -> FastAnswer {
        services.views.count(vendorID: vendorID)
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

/// An attempt on a sale this process knows is sold out (`POST /api/v1/flash-sales/{id}/purchases`):
/// `409 sold_out`, or the buyer's own order again when it retries an admitted purchase, from
/// memory. It is answered before rate limiting: nothing is left to protect, and the answer is
/// the same for everyone. A body the router would refuse, an unknown sale or one still selling
/// goes to the router.
struct SoldOutLane: FastLane {
    let flashSales: FlashSales
    let customers: CustomerTokens

    /// Only sales the gate has settled: an attempt on a sale still selling goes straight to the
    /// router, without its body being read twice.
    func takes(_ request: HTTPRequest) -> Bool {
        guard request.method == .post, let saleID = Self.saleID(in: request.path ?? "") else { return false }
        return flashSales.gate.hasSettledAdmissions(saleID: saleID)
    }

    func answer(_ request: HTTPRequest, body: ByteBuffer, on connection: LaneConnection) -> FastReply? {
        guard let saleID = Self.saleID(in: request.path ?? ""),
              let buyer = try? FlashSaleController.PurchaseInput.buyer(customers.identity(in: request), body: body),
              let settled = flashSales.settledPurchase(saleID: saleID, buyerID: buyer.customerID, verified: buyer.verified, requestKey: request.headerFields[.idempotencyKey])
        else { return nil }
        return .now(Self.answer(settled.outcome, sale: settled.sale))
    }

    /// The router's answer to a purchase attempt, byte for byte.
    static func answer(_ outcome: Result<HeldOrder, SoukError>, sale: FlashSale) -> FastAnswer {
        let (status, body): (HTTPResponse.Status, ByteBuffer)
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        switch outcome {
        case .success(let order):
            (status, body) = (.accepted, FlashSaleController.admitted(order, in: sale))
        case .failure(let error):
            let problem = ErrorMiddleware.problem(for: error)
            (status, body) = (problem.status, JSONResponse.errorBody(problem))
            if let wait = problem.retryAfterSeconds { headers[.retryAfter] = String(wait) }
        }
        headers[.contentLength] = String(body.readableBytes)
        return FastAnswer(status: status, headers: headers, body: body, route: "/api/v1/flash-sales/{id}/purchases")
    }

    /// The sale id of `/api/v1/flash-sales/{id}/purchases`, or nil for any other path.
    static func saleID(in path: String) -> Int64? {
        let bytes = Array(path.utf8.prefix { $0 != UInt8(ascii: "?") })
        let prefix = Array("/api/v1/flash-sales/".utf8), suffix = Array("/purchases".utf8)
        guard bytes.count > prefix.count + suffix.count, bytes.count <= prefix.count + suffix.count + 18,
              bytes.starts(with: prefix), bytes[(bytes.count - suffix.count)...].elementsEqual(suffix)
        else { return nil }
        var id: Int64 = 0
        for digit in bytes[prefix.count..<(bytes.count - suffix.count)] {
            guard digit >= 0x30 && digit <= 0x39 else { return nil }
            id = id * 10 + Int64(digit - 0x30)
        }
        return id
    }
}

/// A purchase attempt on a sale still selling, decided on the event loop that read it and
/// answered there: the hop to a task and back, and the task's own hops to Redis and back, were
/// most of what an admission cost this process. The gate counts the attempt's rate limits in the
/// same script call as its decision, as it does for the router. What the lane cannot decide (an
/// unknown sale, a body of another shape, a Redis connection not open yet, a sale not loaded into
/// Redis, a failed reply) goes to the router, which decides the same: the gate admits a buyer and
/// key once and says so again to a retry.
struct AdmissionLane: FastLane {
    let flashSales: FlashSales
    let gate: any EventLoopAdmissionGate
    let customers: CustomerTokens
    let rateGuard: RateGuard

    func takes(_ request: HTTPRequest) -> Bool {
        guard request.method == .post, let saleID = SoldOutLane.saleID(in: request.path ?? "") else { return false }
        return !flashSales.gate.hasSettledAdmissions(saleID: saleID)
    }

    func answer(_ request: HTTPRequest, body: ByteBuffer, on connection: LaneConnection) -> FastReply? {
        guard let saleID = SoldOutLane.saleID(in: request.path ?? ""),
              let buyer = try? FlashSaleController.PurchaseInput.buyer(customers.identity(in: request), body: body),
              let attempt = flashSales.knownAttempt(saleID: saleID, buyerID: buyer.customerID, verified: buyer.verified, requestKey: request.headerFields[.idempotencyKey])
        else { return nil }
        let limits = rateGuard.purchaseChecks(buyer: attempt.buyerID, address: rateGuard.clientAddress(request.headerFields, peer: connection.peerAddress))
        let decided = gate.admit(attempt.sale, buyerID: attempt.buyerID, requestKey: attempt.requestKey, limits: limits, now: Date(), on: connection.eventLoop)
        return decided.map { admission in
            .later(admission.map { $0.map { SoldOutLane.answer(FlashSales.outcome($0, of: attempt.sale), sale: attempt.sale) } }.recover { _ in nil })
        }
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
