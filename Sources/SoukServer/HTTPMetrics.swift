import Hummingbird
import Synchronization

/// Request counts (by status class) and latency histograms per route and method, recorded with a
/// few atomic additions per request. Hummingbird's `MetricsMiddleware` through swift-prometheus
/// took a third of the cached store page's throughput (label hashing and a lock per metric per
/// request); this is the part of `/metrics` that every request pays for.
final class HTTPMetrics: Sendable {
    /// Upper bounds of the latency buckets, in seconds.
    static let bounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]
    private static let boundNanoseconds: [UInt64] = bounds.map { UInt64($0 * 1e9) }

    final class Cell: Sendable {
        let value = Atomic<Int>(0)
        func add(_ amount: Int = 1) { value.wrappingAdd(amount, ordering: .relaxed) }
        var current: Int { value.load(ordering: .relaxed) }
    }

    /// One route and method.
    final class Route: Sendable {
        let method: String
        let path: String
        /// 1xx…5xx at index 1…5.
        let statuses = (0..<6).map { _ in Cell() }
        /// Per bucket (not cumulative), the last one for slower than every bound.
        let buckets = (0...HTTPMetrics.bounds.count).map { _ in Cell() }
        let nanoseconds = Cell()

        init(method: String, path: String) {
            self.method = method
            self.path = path
        }
    }

    private struct Key: Hashable {
        let method: HTTPRequest.Method
        let path: String
    }

    private let routes = Mutex<[Key: Route]>([:])

    func record(method: HTTPRequest.Method, path: String?, status: Int, nanoseconds: UInt64) {
        let key = Key(method: method, path: path ?? "unmatched")
        let route = routes.withLock { routes in
            if let route = routes[key] { return route }
            let route = Route(method: method.rawValue, path: key.path)
            routes[key] = route
            return route
        }
        route.statuses[min(5, max(1, status / 100))].add()
        var bucket = 0
        while bucket < Self.boundNanoseconds.count && nanoseconds > Self.boundNanoseconds[bucket] { bucket += 1 }
        route.buckets[bucket].add()
        route.nanoseconds.add(Int(truncatingIfNeeded: nanoseconds))
    }

    /// The Prometheus text exposition of what was recorded.
    func exposition() -> String {
        let routes = self.routes.withLock { Array($0.values) }.sorted { ($0.path, $0.method) < ($1.path, $1.method) }
        var text = "# HELP souk_http_requests_total HTTP requests answered, by route pattern, method and status class.\n"
        text += "# TYPE souk_http_requests_total counter\n"
        for route in routes {
            for (index, cell) in route.statuses.enumerated() where index > 0 && cell.current > 0 {
                text += "souk_http_requests_total{route=\"\(Self.escaped(route.path))\",method=\"\(route.method)\",code=\"\(index)xx\"} \(cell.current)\n"
            }
        }
        text += "# HELP souk_http_request_duration_seconds Time from the request's arrival to its response's head, by route pattern and method.\n"
        text += "# TYPE souk_http_request_duration_seconds histogram\n"
        for route in routes {
            let labels = "route=\"\(Self.escaped(route.path))\",method=\"\(route.method)\""
            var cumulative = 0
            for (index, bound) in Self.bounds.enumerated() {
                cumulative += route.buckets[index].current
                text += "souk_http_request_duration_seconds_bucket{\(labels),le=\"\(bound)\"} \(cumulative)\n"
            }
            cumulative += route.buckets[Self.bounds.count].current
            text += "souk_http_request_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(cumulative)\n"
            text += "souk_http_request_duration_seconds_sum{\(labels)} \(Double(route.nanoseconds.current) / 1e9)\n"
            text += "souk_http_request_duration_seconds_count{\(labels)} \(cumulative)\n"
        }
        return text
    }

    static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// Times every request and counts it under its route pattern (`/s/{username}`, not each URL).
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = SoukRequestContext
    let metrics: HTTPMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            metrics.record(method: request.method, path: context.endpointPath, status: response.status.code, nanoseconds: Self.elapsed(since: start))
            return response
        } catch {
            metrics.record(method: request.method, path: context.endpointPath, status: 500, nanoseconds: Self.elapsed(since: start))
            throw error
        }
    }

    static func elapsed(since start: ContinuousClock.Instant) -> UInt64 {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds)) / 1_000_000_000
    }
}
