import Foundation
import SoukCore

/// A price endpoint polled over HTTP(S): `GET url` answered with JSON rows or CSV lines of
/// `item, price, timestamp`. It only knows the present, so intervals missed while the producer was
/// down cannot be asked for again.
public struct HTTPPriceSource: PriceSource {
    let url: URL
    let http: OutboundHTTP
    let timeout: Duration
    public let name: String
    public var answersForThePast: Bool { false }

    public init(url: URL, http: OutboundHTTP, timeout: Duration = .seconds(10)) throws {
        guard OutboundHTTP.accepts(url) else { throw PriceSourceConfigurationError(url: url.absoluteString) }
        self.url = url
        self.http = http
        self.timeout = timeout
        self.name = url.absoluteString
    }

    public func fetch(interval start: Int64, length: Int64) async throws -> PriceFetch {
        let reply = try await http.send(.GET, url, timeout: timeout)
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

    public init(url: String) {
        self.url = url
    }

    public var description: String { "the price source \(url) must be http(s)://host[:port]/path" }
}

public struct PriceSourceUnavailable: Error, CustomStringConvertible {
    let status: Int
    public var description: String { "the price source answered HTTP \(status)" }
}
