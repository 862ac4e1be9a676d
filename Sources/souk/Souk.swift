import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SoukCore
import SoukImages
import SoukSQL
import SoukWorkers
import SoukRedis
import SoukServer

/// `souk`: every role of Souk in one binary. Without a subcommand it runs the embedded store.
@main
struct Souk: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "souk",
        abstract: "Souk: open a store in a minute, survive a flash sale.",
        subcommands: [Run.self, Serve.self, Worker.self, Feed.self, Jobs.self, Migrate.self, Seed.self, Reconcile.self, LoadTest.self, Customers.self, Scripts.self],
        defaultSubcommand: Run.self
    )
}

/// Flags shared by every subcommand; each overrides its `SOUK_*` environment variable.
struct SettingsOptions: ParsableArguments {
    @Option(help: "Address to bind (SOUK_HTTP_HOST).") var host: String?
    @Option(help: "HTTP port, 0 for any free one (SOUK_HTTP_PORT).") var port: String?
    @Option(help: "Directory for embedded data (SOUK_DATA_DIR).") var dataDir: String?
    @Option(help: "postgres://… or sqlite://… (SOUK_DATABASE_URL).") var databaseURL: String?
    @Option(help: "PostgreSQL connections per process (SOUK_DATABASE_CONNECTIONS).") var databaseConnections: String?
    @Option(help: "The longest one PostgreSQL statement may take, e.g. 30s (SOUK_DATABASE_TIMEOUT).") var databaseTimeout: String?
    @Option(help: "redis://… (SOUK_REDIS_URL).") var redisURL: String?
    @Option(help: "Log level (SOUK_LOG_LEVEL).") var logLevel: String?
    @Option(help: "auto, always or never (SOUK_SECURE_COOKIES).") var secureCookies: String?
    @Option(help: "auto, off, local or redis (SOUK_PAGE_CACHE).") var pageCache: String?
    @Option(help: "Store-page cache lifetime, e.g. 15m (SOUK_PAGE_CACHE_TTL).") var pageCacheTtl: String?
    @Option(help: "simulated or an http:// URL (SOUK_VERIFIER).") var verifier: String?
    @Option(help: "Simulated verifier delay range, e.g. 1s-100s (SOUK_VERIFIER_DELAY).") var verifierDelay: String?
    @Option(help: "Checkout verification deadline, e.g. 60s (SOUK_VERIFY_DEADLINE).") var verifyDeadline: String?
    @Option(help: "simulated, an http:// URL or file:///path.csv (SOUK_FEED_SOURCE).") var feedSource: String?
    @Option(help: "Price feed polling interval, e.g. 60s (SOUK_FEED_INTERVAL).") var feedInterval: String?
    @Option(help: "Items of the simulated market (SOUK_FEED_ITEMS).") var feedItems: String?
    @Option(help: "default, off or overrides such as login_ip=10/1m (SOUK_RATE_LIMITS).") var rateLimits: String?
    @Option(help: "yes when behind a proxy that sets X-Forwarded-For (SOUK_BEHIND_PROXY).") var behindProxy: String?
    @Option(help: "Close connections idle this long, e.g. 60s (SOUK_HTTP_IDLE_TIMEOUT).") var idleTimeout: String?
    @Option(help: "Drop a request body stalled this long, e.g. 30s (SOUK_HTTP_BODY_TIMEOUT).") var bodyTimeout: String?
    @Option(help: "The longest a request may take to arrive, e.g. 5m (SOUK_HTTP_READ_TIMEOUT).") var readTimeout: String?
    @Option(help: "smtp://host[:port] of the mail relay; mail is kept in the outbox without it (SOUK_SMTP_URL).") var smtpUrl: String?
    @Option(help: "The sender address of Souk's mail (SOUK_MAIL_FROM).") var mailFrom: String?
    @Option(help: "A PEM file of certificates trusted for outbound HTTPS besides the system's (SOUK_CA_FILE).") var caFile: String?
    @Option(help: "The card provider: simulated, or the https:// base URL of a Stripe-like API (SOUK_PAYMENTS).") var payments: String?
    @Option(help: "The card provider's secret key (SOUK_PAYMENTS_KEY; prefer the variable).") var paymentsKey: String?
    @Option(help: "The secret the card provider signs its events with (SOUK_PAYMENTS_WEBHOOK_SECRET; prefer the variable: a flag shows in ps).") var paymentsWebhookSecret: String?

    /// Loads the configuration or exits non-zero listing every invalid setting.
    func load() throws -> SoukConfiguration {
        var flags: [String: String] = [:]
        flags["SOUK_HTTP_HOST"] = host
        flags["SOUK_HTTP_PORT"] = port
        flags["SOUK_DATA_DIR"] = dataDir
        flags["SOUK_DATABASE_URL"] = databaseURL
        flags["SOUK_DATABASE_CONNECTIONS"] = databaseConnections
        flags["SOUK_DATABASE_TIMEOUT"] = databaseTimeout
        flags["SOUK_REDIS_URL"] = redisURL
        flags["SOUK_LOG_LEVEL"] = logLevel
        flags["SOUK_SECURE_COOKIES"] = secureCookies
        flags["SOUK_PAGE_CACHE"] = pageCache
        flags["SOUK_PAGE_CACHE_TTL"] = pageCacheTtl
        flags["SOUK_VERIFIER"] = verifier
        flags["SOUK_VERIFIER_DELAY"] = verifierDelay
        flags["SOUK_VERIFY_DEADLINE"] = verifyDeadline
        flags["SOUK_FEED_SOURCE"] = feedSource
        flags["SOUK_FEED_INTERVAL"] = feedInterval
        flags["SOUK_FEED_ITEMS"] = feedItems
        flags["SOUK_RATE_LIMITS"] = rateLimits
        flags["SOUK_BEHIND_PROXY"] = behindProxy
        flags["SOUK_HTTP_IDLE_TIMEOUT"] = idleTimeout
        flags["SOUK_HTTP_BODY_TIMEOUT"] = bodyTimeout
        flags["SOUK_HTTP_READ_TIMEOUT"] = readTimeout
        flags["SOUK_SMTP_URL"] = smtpUrl
        flags["SOUK_MAIL_FROM"] = mailFrom
        flags["SOUK_CA_FILE"] = caFile
        flags["SOUK_PAYMENTS_WEBHOOK_SECRET"] = paymentsWebhookSecret
        flags["SOUK_PAYMENTS"] = payments
        flags["SOUK_PAYMENTS_KEY"] = paymentsKey
        do {
            let configuration = try SoukConfiguration.load(environment: ProcessInfo.processInfo.environment, flags: flags)
            LogSetup.bootstrap(level: configuration.logLevel)
            SoukMetrics.bootstrap()
            return configuration
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(2)
        }
    }
}

/// `souk run`: embedded mode. Migrates, seeds the demo store on first start, serves, prints the URLs.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run everything in one process (embedded default).")
    @OptionGroup var settings: SettingsOptions
    @Flag(help: "Create the demo store (demo / demo1234, a known password) even when serving beyond this machine.") var demo = false

    /// Whether the server is reachable from this machine only: there, the demo store's known
    /// password harms nobody.
    static func isLoopback(_ host: String) -> Bool {
        ["127.0.0.1", "::1", "localhost"].contains(host.lowercased()) || host.hasPrefix("127.")
    }

    func run() async throws {
        let configuration = try settings.load()
        let logger = Logger(label: "souk")
        let seedDemo = demo || Self.isLoopback(configuration.host)
        try await Backend.with(configuration, logger: logger) { database in
            try await Migrator(database: database).migrate()
            let (services, background) = try await Wiring.services(configuration, database: database, withWorkers: true, logger: logger)
            if seedDemo, try await DemoData.seed(accounts: services.accounts, customers: services.customerAccounts, storage: services.storage, wallets: services.checkouts.store) {
                logger.warning("seeded the demo store, whose password is public; do not use it in production",
                               metadata: ["souk.vendor": "\(DemoData.username)"])
            }
            let hasDemo = try await services.storage.vendor(username: DemoData.username) != nil
            try await Serve.serve(services, background: background, configuration: configuration, logger: logger) { base in
                announce(hasDemo ? """
                    Souk is running.
                      Store:     \(base)/s/\(DemoData.username)
                      Dashboard: \(base)/dashboard  (log in as \(DemoData.username) / \(DemoData.password))
                      Health:    \(base)/healthz
                    """ : """
                    Souk is running.
                      Sign up:   \(base)/signup
                      Health:    \(base)/healthz
                    (No demo store: it is created only on a loopback address or with --demo.)
                    """)
            }
        }
    }
}

/// `souk serve`: the HTTP role only; the schema must already be migrated.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve HTTP: store pages, dashboard and the JSON API.")
    @OptionGroup var settings: SettingsOptions

    func run() async throws {
        let configuration = try settings.load()
        let logger = Logger(label: "souk")
        try await Backend.with(configuration, logger: logger) { database in
            try await Migrator(database: database).verifyUpToDate()
            let (services, background) = try await Wiring.services(configuration, database: database, withWorkers: false, logger: logger)
            try await Self.serve(services, background: background, configuration: configuration, logger: logger) { base in
                announce("Souk is serving on \(base)")
            }
        }
    }

    static func serve(_ services: SoukServices, background: [any Service], configuration: SoukConfiguration, logger: Logger, announce: @escaping @Sendable (String) -> Void) async throws {
        let host = configuration.host
        let app = buildApplication(services, host: host, port: configuration.port, services: background, timeouts: configuration.timeouts, logger: logger) { channel in
            let port = channel.localAddress?.port ?? configuration.port
            let shownHost = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
            announce("http://\(shownHost.contains(":") ? "[\(shownHost)]" : shownHost):\(port)")
        }
        try await app.runService()
    }
}

/// `souk worker`: persists admitted flash-sale orders from Redis and runs the reconciler.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the background workers (flash-sale order persisters, reconciler).")
    @OptionGroup var settings: SettingsOptions
    @Option(help: "Persisting consumers in this process.") var consumers = 2
    @Option(help: "Serve /healthz, /readyz and /metrics on this port (on SOUK_HTTP_HOST).") var metricsPort: Int?

    func run() async throws {
        let configuration = try settings.load()
        let logger = Logger(label: "souk")
        let (consumers, metricsPort) = (consumers, metricsPort)
        try await Backend.with(configuration, logger: logger) { database in
            try await Migrator(database: database).verifyUpToDate()
            let storage = SQLStorage(database: database)
            let http = try Wiring.outboundHTTP(configuration, logger: logger)
            var services: [any Service] = http.map { [$0] } ?? []
            if let url = configuration.redisURL {
                let redis = try RedisClient(url: url, logger: logger)
                services += [redis] + (try Wiring.workers(redis: redis, storage: storage, consumers: consumers, configuration: configuration, http: http, logger: logger))
                services += Wiring.operationsEndpoint(
                    port: metricsPort, host: configuration.host, database: database, redis: redis,
                    sources: [RedisStreamMetrics(redis: redis, sales: storage), JobQueueMetrics(queue: RedisJobQueue(redis: redis))], logger: logger)
            } else {
                let log = SQLPriceFeedLog(database: database)
                let media = try FileMediaStore(directory: configuration.mediaDirectory)
                services += Wiring.jobWorkers(queue: SQLJobQueue(database: database), storage: storage, images: try VipsImageProcessor(), media: media, logger: logger) { _ in }
                services += Wiring.operationsEndpoint(
                    port: metricsPort, host: configuration.host, database: database, redis: nil,
                    sources: [JobQueueMetrics(queue: SQLJobQueue(database: database))], logger: logger)
                services += [
                    PeriodicReconciler(reconciler: FlashSaleReconciler(redis: nil, store: storage, logger: logger)),
                    try Wiring.sagaRunner(storage: storage, configuration: configuration, http: http, logger: logger) { _ in },
                    PriceFeedConsumer(log: log, histories: [storage], followers: storage, consumer: Wiring.processName, logger: logger) { _ in },
                ]
            }
            announce("Souk worker running (\(configuration.redisURL == nil ? "embedded: closing ended sales" : "\(consumers) persisters and the reconciler"))")
            let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        }
    }
}

/// `souk feed`: the price-feed producer. One per source; it resumes from its checkpoint.
struct Feed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Poll the price source every interval and publish its ticks.")
    @OptionGroup var settings: SettingsOptions
    @Option(help: "On the very first start, begin this long ago (e.g. 2h) and backfill up to now.") var since: String?

    func run() async throws {
        let configuration = try settings.load()
        let logger = Logger(label: "souk")
        var since: Duration?
        if let raw = self.since {
            guard let parsed = SoukConfiguration.duration(raw) else {
                FileHandle.standardError.write(Data("--since: \"\(raw)\" is not a duration such as 2h\n".utf8))
                throw ExitCode(2)
            }
            since = parsed
        }
        let start = since
        try await Backend.with(configuration, logger: logger) { database in
            try await Migrator(database: database).verifyUpToDate()
            let http = try Wiring.outboundHTTP(configuration, logger: logger)
            var services: [any Service] = http.map { [$0] } ?? []
            let log: any PriceFeedLog
            if let url = configuration.redisURL {
                let redis = try RedisClient(url: url, logger: logger)
                services.append(redis)
                log = RedisPriceFeedLog(redis: redis)
            } else {
                log = SQLPriceFeedLog(database: database)
            }
            let producer = try Wiring.feedProducer(configuration, log: log, http: http, since: start, logger: logger)
            services.append(producer)
            announce("Souk feed running (\(producer.source.name) every \(configuration.feedInterval))")
            let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        }
    }
}

/// `souk jobs`: the background job queue — counts and dead jobs, retry or purge them.
struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the job queue's dead jobs, retry or purge them.",
        discussion: "souk jobs list | souk jobs retry ID | souk jobs retry --all | souk jobs purge [ID]")
    @OptionGroup var settings: SettingsOptions
    @Argument(help: "list, retry or purge") var action: String = "list"
    @Argument(help: "A dead job's id (retry, purge).") var id: String?
    @Flag(help: "With retry: every dead job.") var all = false

    func run() async throws {
        let configuration = try settings.load()
        let logger = Logger(label: "souk")
        let (action, id, all) = (action, id, all)
        guard ["list", "retry", "purge"].contains(action), action != "retry" || id != nil || all else {
            FileHandle.standardError.write(Data("usage: souk jobs list | retry ID | retry --all | purge [ID]\n".utf8))
            throw ExitCode(2)
        }
        try await Backend.with(configuration, logger: logger) { database in
            let redis = try configuration.redisURL.map { try RedisClient(url: $0, logger: logger) }
            defer { redis?.shutdown() }
            let queue: any JobQueue = redis.map { RedisJobQueue(redis: $0) } ?? SQLJobQueue(database: database)
            switch action {
            case "retry":
                let ids = all ? try await queue.deadJobs(limit: 100_000).map(\.id) : [id!]
                var retried = 0
                for id in ids where try await queue.retry(id: id) { retried += 1 }
                announce("Retried \(retried) job\(retried == 1 ? "" : "s").")
                if !all && retried == 0 { throw ExitCode(1) }
            case "purge":
                let purged = try await queue.purge(id: id)
                announce("Purged \(purged) dead job\(purged == 1 ? "" : "s").")
            default:
                let counts = try await queue.counts()
                announce("queued \(counts.queued), running \(counts.running), dead \(counts.dead)")
                let formatter = ISO8601DateFormatter()
                for job in try await queue.deadJobs(limit: 100) {
                    announce("dead  \(job.id)  \(job.kind)  attempts \(job.attempts)  \(formatter.string(from: job.failedAt))  \(job.reason)")
                }
            }
        }
    }
}

/// `souk reconcile`: compares a sale's Redis counters, stream and database, and repairs with --repair.
struct Reconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check flash sales across Redis and the database.")
    @OptionGroup var settings: SettingsOptions
    @Option(help: "The sale to check (default: every open sale).") var sale: Int64?
    @Flag(help: "Repair what can be repaired safely.") var repair = false

    func run() async throws {
        let configuration = try settings.load()
        let logger = Logger(label: "souk")
        let (saleID, repair) = (sale, repair)
        try await Backend.with(configuration, logger: logger) { database in
            let storage = SQLStorage(database: database)
            let redis = try configuration.redisURL.map { try RedisClient(url: $0, logger: logger) }
            defer { redis?.shutdown() }
            let reconciler = FlashSaleReconciler(redis: redis, store: storage, logger: logger)
            let reports = if let saleID {
                [try await reconciler.reconcile(saleID: saleID, repair: repair)]
            } else {
                try await reconciler.reconcileAll(repair: repair)
            }
            for report in reports { announce(report.description) }
            if reports.isEmpty { announce("No open sales.") }
            if !repair, reports.contains(where: { !$0.isConsistent }) { throw ExitCode(1) }
        }
    }
}

/// `souk scripts`: the Lua that Souk runs inside Redis, for auditing and for redis-benchmark.
struct Scripts: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the Lua scripts Souk runs in Redis.")
    @Flag(help: "Only the flash-sale admission script's source.") var admission = false

    func run() {
        if admission {
            print(RedisFlashSaleGate.admitScript.source)
            return
        }
        for (name, script) in [("flash-sale admission", RedisFlashSaleGate.admitScript), ("flash-sale preparation", RedisFlashSaleGate.prepareScript)] {
            print("-- \(name) (SHA-1 \(script.sha1))\n\(script.source)\n")
        }
    }
}

/// Prints a line for people and for scripts that wait for it, unbuffered.
func announce(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// `souk migrate`: applies pending schema migrations (or lists them with --dry-run).
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply schema migrations.")
    @OptionGroup var settings: SettingsOptions
    @Flag(help: "List pending migrations without applying them.") var dryRun = false

    func run() async throws {
        let configuration = try settings.load()
        let logger = Logger(label: "souk")
        let dryRun = dryRun
        try await Backend.with(configuration, logger: logger) { database in
            let migrator = Migrator(database: database)
            if dryRun {
                let pending = try await migrator.pending()
                print(pending.isEmpty ? "No pending migrations." : pending.map { "pending: \($0.version) \($0.name)" }.joined(separator: "\n"))
            } else {
                let applied = try await migrator.migrate()
                print(applied.isEmpty ? "Already up to date." : applied.map { "applied: \($0.version) \($0.name)" }.joined(separator: "\n"))
            }
        }
    }
}

/// `souk seed`: the demo vendor and products, if not there yet.
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the demo store: vendor demo with the public password demo1234, and credited demo buyers.",
        discussion: "Anyone who reads this can log in as the demo vendor: seed only a machine for trying Souk out, never production.")
    @OptionGroup var settings: SettingsOptions

    func run() async throws {
        let configuration = try settings.load()
        let logger = Logger(label: "souk")
        try await Backend.with(configuration, logger: logger) { database in
            try await Migrator(database: database).verifyUpToDate()
            let services = try await SoukServices(storage: SQLStorage(database: database), hasher: BcryptPasswordHasher())
            let seeded = try await DemoData.seed(accounts: services.accounts, customers: services.customerAccounts, storage: services.storage, wallets: services.checkouts.store)
            print(seeded
                ? "Seeded the demo store: /s/\(DemoData.username). Its login is \(DemoData.username) / \(DemoData.password), a password anyone can read: never seed production."
                : "The demo store already exists.")
        }
    }
}
