import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SoukCore

/// Builds the router: every route, with its middleware, in one place.
public func buildRouter(_ services: SoukServices, logRequests: Bool = false) -> Router<SoukRequestContext> {
    // HEAD is answered on every GET route: the GET's status and headers (Content-Length included), no body.
    let router = Router(context: SoukRequestContext.self, options: .autoGenerateHeadEndpoints)
    router.add(middleware: RequestIDMiddleware())
    if logRequests { router.add(middleware: LogRequestsMiddleware(.debug)) }
    router.add(middleware: HTTPMetricsMiddleware(metrics: SoukMetrics.http))
    router.add(middleware: SecurityHeadersMiddleware())
    router.add(middleware: ErrorMiddleware(pages: services.pages))
    router.add(middleware: SessionMiddleware(store: services.sessionStore, customers: services.customerTokens))

    OperationsController(metricsSources: services.metricsSources, readinessChecks: services.readinessChecks).addRoutes(to: router)
    Assets.addRoutes(to: router)
    APIController(services: services).addRoutes(to: router.group("api/v1"))
    CustomerController(services: services).addRoutes(to: router.group("api/v1"))
    FlashSaleController(services: services).addRoutes(to: router.group("api/v1"))
    CheckoutController(services: services).addRoutes(to: router.group("api/v1"))
    PaymentEventsController(services: services).addRoutes(to: router.group("api/v1"))
    PriceController(services: services).addRoutes(to: router.group("api/v1"))
    SearchController(services: services).addRoutes(to: router.group("api/v1"))
    ImageController(services: services).addRoutes(api: router.group("api/v1"), root: router.group())
    let pages = router.group().add(middleware: CSRFMiddleware(cookies: services.cookies))
    OpenAPIController(pages: services.pages).addRoutes(root: router, pages: pages)
    AnalyticsController(services: services).addRoutes(pages: pages, api: router.group("api/v1"))
    PagesController(services: services).addRoutes(to: pages)
    CustomerPagesController(services: services).addRoutes(to: pages)
    return router
}

/// Builds the Souk HTTP application; `services` (database clients, workers) run and shut down with it.
public func buildApplication(
    _ soukServices: SoukServices,
    host: String,
    port: Int,
    services: [any Service] = [],
    timeouts: HTTPTimeouts = HTTPTimeouts(),
    logger: Logger,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let serverName = "Souk"
    let logRequests = logger.logLevel <= .debug
    // Requests logged one by one go through the router alone, where they are logged.
    let lanes: [any FastLane] = logRequests ? [] : soukServices.fastLanes
    return Application(
        router: buildRouter(soukServices, logRequests: logRequests),
        // Per connection: the timeouts first (they see every request, the lanes' too), then the lanes.
        server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionTimeoutHandler(timeouts: timeouts)]
            + (lanes.isEmpty ? [] : [FastLaneHandler(lanes: lanes, metrics: SoukMetrics.http, serverName: serverName)]))),
        configuration: .init(address: .hostname(host, port: port), serverName: serverName),
        services: services,
        onServerRunning: onServerRunning,
        logger: logger
    )
}

/// Headers every response carries: no sniffing, no framing, no referrer leaks, same-origin assets only.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = SoukRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers.append(contentsOf: Self.headers)
        return response
    }

    static let headers: HTTPFields = [
        .xContentTypeOptions: "nosniff",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
        .contentSecurityPolicy: "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
    ]
}
