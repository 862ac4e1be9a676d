import Foundation
import NIOHTTP1
import SoukCore

/// A card provider that speaks a Stripe-like HTTP API (`SOUK_PAYMENTS=https://…/v1`, the secret key
/// in `SOUK_PAYMENTS_KEY`), JSON both ways:
///
/// - `POST /payment_methods {type:"card", card:{number, exp_month, exp_year, cvc}}` → `{id}`
/// - `POST /payment_intents {amount, currency, payment_method, capture_method:"manual", confirm:true,
///   metadata:{checkout_id}}` with `Idempotency-Key: <checkout id>` → an intent `{id, status,
///   last_payment_error?}`; sent again with the same key, the provider answers the first answer
/// - `GET /payment_intents/{id}` → the intent as it is now
/// - `GET /payment_intents/search?query=metadata['checkout_id']:'<checkout id>'` → `{data: [intents]}`
/// - `POST /payment_intents/{id}/capture`, `POST /payment_intents/{id}/cancel`,
///   `POST /refunds {payment_intent}`, each with its own idempotency key
///
/// Authorizing and capturing first send the creation again (same key, same body): that names the
/// intent without Souk storing its id. A release — which may come days later, when the provider
/// has forgotten the key (Stripe keeps keys 24 hours) — first looks the intent up by the checkout id
/// in its metadata; only when none is found does it send the creation, which creates the intent
/// only to cancel it, so a late authorization with that key finds it cancelled.
public struct HTTPPaymentProvider: PaymentProvider {
    let base: URL
    let secretKey: String
    let http: OutboundHTTP

    public init(base: URL, secretKey: String, http: OutboundHTTP) {
        self.base = base
        self.secretKey = secretKey
        self.http = http
    }

    /// An intent as the provider describes it.
    struct Intent: Decodable {
        struct Failure: Decodable { let message: String? }
        let id: String
        let status: String
        let lastPaymentError: Failure?
    }

    struct Method: Decodable { let id: String }

    /// The provider's error body (`{error:{message, payment_intent?}}`); a declined card comes as a
    /// 402 with its intent.
    struct ErrorBody: Decodable {
        struct Detail: Decodable {
            let message: String?
            let paymentIntent: Intent?
        }
        let error: Detail
    }

    public func tokenize(_ card: PaymentCard) async throws -> String {
        let body: [String: Any] = ["type": "card", "card": ["number": card.number, "exp_month": card.expiryMonth, "exp_year": card.expiryYear, "cvc": card.securityCode]]
        let reply = try await send(.POST, "payment_methods", body: body, key: nil, deadline: .now + .seconds(10))
        guard reply.status == 200 else {
            // The provider refused the card's details: the customer's to correct.
            // Only a 400 or 402 is about the card; a bad key, a wrong address or a rate limit is ours.
            if reply.status == 400 || reply.status == 402, let message = try? Self.decoder.decode(ErrorBody.self, from: Data(reply.body.utf8)).error.message {
                throw SoukError.validationFailed([FieldError(field: "card.number", message: message)])
            }
            throw PaymentProviderUnavailable("the provider answered \(reply.status) to a card")
        }
        return try decode(Method.self, reply).id
    }

    public func authorize(_ charge: ProviderCharge, timeout: Duration) async throws -> Authorization {
        let deadline = ContinuousClock.now + timeout
        let created = try await create(charge, deadline: deadline)
        // The creation's answer may be the first one replayed: ask for the intent as it is now.
        let intent = created.status == "requires_capture" ? created : try await current(created.id, deadline: deadline)
        return Self.authorization(intent)
    }

    public func capture(_ charge: ProviderCharge, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        let intent = try await current(try await create(charge, deadline: deadline).id, deadline: deadline)
        switch intent.status {
        case "succeeded": return
        case "requires_capture":
            let reply = try await send(.POST, "payment_intents/\(intent.id)/capture", body: [:], key: charge.key + "-capture", deadline: deadline)
            let captured = try decode(Intent.self, reply)
            guard captured.status == "succeeded" else { throw PaymentProviderUnavailable("the capture of \(charge.key) left it \(captured.status)") }
        default:
            throw PaymentProviderUnavailable("charge \(charge.key) cannot be captured: \(intent.status)")
        }
    }

    public func release(_ charge: ProviderCharge, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        let named: Intent
        if let found = try await find(charge, deadline: deadline) { named = found } else { named = try await create(charge, deadline: deadline) }
        let intent = try await current(named.id, deadline: deadline)
        switch intent.status {
        case "canceled": return
        case "succeeded":
            let reply = try await send(.POST, "refunds", body: ["payment_intent": intent.id], key: charge.key + "-refund", deadline: deadline)
            guard reply.status == 200 else { throw PaymentProviderUnavailable("the refund of \(charge.key) answered \(reply.status)") }
        default:
            let reply = try await send(.POST, "payment_intents/\(intent.id)/cancel", body: [:], key: charge.key + "-cancel", deadline: deadline)
            guard try decode(Intent.self, reply).status == "canceled" else { throw PaymentProviderUnavailable("the cancellation of \(charge.key) did not take") }
        }
    }

    /// Creates the charge's intent, or names the one its key created before.
    func create(_ charge: ProviderCharge, deadline: ContinuousClock.Instant) async throws -> Intent {
        let body: [String: Any] = [
            "amount": charge.amountMinor, "currency": charge.currency.lowercased(), "payment_method": charge.cardToken,
            "capture_method": "manual", "confirm": true, "metadata": ["checkout_id": charge.key],
        ]
        let reply = try await send(.POST, "payment_intents", body: body, key: charge.key, deadline: deadline)
        if reply.status == 402, let intent = try? Self.decoder.decode(ErrorBody.self, from: Data(reply.body.utf8)).error.paymentIntent {
            return intent
        }
        return try decode(Intent.self, reply)
    }

    struct Found: Decodable { let data: [Intent] }

    /// The intent made for the charge's checkout, looked up by its metadata (no key involved).
    func find(_ charge: ProviderCharge, deadline: ContinuousClock.Instant) async throws -> Intent? {
        var query = URLComponents()
        query.queryItems = [URLQueryItem(name: "query", value: "metadata['checkout_id']:'\(charge.key)'")]
        let reply = try await send(.GET, "payment_intents/search?" + (query.percentEncodedQuery ?? ""), body: nil, key: nil, deadline: deadline)
        return try decode(Found.self, reply).data.first
    }

    func current(_ id: String, deadline: ContinuousClock.Instant) async throws -> Intent {
        try decode(Intent.self, try await send(.GET, "payment_intents/\(id)", body: nil, key: nil, deadline: deadline))
    }

    static func authorization(_ intent: Intent) -> Authorization {
        switch intent.status {
        case "requires_capture": .authorized
        case "succeeded": .captured
        case "processing": .pending
        case "canceled": .declined(reason: "the payment was cancelled")
        case "requires_action": .declined(reason: "the card asks for a confirmation Souk does not offer")
        default: .declined(reason: intent.lastPaymentError?.message ?? "the card was declined")
        }
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    func decode<T: Decodable>(_ type: T.Type, _ reply: OutboundHTTP.Reply) throws -> T {
        guard (200..<300).contains(reply.status) else { throw PaymentProviderUnavailable("the provider answered \(reply.status)") }
        do {
            return try Self.decoder.decode(T.self, from: Data(reply.body.utf8))
        } catch {
            throw PaymentProviderUnavailable("the provider's answer could not be read: \(error)")
        }
    }

    func send(_ method: HTTPMethod, _ path: String, body: [String: Any]?, key: String?, deadline: ContinuousClock.Instant) async throws -> OutboundHTTP.Reply {
        let left = deadline - .now
        guard left > .zero else { throw PaymentProviderUnavailable("no time left to ask the provider") }
        var headers = [("Authorization", "Bearer \(secretKey)")]
        if let key { headers.append(("Idempotency-Key", key)) }
        let text = try body.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
        do {
            let root = base.absoluteString.hasSuffix("/") ? base.absoluteString : base.absoluteString + "/"
            guard let url = URL(string: root + path) else { throw PaymentProviderUnavailable("no URL for \(path)") }
            return try await http.send(method, url, body: text, headers: headers, timeout: left)
        } catch let error as PaymentProviderUnavailable {
            throw error
        } catch {
            throw PaymentProviderUnavailable("the provider could not be asked: \(error)")
        }
    }
}
