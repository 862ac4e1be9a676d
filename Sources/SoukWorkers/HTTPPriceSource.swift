import Foundation
import SoukCore

/// A price endpoint polled over HTTP: `GET url` answered with JSON rows or CSV lines of
/// `item, price, timestamp`. It only knows the present, so intervals missed while the producer was
/// down cannot be asked for again.
public struct HTTPPriceSource: PriceSource {
    let host: String
    let port: Int
    let path: String
    let timeout: Duration
    public let name: String
    public var answersForThePast: Bool { false }

    public init(url: URL, timeout: Duration = .seconds(10)) throws {
        guard url.scheme == "http", let host = url.host else { throw PriceSourceConfigurationError(url: url.absoluteString) }
        self.host = host
        self.port = url.port ?? 80
        self.path = url.path.isEmpty ? "/" : url.path + (url.query.map { "?" + $0 } ?? "")
        self.timeout = timeout
        self.name = url.absoluteString
    }

    public func fetch(interval start: Int64, length: Int64) async throws -> PriceFetch {
        let reply = try await HTTPLoadConnection.request(host: host, port: port, method: .GET, path: path, body: nil, timeout: timeout)
        guard reply.status == 200 else { throw PriceSourceUnavailable(status: reply.status) }
        // Rows stamped past the end of this interval (with a minute of clock skew) cannot be trusted.
        let notAfter = max(start + length, FeedSchedule.now()) + 60_000
        let body = reply.body.drop { $0.isWhitespace }
        return body.first == "[" || body.first == "{"
            ? PriceRows.parseJSON(Data(body.utf8), notAfter: notAfter)
            : PriceRows.parseCSV(String(body), notAfter: notAfter)
    }
}

public struct PriceSourceConfigurationError: Error, CustomStringConvertible {
    let url: String
    public var description: String { "the price source \(url) must be http://host[:port]/path" }
}

public struct PriceSourceUnavailable: Error, CustomStringConvertible {
    let status: Int
    public var description: String { "the price source answered HTTP \(status)" }
}
