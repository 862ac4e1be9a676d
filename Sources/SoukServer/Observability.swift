import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import SoukCore
import Synchronization

/// Prometheus exposition of this process: HTTP requests per route (``HTTPMetrics``), everything
/// recorded through swift-metrics (cache lookups, saga outcomes, job retries…), and gauges read at
/// scrape time.
public enum SoukMetrics {
    public static let registry = PrometheusCollectorRegistry()
    /// Requests per route: recorded by ``HTTPMetricsMiddleware`` without swift-metrics, for speed.
    static let http = HTTPMetrics()
    private static let bootstrapped = Mutex(false)

    /// Installs the Prometheus backend for swift-metrics, once per process (later calls do nothing).
    public static func bootstrap() {
        bootstrapped.withLock { done in
            guard !done else { return }
            done = true
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.nameAndLabelSanitizer = { name, labels in (sanitized(name), labels.map { (sanitized($0.0), $0.1) }) }
            factory.defaultDurationHistogramBuckets = [
                .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
            ]
            MetricsSystem.bootstrap(factory)
        }
    }

    /// Prometheus names allow `[a-zA-Z0-9_:]`; swift-metrics labels such as `http.server.request.duration` become `http_server_request_duration`.
    static func sanitized(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") ? $0 : "_" })
    }

    /// The text exposition: scrape-time gauges first set from `sources`, then everything recorded.
    static func exposition(sources: [any MetricsSource], logger: Logger) async -> [UInt8] {
        for source in sources {
            do {
                for sample in try await source.samples() {
                    Gauge(label: sample.name, dimensions: sample.labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }).record(sample.value)
                }
            } catch {
                logger.warning("a metrics source failed", metadata: ["source": "\(type(of: source))", "error": "\(error)"])
            }
        }
        var buffer = Array(http.exposition().utf8)
        registry.emit(into: &buffer)
        return buffer
    }
}

/// Something `/readyz` must reach before the instance takes traffic (the database, Redis).
public struct ReadinessCheck: Sendable {
    public let name: String
    public let check: @Sendable () async throws -> Void

    public init(_ name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }
}

/// Gives every request an id (the client's or the proxy's `X-Request-Id` when it is sane, else a
/// new one), puts it in the request's log metadata and answers with it, so that one id finds a
/// request in every log line, including those of the jobs it queued.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = SoukRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers[.xRequestID].flatMap(Self.accepted) ?? Self.generate()
        context.requestID = id
        context.logger[metadataKey: "request_id"] = .string(id)
        var response = try await next(request, context)
        response.headers[.xRequestID] = id
        return response
    }

    static func accepted(_ id: String) -> String? {
        guard (8...64).contains(id.utf8.count),
              id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        else { return nil }
        return id
    }

    /// A random prefix per process and a counter: unique without a system call per request.
    static func generate() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        var suffix = String(UInt64(truncatingIfNeeded: n) & 0xFF_FFFF_FFFF, radix: 36)  // up to 8 base-36 digits
        suffix = String(repeating: "0", count: max(0, 8 - suffix.count)) + suffix
        return processPrefix + suffix
    }

    private static let counter = Atomic<Int>(0)
    private static let processPrefix: String = {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<8).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }, as: UTF8.self)
    }()
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
}

/// `/healthz` (the process answers), `/readyz` (its database and Redis answer too) and `/metrics`.
struct OperationsController {
    let metricsSources: [any MetricsSource]
    let readinessChecks: [ReadinessCheck]

    func addRoutes(to router: Router<SoukRequestContext>) {
        router.get("healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        router.get("readyz", use: ready)
        router.get("metrics") { _, context in
            let text = await SoukMetrics.exposition(sources: metricsSources, logger: context.logger)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
    }

    struct Readiness: Encodable {
        let status: String
        let checks: [String: String]
    }

    @Sendable func ready(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let results = await withTaskGroup(of: (String, String).self) { group in
            for check in readinessChecks {
                group.addTask {
                    do {
                        try await Self.within(.seconds(2)) { try await check.check() }
                        return (check.name, "ok")
                    } catch {
                        return (check.name, "unreachable: \(String(describing: error).prefix(200))")
                    }
                }
            }
            return await group.reduce(into: [String: String]()) { $0[$1.0] = $1.1 }
        }
        let ready = results.values.allSatisfy { $0 == "ok" }
        if !ready { context.logger.warning("not ready", metadata: ["checks": "\(results)"]) }
        return try JSONResponse.make(Readiness(status: ready ? "ready" : "unavailable", checks: results), status: ready ? .ok : .serviceUnavailable)
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "no answer within the time limit" }
    }

    static func within(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw TimedOut()
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// The operations endpoints alone (`/healthz`, `/readyz`, `/metrics`), for processes that serve
/// no pages: `souk worker` and `souk feed` with `--metrics-port`.
public func buildOperationsApplication(
    host: String, port: Int, metricsSources: [any MetricsSource], readinessChecks: [ReadinessCheck], logger: Logger
) -> some ApplicationProtocol {
    let router = Router(context: SoukRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    OperationsController(metricsSources: metricsSources, readinessChecks: readinessChecks).addRoutes(to: router)
    return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "Souk"), logger: logger)
}
