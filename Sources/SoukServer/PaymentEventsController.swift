import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import SoukCore

/// The provider's signature on an event: `Souk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>" with the shared secret>`. The time is signed with the body, so an event captured on
/// the way cannot be sent again later than ``tolerance``.
public struct PaymentEventSignature: Sendable {
    /// The secret's bytes (`SymmetricKey` is not `Sendable`; keying one per event costs nothing that matters).
    let secret: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: secret) }
    public static let tolerance: TimeInterval = 300
    public static let header = HTTPField.Name("Souk-Signature")!

    public init(secret: String) {
        self.secret = Array(secret.utf8)
    }

    /// The header value for `body` sent at `time`.
    public func sign(_ body: [UInt8], at time: Date) -> String {
        let seconds = Int64(time.timeIntervalSince1970)
        let mac = HMAC<SHA256>.authenticationCode(for: Self.signed(body, seconds: seconds), using: key)
        return "t=\(seconds),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `header` signs `body` with the secret, within ``tolerance`` of `now`.
    public func isValid(_ header: String?, body: [UInt8], now: Date) -> Bool {
        guard let header else { return false }
        var seconds: Int64?, candidates: [[UInt8]] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            switch pair[0].trimmingCharacters(in: .whitespaces) {
            case "t": seconds = Int64(pair[1])
            // A few signatures at most (two while a secret is replaced): each costs a MAC of the body.
            case "v1": if candidates.count < 3, let mac = Self.bytes(hex: pair[1]) { candidates.append(mac) }
            default: continue
            }
        }
        guard let seconds, abs(now.timeIntervalSince1970 - Double(seconds)) <= Self.tolerance else { return false }
        let message = Self.signed(body, seconds: seconds)
        // Several v1 values are allowed while the secret is being changed.
        return candidates.contains { HMAC<SHA256>.isValidAuthenticationCode($0, authenticating: message, using: key) }
    }

    static func signed(_ body: [UInt8], seconds: Int64) -> [UInt8] {
        Array("\(seconds).".utf8) + body
    }

    static func bytes(hex: Substring) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// `POST /api/v1/payments/events`: the card provider's events (a charge authorized late, declined,
/// captured, refunded). Each is checked against the shared secret, recorded once by its id, and
/// wakes its checkout's saga, which asks the provider for the charge's state: an event only says
/// "look again", so events that come twice, late or out of order change nothing.
struct PaymentEventsController {
    let services: SoukServices

    func addRoutes(to group: RouterGroup<SoukRequestContext>) {
        group.post("payments/events", use: receive)
    }

    struct Event: Decodable {
        struct Payload: Decodable {
            struct Object: Decodable {
                let metadata: [String: String]?
            }
            let object: Object?
        }
        let id: String
        let type: String
        let data: Payload?
    }

    struct Received: Encodable {
        let received: Bool
        let duplicate: Bool
    }

    /// Events are small; a larger body is refused before it is read.
    static let bodyLimit = 64 * 1024

    /// The event in a signed body, or the client error that describes what is wrong with it.
    static func event(from body: [UInt8]) throws(SoukError) -> Event {
        let event: Event
        do {
            event = try JSONResponse.decoder.decode(Event.self, from: Data(body))
        } catch {
            throw .malformedRequest("An event is {\"id\", \"type\", \"data\": {\"object\": {\"metadata\": {\"checkout_id\"}}}}.")
        }
        let problems = [("id", event.id), ("type", event.type)].filter { !(1...255).contains($0.1.utf8.count) }
        guard problems.isEmpty else {
            throw .validationFailed(problems.map { FieldError(field: $0.0, message: "must be 1 to 255 characters") })
        }
        return event
    }

    @Sendable func receive(_ request: Request, context: SoukRequestContext) async throws -> Response {
        guard let signature = services.paymentEventSignature else {
            throw SoukError.notFound("Payment events (no provider sends events to this shop)")
        }
        let body = Array(buffer: try await JSONResponse.readBody(request, limit: Self.bodyLimit))
        guard signature.isValid(request.headers[PaymentEventSignature.header], body: body, now: Date()) else {
            throw SoukError.forbidden("The event's signature is missing, wrong or too old.")
        }
        let event = try Self.event(from: body)
        let checkoutID = event.data?.object?.metadata?["checkout_id"].flatMap { $0.hasPrefix("co_") && $0.utf8.count <= 40 ? $0 : nil }
        let new = try await services.checkouts.store.recordPaymentEvent(id: event.id, type: event.type, checkoutID: checkoutID, now: Date())
        context.logger.info("payment event", metadata: ["souk.event_id": "\(event.id)", "type": "\(event.type)", "duplicate": "\(!new)"])
        return try JSONResponse.make(Received(received: true, duplicate: !new))
    }
}
