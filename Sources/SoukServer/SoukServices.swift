import Foundation
import Logging
import NIOConcurrencyHelpers
import SoukCore

/// What the HTTP layer needs, built once by the composition root and shared by every controller.
public struct SoukServices: Sendable {
    public let storage: any SoukStorage
    public let accounts: VendorAccounts
    /// Customers' sign-up and logins, and their sessions as signed tokens.
    public let customerAccounts: CustomerAccounts
    public let customerTokens: CustomerTokens
    /// Email verification codes, sent through the mailer.
    let emailVerification: EmailVerification
    let sessionStore: any SessionStore
    let sessions: SessionTokens
    let cookies: CookiePolicy
    let pages: PageRenderer
    let storefront: StorefrontCache
    public let flashSales: FlashSales
    public let checkouts: Checkouts
    /// Checks the card provider's events (`SOUK_PAYMENTS_WEBHOOK_SECRET`); nil when none is set,
    /// and the events address is not found.
    let paymentEventSignature: PaymentEventSignature?
    /// Price lists of feed items (Redis lists with the SQL history behind, or the SQL history).
    public let prices: (any PriceHistory)?
    /// Full-text product search (the SQL storage's own index).
    public let search: (any ProductSearch)?
    let suggestions: Suggestions?
    /// Image checks and thumbnails, where images are kept, and the job queue; nil disables uploads.
    public let images: (any ImageProcessor)?
    public let media: (any MediaStore)?
    public let jobs: (any JobQueue)?
    /// Store-page views counted in memory until the ``ViewFlusher`` writes them; the analytics source.
    public let views = ViewCounter()
    public let analytics: (any AnalyticsStore)?
    let rateGuard: RateGuard
    /// Gauges read when `/metrics` is scraped, and what `/readyz` must reach.
    let metricsSources: [any MetricsSource]
    let readinessChecks: [ReadinessCheck]
    private let knownVendors = NIOLockedValueBox<[String: Vendor]>([:])

    /// - Parameters:
    ///   - storage: the database-backed stores.
    ///   - sessions: where login sessions live (Redis when configured); the storage by default.
    ///   - pageCache: the store-page cache, or nil to render every time. Changes made through this
    ///     instance invalidate it.
    ///   - rateLimiter: where rate limits are counted (Redis when configured); in-process by default.
    ///   - mailer: how mail goes out (SMTP when configured); the storage's outbox by default.
    public init(
        storage: any SoukStorage, hasher: any PasswordHasher, sessions: (any SessionStore)? = nil,
        pageCache: (any PageCache)? = nil, flashSaleGate: (any FlashSaleGate)? = nil, checkoutNotifier: CheckoutNotifier = CheckoutNotifier(),
        prices: (any PriceHistory)? = nil, images: (any ImageProcessor)? = nil, media: (any MediaStore)? = nil, jobs: (any JobQueue)? = nil,
        verifyDeadline: Duration = .seconds(60), sessionLifetime: Duration = .seconds(14 * 24 * 3600),
        cookies: CookiePolicy = .auto, rateLimiter: (any RateLimiter)? = nil, rateLimits: RateLimitPolicy = RateLimitPolicy(),
        behindProxy: Bool = false, metricsSources: [any MetricsSource] = [], readinessChecks: [ReadinessCheck] = [],
        mailer: (any Mailer)? = nil, payments: any PaymentProvider = SimulatedPaymentProvider(), paymentEventSecret: String? = nil,
        logger: Logger = Logger(label: "souk")
    ) async throws {
        self.paymentEventSignature = paymentEventSecret.map(PaymentEventSignature.init(secret:))
        self.readinessChecks = readinessChecks
        self.rateGuard = RateGuard(limiter: rateLimiter ?? InProcessRateLimiter(), policy: rateLimits, behindProxy: behindProxy, logger: logger)
        self.storage = pageCache.map { InvalidatingStorage(base: storage, cache: $0, logger: logger) } ?? storage
        self.accounts = try await VendorAccounts(vendors: storage, hasher: hasher)
        self.sessionStore = sessions ?? storage
        self.sessions = SessionTokens(store: sessions ?? storage, lifetime: sessionLifetime)
        self.customerAccounts = try await CustomerAccounts(customers: storage, hasher: hasher)
        self.customerTokens = try await CustomerTokens(store: storage, lifetime: sessionLifetime)
        self.emailVerification = EmailVerification(store: storage, mailer: mailer ?? OutboxMailer(store: storage), usesOutbox: mailer == nil)
        self.cookies = cookies
        self.pages = try PageRenderer()
        self.storefront = StorefrontCache(cache: pageCache)
        guard let flashSaleStore = storage as? any FlashSaleStore else {
            throw SoukError.forbidden("the storage does not keep flash sales")
        }
        let gate = flashSaleGate ?? InProcessFlashSaleGate(store: flashSaleStore, limiter: rateGuard.limiter)
        self.flashSales = FlashSales(store: flashSaleStore, gate: gate) { vendorID in
            try? await pageCache?.invalidate(vendorID: vendorID)
        }
        guard let checkoutStore = storage as? any CheckoutStore else {
            throw SoukError.forbidden("the storage does not keep checkouts")
        }
        self.checkouts = Checkouts(store: checkoutStore, notifier: checkoutNotifier, deadline: verifyDeadline, payments: payments)
        self.prices = prices ?? (storage as? any PriceHistory)
        self.search = storage as? any ProductSearch
        self.suggestions = search.map { Suggestions(search: $0) }
        self.images = images
        self.media = media
        self.jobs = jobs
        self.analytics = storage as? any AnalyticsStore
        self.metricsSources = [FlashSaleMetrics(flashSales: flashSales)] + (jobs.map { [JobQueueMetrics(queue: $0)] } ?? []) + metricsSources
    }

    /// Refuses a feed item no price feed has quoted (a typo such as `NOPE-1` would make a product
    /// follow nothing, silently); `current`, what the product already follows, is always kept.
    func requireQuoted(_ change: ProductChange, current: String? = nil) async throws {
        guard let item = change.priceFeedItem, !item.isEmpty, item != current else { return }
        guard let prices, try await prices.latest(item: item) != nil else {
            throw SoukError.validationFailed([FieldError(field: "price_feed_item", message: "is not quoted by the price feed (\(item) has no prices yet)")])
        }
    }

    /// Whether the session this request came in is still open (not logged out, not expired), for
    /// live streams that outlast their request; nil for a request without a session.
    func sessionIsOpen(_ context: SoukRequestContext) -> (@Sendable () async throws -> Bool)? {
        guard let hash = context.sessionTokenHash, let vendorID = context.vendor?.id else { return nil }
        let store = sessionStore
        return { try await store.vendor(sessionTokenHash: hash, now: Date())?.id == vendorID }
    }

    /// The vendor whose public store the path names, or 404. Vendors are never renamed or
    /// removed, so a found vendor is remembered and hot store pages cost no database read.
    func publicVendor(_ context: SoukRequestContext) async throws -> Vendor {
        guard let username = context.parameters.get("username"), username.count <= 64 else { throw SoukError.notFound("Store") }
        let normalized = username.lowercased()
        if let known = knownVendor(normalized) { return known }
        guard let vendor = try await storage.vendor(username: normalized) else { throw SoukError.notFound("Store") }
        knownVendors.withLockedValue { known in
            if known.count >= 100_000 { known.removeAll(keepingCapacity: true) }
            known[normalized] = vendor
        }
        return vendor
    }

    /// A vendor already looked up by its (lowercased) username, without suspending.
    func knownVendor(_ username: String) -> Vendor? {
        knownVendors.withLockedValue { $0[username] }
    }

    /// What the event loops answer before the router: attempts on sold-out sales, attempts decided
    /// by a gate that can decide on an event loop, and the store page from the in-process cache or
    /// from one Redis read on the event loop (the two-layer cache stays with the router).
    var fastLanes: [any FastLane] {
        var lanes: [any FastLane] = [SoldOutLane(flashSales: flashSales, customers: customerTokens)]
        if let gate = flashSales.gate as? any EventLoopAdmissionGate {
            lanes.append(AdmissionLane(flashSales: flashSales, gate: gate, customers: customerTokens, rateGuard: rateGuard))
        }
        if let local = storefront.cache as? InProcessPageCache {
            lanes.append(StorePageLane(services: self, source: .local(local)))
        } else if let remote = storefront.cache as? any EventLoopPageCache {
            lanes.append(StorePageLane(services: self, source: .eventLoop(remote)))
        }
        return lanes
    }
}
