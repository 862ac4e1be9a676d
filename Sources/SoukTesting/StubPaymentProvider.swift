import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SoukWorkers

/// A Stripe-like card provider on loopback, for the HTTP adapter's tests: payment methods, intents
/// (authorized, captured, cancelled), refunds, idempotency keys that answer the first answer again,
/// and events sent to Souk — signed by the test, and duplicated, reordered, delayed or dropped on
/// request. The test cards behave as the simulated provider's: …0002 declined, …3220 late (the
/// intent is `processing` for `lateBy`), …0119 never answered.
public final class StubPaymentProvider: Sendable {
    /// How events reach Souk: every one twice, shuffled by random delays, or every `dropEvery`-th
    /// never (0: none dropped).
    public struct Delivery: Sendable {
        public var duplicates = false
        public var reorder = false
        public var dropEvery = 0
        public var delay: Duration = .zero
        public init(duplicates: Bool = false, reorder: Bool = false, dropEvery: Int = 0, delay: Duration = .zero) {
            self.duplicates = duplicates
            self.reorder = reorder
            self.dropEvery = dropEvery
            self.delay = delay
        }
    }

    /// What the provider took: captured minus refunded is what cards paid.
    public struct Totals: Sendable, Equatable {
        public var capturedMinor: Int64 = 0
        public var refundedMinor: Int64 = 0
        public var captures = 0
        public var refunds = 0
        public init(capturedMinor: Int64 = 0, refundedMinor: Int64 = 0, captures: Int = 0, refunds: Int = 0) {
            self.capturedMinor = capturedMinor
            self.refundedMinor = refundedMinor
            self.captures = captures
            self.refunds = refunds
        }
    }

    struct Intent {
        let id: String
        let amount: Int64
        let currency: String
        let checkoutID: String
        var status: String
        var failure: String?
        var lateUntil: ContinuousClock.Instant?
        var refunded = false

        var json: [String: Any] {
            var object: [String: Any] = ["id": id, "object": "payment_intent", "amount": amount, "currency": currency, "status": status,
                                         "metadata": ["checkout_id": checkoutID]]
            if let failure { object["last_payment_error"] = ["message": failure] }
            return object
        }
    }

    struct State {
        var methods: [String: String] = [:]
        var intents: [String: Intent] = [:]
        /// Idempotency key → the request's body and the first answer.
        var answers: [String: (request: String, status: Int, body: String)] = [:]
        var totals = Totals()
        var counter = 0
        var events = 0
        var down = false
        var requests = 0
        /// Where events go (none until it is known).
        var eventsURL: URL?
    }

    public let secretKey = "sk_test_stub_provider"
    let lateBy: Duration
    let delivery: Delivery
    /// The `Souk-Signature` header for a body.
    let sign: @Sendable ([UInt8]) -> String
    private let state = NIOLockedValueBox(State())
    private let channel: any Channel
    private let http: OutboundHTTP

    public var port: Int { channel.localAddress?.port ?? 0 }
    public var url: URL { URL(string: "http://127.0.0.1:\(port)/v1")! }
    public var totals: Totals { state.withLockedValue { $0.totals } }
    public var requests: Int { state.withLockedValue { $0.requests } }
    /// The status of the intent made for a checkout, if any.
    public func status(ofCheckout id: String) -> String? {
        state.withLockedValue { state in state.intents.values.first { $0.checkoutID == id }?.status }
    }

    /// While down, every request is a 503.
    public func setDown(_ down: Bool) { state.withLockedValue { $0.down = down } }

    /// Forgets every idempotency key, as a provider does after a day (Stripe: 24 hours).
    public func forgetIdempotencyKeys() { state.withLockedValue { $0.answers = [:] } }

    /// How many intents were created (each an authorization attempt on a card).
    public var intents: Int { state.withLockedValue { $0.intents.count } }

    /// Sends the events from now on to `url` (Souk's `/api/v1/payments/events`).
    public func sendEvents(to url: URL) { state.withLockedValue { $0.eventsURL = url } }

    public init(lateBy: Duration = .seconds(2), delivery: Delivery = Delivery(), sign: @escaping @Sendable ([UInt8]) -> String = { _ in "" }) async throws {
        self.lateBy = lateBy
        self.delivery = delivery
        self.sign = sign
        self.http = try OutboundHTTP(logger: Logger(label: "stub-provider"))
        let box = NIOLockedValueBox<StubPaymentProvider?>(nil)
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler { head, body in box.withLockedValue { $0 }?.answer(head, body) })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.withLockedValue { $0 = self }
    }

    public func close() async {
        try? await channel.close()
        try? await http.shutdown()
    }

    /// The answer to one request: nil never answers.
    func answer(_ head: HTTPRequestHead, _ body: String) -> (Int, String)? {
        let path = head.uri.split(separator: "?")[0].split(separator: "/").map(String.init)
        let key = head.headers["Idempotency-Key"].first
        let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        var emitted: [(String, Intent)] = [], late: [String] = []
        let reply: (Int, String)? = state.withLockedValue { state in
            state.requests += 1
            if state.down { return (503, #"{"error":{"message":"down for maintenance"}}"#) }
            guard head.headers["Authorization"].first == "Bearer \(secretKey)" else { return (401, #"{"error":{"message":"no such key"}}"#) }
            if let key, let first = state.answers[key] {
                guard first.request == body else { return (400, #"{"error":{"message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}"#) }
                return (first.status, first.body)
            }
            var answer: (Int, String)?
            switch (head.method, path.dropFirst().first ?? "", path.count) {
            case (.POST, "payment_methods", 2):
                let number = (json["card"] as? [String: Any])?["number"] as? String ?? ""
                guard !number.isEmpty, number.allSatisfy(\.isNumber) else { return (400, #"{"error":{"message":"Your card number is incorrect."}}"#) }
                state.counter += 1
                let id = "pm_\(state.counter)"
                state.methods[id] = number
                answer = (200, Self.text(["id": id, "object": "payment_method"]))
            case (.POST, "payment_intents", 2):
                guard key != nil, let method = json["payment_method"] as? String, let number = state.methods[method],
                      let amount = (json["amount"] as? NSNumber)?.int64Value, let currency = json["currency"] as? String,
                      let checkoutID = (json["metadata"] as? [String: Any])?["checkout_id"] as? String
                else { return (400, #"{"error":{"message":"Missing or unknown parameters."}}"#) }
                if number.hasSuffix("0119") { return nil }
                state.counter += 1
                var intent = Intent(id: "pi_\(state.counter)", amount: amount, currency: currency, checkoutID: checkoutID, status: "requires_capture")
                switch number.suffix(4) {
                case "0002":
                    intent.status = "requires_payment_method"
                    intent.failure = "Your card was declined."
                    answer = (402, Self.text(["error": ["message": "Your card was declined.", "payment_intent": intent.json]]))
                    emitted.append(("payment_intent.payment_failed", intent))
                case "3220":
                    intent.status = "processing"
                    intent.lateUntil = .now + lateBy
                    answer = (200, Self.text(intent.json))
                    late.append(intent.id)
                default:
                    answer = (200, Self.text(intent.json))
                    emitted.append(("payment_intent.amount_capturable_updated", intent))
                }
                state.intents[intent.id] = intent
            case (.GET, "payment_intents", 3) where path[2] == "search":
                // Only the query Souk sends: metadata['checkout_id']:'<id>'.
                let query = URLComponents(string: head.uri)?.queryItems?.first { $0.name == "query" }?.value ?? ""
                guard let id = query.split(separator: "'").dropFirst(3).first else { return (400, #"{"error":{"message":"Unsupported query."}}"#) }
                let found = state.intents.values.filter { $0.checkoutID == String(id) }.map(\.json)
                answer = (200, Self.text(["object": "search_result", "data": found]))
            case (.GET, "payment_intents", 3):
                guard var intent = state.intents[path[2]] else { return (404, #"{"error":{"message":"No such payment_intent."}}"#) }
                if intent.status == "processing", let late = intent.lateUntil, late <= .now {
                    intent.status = "requires_capture"
                    state.intents[intent.id] = intent
                }
                answer = (200, Self.text(intent.json))
            case (.POST, "payment_intents", 4) where path[3] == "capture":
                guard var intent = state.intents[path[2]] else { return (404, #"{"error":{"message":"No such payment_intent."}}"#) }
                switch intent.status {
                case "succeeded": break
                case "requires_capture":
                    intent.status = "succeeded"
                    state.intents[intent.id] = intent
                    state.totals.capturedMinor += intent.amount
                    state.totals.captures += 1
                    emitted.append(("payment_intent.succeeded", intent))
                default:
                    return (400, Self.text(["error": ["message": "This PaymentIntent could not be captured because it has a status of \(intent.status)."]]))
                }
                answer = (200, Self.text(intent.json))
            case (.POST, "payment_intents", 4) where path[3] == "cancel":
                guard var intent = state.intents[path[2]] else { return (404, #"{"error":{"message":"No such payment_intent."}}"#) }
                guard intent.status != "succeeded" else { return (400, #"{"error":{"message":"A succeeded PaymentIntent cannot be canceled; refund it."}}"#) }
                if intent.status != "canceled" {
                    intent.status = "canceled"
                    state.intents[intent.id] = intent
                    emitted.append(("payment_intent.canceled", intent))
                }
                answer = (200, Self.text(intent.json))
            case (.POST, "refunds", 2):
                guard let id = json["payment_intent"] as? String, var intent = state.intents[id], intent.status == "succeeded" else {
                    return (400, #"{"error":{"message":"Nothing to refund."}}"#)
                }
                guard !intent.refunded else { return (400, #"{"error":{"message":"Charge has already been refunded."}}"#) }
                intent.refunded = true
                state.intents[id] = intent
                state.totals.refundedMinor += intent.amount
                state.totals.refunds += 1
                emitted.append(("charge.refunded", intent))
                state.counter += 1
                answer = (200, Self.text(["id": "re_\(state.counter)", "object": "refund", "payment_intent": id, "amount": intent.amount]))
            default:
                return (404, #"{"error":{"message":"Unrecognized request URL."}}"#)
            }
            if let key, let answer { state.answers[key] = (body, answer.0, answer.1) }
            return answer
        }
        for (type, intent) in emitted { deliver(type, intent) }
        for id in late { decideLater(id) }
        return reply
    }

    /// A late authorization is decided after `lateBy`, and its event sent then.
    func decideLater(_ id: String) {
        let lateBy = lateBy
        Task {
            try? await Task.sleep(for: lateBy)
            let decided = state.withLockedValue { state -> Intent? in
                guard var intent = state.intents[id], intent.status == "processing" else { return nil }
                intent.status = "requires_capture"
                state.intents[id] = intent
                return intent
            }
            if let decided { deliver("payment_intent.amount_capturable_updated", decided) }
        }
    }

    /// Sends an event as the delivery options say; late decisions send theirs when they are due.
    func deliver(_ type: String, _ intent: Intent) {
        guard let (number, eventsURL) = state.withLockedValue({ state -> (Int, URL)? in
            guard let url = state.eventsURL else { return nil }
            state.events += 1
            return (state.events, url)
        }) else { return }
        if delivery.dropEvery > 0, number % delivery.dropEvery == 0 { return }
        let body = Self.text(["id": "evt_\(number)", "type": type, "data": ["object": intent.json]])
        let (http, sign, delivery) = (http, sign, delivery)
        Task {
            var wait = delivery.delay
            if delivery.reorder { wait += .milliseconds(Int.random(in: 0...300)) }
            try? await Task.sleep(for: wait)
            for _ in 0..<(delivery.duplicates ? 2 : 1) {
                _ = try? await http.send(.POST, eventsURL, body: body, headers: [("Souk-Signature", sign(Array(body.utf8)))], timeout: .seconds(5))
            }
        }
    }

    static func text(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let respond: @Sendable (HTTPRequestHead, String) -> (Int, String)?
        var head: HTTPRequestHead?
        var body = ""

        init(_ respond: @escaping @Sendable (HTTPRequestHead, String) -> (Int, String)?) { self.respond = respond }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = ""
            case .body(let bytes):
                body += String(buffer: bytes)
            case .end:
                guard let head, let (status, text) = respond(head, body) else { return }
                let response = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status),
                                                headers: ["Content-Length": String(text.utf8.count), "Content-Type": "application/json"])
                context.write(wrapOutboundOut(.head(response)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
