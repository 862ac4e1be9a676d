import Hummingbird
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// How long a connection may keep the server waiting. A client that stops sending in the middle of
/// a request, or keeps a connection open without using it, must not hold a socket forever: a few
/// hundred such connections would otherwise exhaust the server's file descriptors.
public struct HTTPTimeouts: Sendable, Equatable {
    /// A connection with no request in progress and no answer owed is closed after this long
    /// (it also bounds a request head that never completes).
    public var idle: Duration
    /// A request whose body makes no progress for this long is dropped.
    public var body: Duration
    /// The longest a whole request may take to arrive, head to end, however steadily it trickles.
    public var read: Duration

    public init(idle: Duration = .seconds(60), body: Duration = .seconds(30), read: Duration = .seconds(300)) {
        self.idle = idle
        self.body = body
        self.read = read
    }
}

/// A lane wrote a complete answer straight to the socket (past the response parts): sent as an
/// outbound user event so that ``ConnectionTimeoutHandler`` counts the request as answered.
struct LaneAnswerWritten: Sendable {}

/// Closes a connection that breaks an ``HTTPTimeouts`` limit. It sits right after the HTTP codec,
/// before the fast lanes, so it sees every request part read and every answer written (router
/// answers as response parts, lane answers as ``LaneAnswerWritten``). An answer still owed (a
/// long poll, an event stream) is never cut: the limits are on what the client sends.
final class ConnectionTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeouts: HTTPTimeouts
    /// When the request being read began, if one is.
    private var requestStarted: NIODeadline?
    /// Requests begun (head read) and not answered yet; an answer may come before its body is read.
    private var unanswered = 0
    /// The last request part read or answer finished.
    private var lastActivity = NIODeadline.now()
    private var check: Scheduled<Void>?

    init(timeouts: HTTPTimeouts) {
        self.timeouts = timeouts
    }

    /// How often the limits are checked: a tenth of the shortest, between 100 ms and 1 s.
    var checkInterval: TimeAmount {
        let shortest = min(timeouts.idle, timeouts.body, timeouts.read) / 10
        return .nanoseconds(max(100_000_000, min(1_000_000_000, shortest.nanoseconds)))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastActivity = .now()
        scheduleCheck(context)
    }

    private func scheduleCheck(_ context: ChannelHandlerContext) {
        check = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: checkInterval) {
            self.check = nil
            if !self.closed, !self.enforce(context) { self.scheduleCheck(context) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
        closed = true
        context.fireChannelInactive()
    }

    private var closed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = NIODeadline.now()
        lastActivity = now
        switch unwrapInboundIn(data) {
        case .head:
            requestStarted = now
            unanswered += 1
        case .body: break
        case .end: requestStarted = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { answered() }
        context.write(data, promise: promise)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if event is LaneAnswerWritten {
            answered()
            promise?.succeed()
        } else {
            context.triggerUserOutboundEvent(event, promise: promise)
        }
    }

    private func answered() {
        unanswered = max(0, unanswered - 1)
        lastActivity = .now()
    }

    /// Closes the connection if it broke a limit; true when it did.
    private func enforce(_ context: ChannelHandlerContext) -> Bool {
        guard Self.breach(now: .now(), requestStarted: requestStarted, unanswered: unanswered, lastActivity: lastActivity, timeouts: timeouts) != nil else { return false }
        context.close(promise: nil)
        return true
    }

    /// Which limit the connection has broken, if any (a pure function, tested without a socket).
    /// `unanswered` counts the request being read too, once its head is in.
    static func breach(now: NIODeadline, requestStarted: NIODeadline?, unanswered: Int, lastActivity: NIODeadline, timeouts: HTTPTimeouts) -> String? {
        func exceeded(_ since: NIODeadline, _ limit: Duration) -> Bool { now - since > .nanoseconds(limit.nanoseconds) }
        if let requestStarted {
            // Pipelined behind an answer still owed (an event stream), a request is not read until
            // that answer ends: its stall is the server's doing, not the client's.
            if unanswered > 1 { return nil }
            if exceeded(requestStarted, timeouts.read) { return "read" }
            if exceeded(lastActivity, timeouts.body) { return "body" }
            return nil
        }
        if unanswered == 0, exceeded(lastActivity, timeouts.idle) { return "idle" }
        return nil
    }
}

extension Duration {
    /// Whole nanoseconds, saturating (a configured duration is at most days).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : scaled &+ attoseconds / 1_000_000_000
    }
}
