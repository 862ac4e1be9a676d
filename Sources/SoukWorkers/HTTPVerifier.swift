import Foundation
import SoukCore

/// The external verifier over HTTP(S): `POST url` with `{"buyer_id", "order_id"}`, answered with
/// `{"verified": true|false}`. Any other answer, or no answer, is an error the saga retries until
/// its deadline.
public struct HTTPVerifier: UserVerifier {
    let url: URL
    let http: OutboundHTTP

    public init(url: URL, http: OutboundHTTP) throws {
        guard OutboundHTTP.accepts(url) else { throw VerifierConfigurationError() }
        self.url = url
        self.http = http
    }

    public func verify(buyerID: String, orderID: String, timeout: Duration) async throws -> Bool {
        let reply: OutboundHTTP.Reply
        do {
            let body = try JSONSerialization.data(withJSONObject: ["buyer_id": buyerID, "order_id": orderID])
            reply = try await http.send(.POST, url, body: String(decoding: body, as: UTF8.self), timeout: timeout)
        } catch is HTTPTimeout {
            throw VerifierTimeout()
        }
        guard reply.status == 200,
              let json = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any],
              let verified = json["verified"] as? Bool
        else { throw VerifierUnavailable(status: reply.status) }
        return verified
    }
}

public struct VerifierConfigurationError: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "the verifier URL must be http(s)://host[:port]/path" }
}

public struct VerifierUnavailable: Error, CustomStringConvertible {
    let status: Int
    public var description: String { "the verifier answered \(status) without a verdict" }
}
