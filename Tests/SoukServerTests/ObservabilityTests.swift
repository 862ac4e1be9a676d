import Foundation
import HTTPTypes
import Logging
import NIOCore
import SoukCore
import SoukServer
import Testing

/// `/metrics`, `/readyz` and request ids. Serialized: the metrics registry is one per process.
@Suite("Observability", .serialized)
struct ObservabilityTests {
    static func metric(_ text: String, _ prefix: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test func metricsCountRequestsPerRouteAndReportSalesAndTheCache() async throws {
        try await TestApp.run(pageCache: InProcessPageCache(timeToLive: .seconds(60))) { app in
            let token = try await app.vendorToken("amina")
            let phone = try await app.product(token: token, stock: 20)
            let sale = try #require((try await FlashSaleAPITests.createSale(app, token: token, product: phone, quantity: 5, limit: 1).json["id"] as? NSNumber)?.int64Value)
            for buyer in ["a", "b", "c"] {
                let customer = try await app.customer("\(buyer)@example.com")
                #expect(try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", nil, token: customer.token).status == .accepted)
            }
            for _ in 0..<3 { _ = try await app.send(.get, "/s/amina") }

            let reply = try await app.send(.get, "/metrics")
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = reply.body
            #expect(text.contains("# TYPE souk_http_request_duration_seconds histogram"), "latency histograms per route")
            let purchases = text.split(separator: "\n").first { $0.hasPrefix("souk_http_requests_total{") && $0.contains("flash-sales") && $0.contains("purchases") && $0.contains(#"code="2xx""#) }
            let line = try #require(purchases, "the route's pattern, not each URL: \(text.prefix(3_000))")
            #expect(!line.contains("/\(sale)/"), "\(line)")
            #expect((Double(line.split(separator: " ").last ?? "") ?? 0) >= 3)
            #expect(text.contains(#"le="+Inf""#))
            #expect(Self.metric(text, #"souk_flash_sale_admitted{sale="\#(sale)"}"#) == 3)
            #expect(Self.metric(text, #"souk_flash_sale_remaining{sale="\#(sale)"}"#) == 2)
            #expect((Self.metric(text, #"souk_page_cache_lookups_total{result="hit"}"#) ?? 0) >= 2, "two of three store views came from the cache")
            #expect(text.contains("souk_jobs{state=\"dead\"}"))
        }
    }

    @Test func everyAnswerCarriesARequestID() async throws {
        try await TestApp.run { app in
            let fresh = try await app.send(.get, "/healthz")
            let id = try #require(fresh.headers[HTTPField.Name("X-Request-Id")!])
            #expect(id.count == 16)
            let given = try await app.send(.get, "/api/v1/stores/nobody", headers: [HTTPField.Name("X-Request-Id")!: "abc-123-from-nginx"])
            #expect(given.status == .notFound && given.headers[HTTPField.Name("X-Request-Id")!] == "abc-123-from-nginx", "errors carry it too")
            let hostile = try await app.send(.get, "/healthz", headers: [HTTPField.Name("X-Request-Id")!: "x\"; drop table"])
            #expect(hostile.headers[HTTPField.Name("X-Request-Id")!]?.count == 16, "an unsafe id is replaced")
        }
    }

    @Test func readinessNamesWhatIsUnreachable() async throws {
        try await TestApp.run(readiness: [ReadinessCheck("database") {}]) { app in
            let ready = try await app.send(.get, "/readyz")
            #expect(ready.status == .ok && ready.json["status"] as? String == "ready")
        }
        struct Down: Error {}
        try await TestApp.run(readiness: [ReadinessCheck("database") {}, ReadinessCheck("redis") { throw Down() }]) { app in
            let down = try await app.send(.get, "/readyz")
            #expect(down.status == .serviceUnavailable && down.json["status"] as? String == "unavailable")
            let checks = try #require(down.json["checks"] as? [String: String])
            #expect(checks["database"] == "ok" && checks["redis"]?.hasPrefix("unreachable") == true)
            #expect(try await app.send(.get, "/healthz").status == .ok, "alive, just not ready")
        }
    }
}

/// The log handler: metadata kept as set and formatted only for lines that are written.
@Suite("Log lines")
struct LineLogHandlerTests {
    final class Lines: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String] = []
        func append(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    @Test func writesLevelLabelMetadataSourceAndMessageOnOneLine() {
        let lines = Lines()
        var logger = Logger(label: "souk") { label in
            LineLogHandler(label: label, level: .info, metadataProvider: .init { ["trace": "t1"] }, output: LineOutput(lines.append))
        }
        logger[metadataKey: "request_id"] = "abc123"
        logger[metadataKey: "vendor"] = "7"
        logger.debug("not written: below the level")
        logger.warning("cache unavailable", metadata: ["vendor": "8", "error": "timeout"])
        let written = lines.all
        try? #require(written.count == 1)
        let line = written[0]
        #expect(line.hasSuffix(" warning souk: error=timeout request_id=abc123 trace=t1 vendor=8 [SoukServerTests] cache unavailable\n"), "\(line)")
        #expect(line.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000 "#, options: .regularExpression) != nil, "\(line)")
        #expect(logger[metadataKey: "request_id"] == "abc123")
    }
}
