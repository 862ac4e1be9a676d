import Foundation
import NIOHTTP1
import SoukCore

/// The external verifier over HTTP: `POST url` with `{"buyer_id", "order_id"}`, answered with
/// `{"verified": true|false}`. Any other answer, or no answer, is an error the saga retries until
/// its deadline.
public struct HTTPVerifier: UserVerifier {
    let host: String
    let port: Int
    let path: String

    public init(url: URL) throws {
        guard url.scheme == "http", let host = url.host else { throw VerifierConfigurationError() }
        self.host = host
        self.port = url.port ?? 80
        self.path = url.path.isEmpty ? "/" : url.path + (url.query.map { "?" + $0 } ?? "")
    }

    public func verify(buyerID: String, orderID: String, timeout: Duration) async throws -> Bool {
        let reply: HTTPLoadConnection.Reply
        do {
            reply = try await HTTPLoadConnection.request(
                host: host, port: port, method: .POST, path: path, body: #"{"buyer_id":"\#(buyerID)","order_id":"\#(orderID)"}"#, timeout: timeout)
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
    public var description: String { "the verifier URL must be http://host[:port]/path" }
}

public struct VerifierUnavailable: Error, CustomStringConvertible {
    let status: Int
    public var description: String { "the verifier answered \(status) without a verdict" }
}
