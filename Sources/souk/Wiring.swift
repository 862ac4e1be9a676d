import Foundation
import Logging
import ServiceLifecycle
import SoukCore
import SoukImages
import SoukRedis
import SoukServer
import SoukSQL
import SoukWorkers

/// The composition root: which backend serves each port, given the configuration.
enum Wiring {
    /// Services for the HTTP roles, and the long-running parts (Redis client, invalidation
    /// listener) that must run and shut down with the server.
    /// - Parameter withWorkers: also run the flash-sale persisters and the reconciler in this
    ///   process (`souk run`); `souk serve` leaves them to `souk worker`.
    static func services(_ configuration: SoukConfiguration, database: any SQLDatabase, withWorkers: Bool, logger: Logger) async throws -> (SoukServices, [any Service]) {
        let storage = SQLStorage(database: database)
        // The roles that run the saga and the feed call out, and the one that takes cards to an
        // outside provider; first in the group, so it shuts down after the services using it.
        let http = withWorkers || configuration.paymentsURL != nil ? try outboundHTTP(configuration, logger: logger) : nil
        var background: [any Service] = http.map { [$0] } ?? []
        var prices: any PriceHistory = storage
        let images = try VipsImageProcessor()
        let media = try FileMediaStore(directory: configuration.mediaDirectory)
        var jobs: any JobQueue = SQLJobQueue(database: database)
        var sessions: (any SessionStore)?
        var pageCache: (any PageCache)?
        var gate: (any FlashSaleGate)?
        var rateLimiter: (any RateLimiter)?
        var redisClient: RedisClient?
        let ttl = configuration.pageCacheTTL
        let notifier = CheckoutNotifier()
        var announce: @Sendable (CheckoutDecision) async -> Void = { notifier.resolve($0) }

        if let url = configuration.redisURL {
            let redis = try RedisClient(url: url, logger: logger)
            redisClient = redis
            background.append(redis)
            jobs = RedisJobQueue(redis: redis)
            let redisGate = RedisFlashSaleGate(redis: redis, store: storage)
            gate = redisGate
            // A sale this instance remembers as sold out is asked about again when holds expire.
            background.append(BackgroundTask(name: "sale-releases") { await redisGate.listenForReleases() })
            rateLimiter = RedisRateLimiter(redis: redis)
            // Checkout results are decided by whichever process runs the saga; every instance hears them.
            announce = { decision in
                notifier.resolve(decision)
                _ = try? await redis.publish(RedisKeys.checkoutResults, decision.encoded)
            }
            background.append(BackgroundTask(name: "checkout-results") {
                for await event in RedisSubscription.subscribe(redis, channels: [RedisKeys.checkoutResults]) {
                    // The decision itself, or (from an older worker) just the order id.
                    if case .message(_, let payload) = event {
                        if let decision = CheckoutDecision(encoded: payload) { notifier.resolve(decision) } else { notifier.resolve(orderID: payload) }
                    }
                }
            })
            if withWorkers {
                background += try workers(redis: redis, storage: storage, consumers: 1, configuration: configuration, http: http, logger: logger)
                background.append(try feedProducer(configuration, log: RedisPriceFeedLog(redis: redis), http: http, since: demoHistory, logger: logger))
            }
            prices = RedisPriceHistory(redis: redis, archive: storage)
            sessions = RedisSessionStore(redis: redis, vendors: storage)
            switch configuration.pageCache {
            case .auto:
                let twoLayer = TwoLayerPageCache(local: InProcessPageCache(timeToLive: ttl), remote: RedisPageCache(redis: redis, timeToLive: ttl))
                background.append(BackgroundTask(name: "store-invalidations") { await twoLayer.listenForInvalidations() })
                pageCache = twoLayer
            case .redis: pageCache = RedisPageCache(redis: redis, timeToLive: ttl)
            case .local: pageCache = InProcessPageCache(timeToLive: ttl)
            case .off: pageCache = nil
            }
        } else {
            pageCache = configuration.pageCache == .off ? nil : InProcessPageCache(timeToLive: ttl)
            // Embedded: the in-process gate writes admissions straight to the database; only the
            // closing of ended sales is left to do in the background.
            background.append(PeriodicReconciler(reconciler: FlashSaleReconciler(redis: nil, store: storage, logger: logger)))
            if withWorkers {
                background.append(try sagaRunner(storage: storage, configuration: configuration, http: http, logger: logger, onResult: announce))
                let log = SQLPriceFeedLog(database: database)
                background.append(try feedProducer(configuration, log: log, http: http, since: demoHistory, logger: logger))
                background.append(PriceFeedConsumer(log: log, histories: [storage], followers: storage, consumer: processName, logger: logger) { [pageCache] vendor in
                    try? await pageCache?.invalidate(vendorID: vendor)
                })
                background += jobWorkers(queue: jobs, storage: storage, images: images, media: media, logger: logger) { [pageCache] vendor in
                    try? await pageCache?.invalidate(vendorID: vendor)
                }
            }
        }

        let services = try await SoukServices(
            storage: storage, hasher: BcryptPasswordHasher(), sessions: sessions, pageCache: pageCache,
            flashSaleGate: gate, checkoutNotifier: notifier, prices: prices, images: images, media: media, jobs: jobs,
            verifyDeadline: configuration.verifyDeadline, cookies: configuration.cookies,
            rateLimiter: rateLimiter, rateLimits: configuration.rateLimits, behindProxy: configuration.behindProxy,
            metricsSources: redisClient.map { [RedisStreamMetrics(redis: $0, sales: storage)] } ?? [],
            readinessChecks: readiness(database: database, redis: redisClient),
            mailer: configuration.smtpURL.flatMap { SMTPMailer(url: $0, from: configuration.mailFrom) },
            payments: try paymentProvider(configuration, http: http, storage: storage),
            paymentEventSecret: configuration.paymentEventSecret, logger: logger
        )
        background.append(ViewFlusher(counter: services.views, store: storage))
        if configuration.redisURL == nil {
            // The in-process gate lives here, so its holds expire here (`souk worker` runs it with Redis).
            background.append(HoldExpirer(flashSales: services.flashSales, logger: logger))
        }
        return (services, background)
    }

    /// What `/readyz` checks: the database, and Redis when configured.
    static func readiness(database: any SQLDatabase, redis: RedisClient?) -> [ReadinessCheck] {
        var checks = [ReadinessCheck("database") { _ = try await database.read("SELECT 1") }]
        if let redis { checks.append(ReadinessCheck("redis") { _ = try await redis.ping() }) }
        return checks
    }

    /// `/healthz`, `/readyz` and `/metrics` on their own port, for processes without pages.
    static func operationsEndpoint(port: Int?, host: String, database: any SQLDatabase, redis: RedisClient?, sources: [any MetricsSource], logger: Logger) -> [any Service] {
        guard let port else { return [] }
        return [buildOperationsApplication(
            host: host, port: port, metricsSources: sources, readinessChecks: readiness(database: database, redis: redis), logger: logger)]
    }

    /// The worker role: persisters of admitted flash-sale orders and the periodic reconciler.
    static func workers(redis: RedisClient, storage: SQLStorage, consumers: Int, configuration: SoukConfiguration, http: OutboundHTTP?, logger: Logger) throws -> [any Service] {
        var services: [any Service] = (0..<max(1, consumers)).map {
            FlashSaleOrderPersister(redis: redis, store: storage, consumer: "\(processName)-\($0)", logger: logger)
        }
        services.append(PeriodicReconciler(reconciler: FlashSaleReconciler(redis: redis, store: storage, logger: logger)))
        services.append(try sagaRunner(storage: storage, configuration: configuration, http: http, logger: logger) { decision in
            _ = try? await redis.publish(RedisKeys.checkoutResults, decision.encoded)
        })
        let pages = RedisPageCache(redis: redis, timeToLive: configuration.pageCacheTTL)
        services.append(HoldExpirer(
            flashSales: FlashSales(store: storage, gate: RedisFlashSaleGate(redis: redis, store: storage)) { vendor in try? await pages.invalidate(vendorID: vendor) },
            logger: logger))
        services.append(PriceFeedConsumer(
            log: RedisPriceFeedLog(redis: redis), histories: [RedisPriceHistory(redis: redis), storage], followers: storage,
            consumer: "\(processName)-feed", logger: logger
        ) { vendor in try? await pages.invalidate(vendorID: vendor) })
        if let images = try? VipsImageProcessor(), let media = try? FileMediaStore(directory: configuration.mediaDirectory) {
            services += jobWorkers(queue: RedisJobQueue(redis: redis), storage: storage, images: images, media: media, logger: logger) { vendor in
                try? await pages.invalidate(vendorID: vendor)
            }
        }
        return services
    }

    /// The job runner with every handler Souk has, and the sweeper that re-queues lost thumbnail jobs.
    static func jobWorkers(
        queue: any JobQueue, storage: SQLStorage, images: any ImageProcessor, media: any MediaStore, logger: Logger,
        invalidate: @escaping @Sendable (Int64) async -> Void
    ) -> [any Service] {
        [
            JobRunner(
                queue: queue, handlers: [ThumbnailJob.kind: ThumbnailJob(images: images, media: media, products: storage, logger: logger, invalidate: invalidate)],
                worker: "\(processName)-jobs", logger: logger),
            ThumbnailSweeper(products: storage, queue: queue),
        ]
    }

    /// `souk run` starts a fresh feed six hours back, so the demo store's sparklines have a history.
    static let demoHistory: Duration = .seconds(6 * 3_600)

    /// The client for outside services, when the configuration names one (an http(s) verifier or
    /// price source); each role runs it as the first service of its group.
    static func outboundHTTP(_ configuration: SoukConfiguration, logger: Logger) throws -> OutboundHTTP? {
        let callsOut = switch configuration.feedSource {
        case .http: true
        default: configuration.verifierURL != nil || configuration.paymentsURL != nil
        }
        return callsOut ? try OutboundHTTP(trustedCertificates: configuration.caFile, logger: logger) : nil
    }

    /// The source `SOUK_FEED_SOURCE` names.
    static func priceSource(_ configuration: SoukConfiguration, http: OutboundHTTP?) throws -> any PriceSource {
        switch configuration.feedSource {
        case .simulated: return SimulatedMarket(items: configuration.feedItems)
        case .http(let url):
            guard let http else { throw PriceSourceConfigurationError(url: url.absoluteString) }
            return try HTTPPriceSource(url: url, http: http)
        case .file(let path): return FilePriceSource(path: path)
        }
    }

    static func feedProducer(_ configuration: SoukConfiguration, log: any PriceFeedLog, http: OutboundHTTP?, since: Duration? = nil, logger: Logger) throws -> PriceFeedProducer {
        PriceFeedProducer(source: try priceSource(configuration, http: http), log: log, interval: configuration.feedInterval, since: since, logger: logger)
    }

    static var processName: String { "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)" }

    static func sagaRunner(storage: SQLStorage, configuration: SoukConfiguration, http: OutboundHTTP?, logger: Logger, onResult: @escaping @Sendable (CheckoutDecision) async -> Void) throws -> CheckoutSagaRunner {
        let verifier: any UserVerifier
        if let url = configuration.verifierURL {
            guard let http else { throw VerifierConfigurationError() }
            verifier = try HTTPVerifier(url: url, http: http)
        } else {
            verifier = SimulatedVerifier(delay: configuration.verifierDelay)
        }
        return CheckoutSagaRunner(
            store: storage, verifier: verifier, payments: try paymentProvider(configuration, http: http, storage: storage), owner: processName,
            logger: logger, onResult: onResult)
    }

    /// The card provider `SOUK_PAYMENTS` names. The simulated one's late decisions reach the saga
    /// as the provider's events would, recorded once by their ids.
    static func paymentProvider(_ configuration: SoukConfiguration, http: OutboundHTTP?, storage: SQLStorage) throws -> any PaymentProvider {
        guard let url = configuration.paymentsURL else {
            return SimulatedPaymentProvider(onDecided: { key in
                _ = try? await storage.recordPaymentEvent(id: "evt_sim_\(key)", type: "payment_intent.amount_capturable_updated", checkoutID: key, now: Date())
            })
        }
        guard let http else { throw PaymentProviderUnavailable("no outbound HTTP client for \(url)") }
        return HTTPPaymentProvider(base: url, secretKey: configuration.paymentsKey ?? "", http: http)
    }
}

/// A loop that runs for the life of the service group and stops with it.
struct BackgroundTask: Service {
    let name: String
    let body: @Sendable () async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
    }
}
