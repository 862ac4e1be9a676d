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
        try await withThrowingTaskGroup(of: Bool?.self) { group in
            group.addTask {
                let connection = try await HTTPLoadConnection.connect(host: host, port: port)
                defer { connection.close() }
                let reply = try await connection.send(method: .POST, path: path, host: host, body: #"{"buyer_id":"\#(buyerID)","order_id":"\#(orderID)"}"#, token: nil)
                guard reply.status == 200,
                      let json = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any],
                      let verified = json["verified"] as? Bool
                else { throw VerifierUnavailable(status: reply.status) }
                return verified
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            guard let first else { throw VerifierTimeout() }
            return first
        }
    }
}

public struct VerifierConfigurationError: Error, CustomStringConvertible {
    public var description: String { "the verifier URL must be http://host[:port]/path" }
}

public struct VerifierUnavailable: Error, CustomStringConvertible {
    let status: Int
    public var description: String { "the verifier answered \(status) without a verdict" }
}
