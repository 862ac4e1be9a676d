import Foundation
import Logging
import SoukCore

/// Souk's settings, from flags, then `SOUK_*` environment variables, then defaults.
/// Every invalid setting is reported at once, by name.
public struct SoukConfiguration: Sendable, Equatable {
    public enum Database: Sendable, Equatable {
        case sqlite(path: String)
        case postgres(url: String)
    }

    public var host: String
    public var port: Int
    public var dataDirectory: String
    public var database: Database
    /// PostgreSQL connections per process; a quarter of them (at least one) are kept for reads.
    public var databaseConnections = 20
    /// The longest PostgreSQL may take over one statement (the server cancels it; a client that hears
    /// nothing closes the connection a little later): no request or worker waits forever.
    public var databaseTimeout: Duration = .seconds(30)
    public var redisURL: String?
    public var logLevel: Logger.Level
    public var cookies: CookiePolicy
    public var pageCache: PageCacheMode
    public var pageCacheTTL: Duration
    /// `nil` for the simulated verifier, else its http:// or https:// URL.
    public var verifierURL: URL?
    public var verifierDelay: ClosedRange<Duration>
    public var verifyDeadline: Duration
    /// The secret the card provider signs its events with; nil: no events are taken.
    public var paymentEventSecret: String?
    /// `nil` for the simulated card provider, else the base URL of a Stripe-like one, and its key.
    public var paymentsURL: URL?
    public var paymentsKey: String?
    public var feedSource: FeedSource
    /// Uploaded images and thumbnails: `media` under the data directory.
    public var mediaDirectory: URL { URL(fileURLWithPath: dataDirectory).appendingPathComponent("media") }
    public var feedInterval: Duration
    public var feedItems: Int
    public var rateLimits: RateLimitPolicy = RateLimitPolicy()
    /// Whether the client's address is the last hop of `X-Forwarded-For` (behind nginx) rather
    /// than the connection's peer.
    public var behindProxy = false
    public var timeouts = HTTPTimeouts()
    /// The SMTP relay mail goes to (`smtp://host[:port]`); nil keeps mail in the outbox.
    public var smtpURL: String?
    /// The sender of Souk's mail.
    public var mailFrom = "no-reply@souk.localhost"
    /// A PEM file of certificates trusted for outbound HTTPS besides the system's (a private CA).
    public var caFile: String?

    /// Where `souk feed` gets prices.
    public enum FeedSource: Sendable, Equatable {
        case simulated
        case http(URL)
        case file(path: String)
    }

    /// Where store pages are cached.
    public enum PageCacheMode: String, Sendable, Equatable, CaseIterable {
        /// In-process alone without Redis; in-process in front of Redis with it.
        case auto
        /// No caching: every store page is rendered from the database.
        case off
        /// In-process only (with several instances, only safe without Redis-less writers elsewhere).
        case local
        /// Redis only, no in-process layer.
        case redis
    }

    /// One setting: its environment name, its flag, its default, and what it means (the README's table).
    public struct Setting: Sendable {
        public let environment: String
        public let flag: String
        public let defaultValue: String
        public let meaning: String
    }

    public static let settings: [Setting] = [
        .init(environment: "SOUK_HTTP_HOST", flag: "--host", defaultValue: "127.0.0.1", meaning: "address the HTTP server binds"),
        .init(environment: "SOUK_HTTP_PORT", flag: "--port", defaultValue: "8080", meaning: "HTTP port (0 picks a free one)"),
        .init(environment: "SOUK_DATA_DIR", flag: "--data-dir", defaultValue: "./souk-data", meaning: "where embedded mode keeps its SQLite file"),
        .init(environment: "SOUK_DATABASE_URL", flag: "--database-url", defaultValue: "(SQLite in the data dir)", meaning: "postgres://user:pass@host:port/db or sqlite:///path/file.sqlite"),
        .init(environment: "SOUK_DATABASE_CONNECTIONS", flag: "--database-connections", defaultValue: "20", meaning: "PostgreSQL connections per process, a quarter of them kept for reads"),
        .init(environment: "SOUK_DATABASE_TIMEOUT", flag: "--database-timeout", defaultValue: "30s", meaning: "the longest one PostgreSQL statement may take; a transaction left idle this long is ended"),
        .init(environment: "SOUK_REDIS_URL", flag: "--redis-url", defaultValue: "(none)", meaning: "redis://[user:pass@]host:port/db (used by later features)"),
        .init(environment: "SOUK_LOG_LEVEL", flag: "--log-level", defaultValue: "info", meaning: "trace, debug, info, notice, warning, error or critical"),
        .init(environment: "SOUK_SECURE_COOKIES", flag: "--secure-cookies", defaultValue: "auto", meaning: "auto (Secure except plain HTTP on loopback), always or never"),
        .init(environment: "SOUK_PAGE_CACHE", flag: "--page-cache", defaultValue: "auto", meaning: "auto (in-process, plus Redis when configured), off, local or redis"),
        .init(environment: "SOUK_PAGE_CACHE_TTL", flag: "--page-cache-ttl", defaultValue: "15m", meaning: "how long a cached store page may be served, e.g. 900s, 15m, 1h"),
        .init(environment: "SOUK_VERIFIER", flag: "--verifier", defaultValue: "simulated", meaning: "the checkout verifier: simulated, or an http:// or https:// URL answering {\"verified\": true|false}"),
        .init(environment: "SOUK_VERIFIER_DELAY", flag: "--verifier-delay", defaultValue: "1s-100s", meaning: "the simulated verifier's random delay range"),
        .init(environment: "SOUK_VERIFY_DEADLINE", flag: "--verify-deadline", defaultValue: "60s", meaning: "the hard limit of a checkout's verification"),
        .init(environment: "SOUK_PAYMENTS", flag: "--payments", defaultValue: "simulated", meaning: "the card provider: simulated (test cards, charges in memory), or the https:// base URL of a Stripe-like API (see docs/architecture.md, Paying by card)"),
        .init(environment: "SOUK_PAYMENTS_KEY", flag: "--payments-key", defaultValue: "(none)", meaning: "the secret key Souk sends the card provider (Authorization: Bearer); required with an https:// SOUK_PAYMENTS"),
        .init(environment: "SOUK_PAYMENTS_WEBHOOK_SECRET", flag: "--payments-webhook-secret", defaultValue: "(none: no events taken)", meaning: "the shared secret (16+ characters) the card provider signs its events to POST /api/v1/payments/events with"),
        .init(environment: "SOUK_FEED_SOURCE", flag: "--feed-source", defaultValue: "simulated", meaning: "the price feed: simulated, an http:// or https:// URL answering JSON or CSV rows (item, price, timestamp), or file:///path.csv to replay"),
        .init(environment: "SOUK_FEED_INTERVAL", flag: "--feed-interval", defaultValue: "60s", meaning: "how often the price feed is polled (tests and demos use 1s)"),
        .init(environment: "SOUK_FEED_ITEMS", flag: "--feed-items", defaultValue: "20", meaning: "how many items the simulated market quotes (SIM-0001 …)"),
        .init(environment: "SOUK_RATE_LIMITS", flag: "--rate-limits", defaultValue: "default", meaning: "default, off, or overrides such as login_ip=10/1m,purchase_ip=off (see docs/operations.md)"),
        .init(environment: "SOUK_HTTP_IDLE_TIMEOUT", flag: "--idle-timeout", defaultValue: "60s", meaning: "a connection with no request under way is closed after this long (also bounds a request head that never completes)"),
        .init(environment: "SOUK_HTTP_BODY_TIMEOUT", flag: "--body-timeout", defaultValue: "30s", meaning: "a request body that makes no progress for this long is dropped"),
        .init(environment: "SOUK_HTTP_READ_TIMEOUT", flag: "--read-timeout", defaultValue: "5m", meaning: "the longest a whole request may take to arrive, head to end"),
        .init(environment: "SOUK_SMTP_URL", flag: "--smtp-url", defaultValue: "(none: the outbox)", meaning: "smtp://host[:port] of the mail relay that sends verification codes; without it mail is kept in the outbox, shown at /outbox to this machine only"),
        .init(environment: "SOUK_CA_FILE", flag: "--ca-file", defaultValue: "(none)", meaning: "a PEM file of certificates trusted for outbound HTTPS (verifier, price source) besides the system's: a private certificate authority"),
        .init(environment: "SOUK_MAIL_FROM", flag: "--mail-from", defaultValue: "no-reply@souk.localhost", meaning: "the sender address of Souk's mail"),
        .init(environment: "SOUK_BEHIND_PROXY", flag: "--behind-proxy", defaultValue: "no", meaning: "yes: the client address is the last X-Forwarded-For hop (set it behind nginx, never when exposed directly)"),
    ]

    /// All problems found, each naming its setting.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let problems: [String]
        public var description: String { "Invalid settings:\n" + problems.map { "  - \($0)" }.joined(separator: "\n") }
    }

    /// Reads settings; `flags` (keyed by environment name) win over `environment`.
    public static func load(environment: [String: String], flags: [String: String] = [:]) throws(Invalid) -> SoukConfiguration {
        func value(_ name: String) -> String? {
            let raw = flags[name] ?? environment[name]
            guard let raw, !raw.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            return raw.trimmingCharacters(in: .whitespaces)
        }
        var problems: [String] = []

        let host = value("SOUK_HTTP_HOST") ?? "127.0.0.1"
        if host.contains(where: { $0.isWhitespace || $0 == "/" }) {
            problems.append("SOUK_HTTP_HOST: \"\(host)\" is not a host name or address")
        }

        var port = 8080
        if let raw = value("SOUK_HTTP_PORT") {
            if let parsed = Int(raw), (0...65_535).contains(parsed) { port = parsed } else {
                problems.append("SOUK_HTTP_PORT: \"\(raw)\" is not a port number (0-65535)")
            }
        }

        let dataDirectory = value("SOUK_DATA_DIR") ?? "./souk-data"

        var database = Database.sqlite(path: (dataDirectory as NSString).appendingPathComponent("souk.sqlite"))
        if let raw = value("SOUK_DATABASE_URL") {
            if raw.hasPrefix("postgres://") || raw.hasPrefix("postgresql://") {
                if let components = URLComponents(string: raw), components.host?.isEmpty == false, components.user?.isEmpty == false {
                    database = .postgres(url: raw)
                } else {
                    problems.append("SOUK_DATABASE_URL: expected postgres://user[:password]@host[:port]/database")
                }
            } else if raw.hasPrefix("sqlite://") {
                let path = String(raw.dropFirst("sqlite://".count))
                if path.isEmpty { problems.append("SOUK_DATABASE_URL: sqlite:// needs a file path") } else { database = .sqlite(path: path) }
            } else {
                problems.append("SOUK_DATABASE_URL: \"\(raw)\" must start with postgres://, postgresql:// or sqlite://")
            }
        }

        var databaseConnections = 20
        if let raw = value("SOUK_DATABASE_CONNECTIONS") {
            if let parsed = Int(raw), (2...1_000).contains(parsed) { databaseConnections = parsed } else {
                problems.append("SOUK_DATABASE_CONNECTIONS: \"\(raw)\" is not a count from 2 to 1000")
            }
        }

        var databaseTimeout = Duration.seconds(30)
        if let raw = value("SOUK_DATABASE_TIMEOUT") {
            if let parsed = Self.duration(raw), parsed >= .seconds(1), parsed <= .seconds(3_600) { databaseTimeout = parsed } else {
                problems.append("SOUK_DATABASE_TIMEOUT: \"\(raw)\" is not a duration from 1s to 1h, such as 30s")
            }
        }

        let redisURL = value("SOUK_REDIS_URL")
        if let redisURL {
            let components = URLComponents(string: redisURL)
            if !(redisURL.hasPrefix("redis://") || redisURL.hasPrefix("rediss://")) || components?.host?.isEmpty != false {
                problems.append("SOUK_REDIS_URL: expected redis://[user:password@]host[:port][/db]")
            }
        }

        var logLevel = Logger.Level.info
        if let raw = value("SOUK_LOG_LEVEL") {
            if let level = Logger.Level(rawValue: raw.lowercased()) { logLevel = level } else {
                problems.append("SOUK_LOG_LEVEL: \"\(raw)\" is not one of trace, debug, info, notice, warning, error, critical")
            }
        }

        var cookies = CookiePolicy.auto
        if let raw = value("SOUK_SECURE_COOKIES") {
            switch raw.lowercased() {
            case "auto": cookies = .auto
            case "always", "true", "yes", "1": cookies = .always
            case "never", "false", "no", "0": cookies = .never
            default: problems.append("SOUK_SECURE_COOKIES: \"\(raw)\" is not auto, always or never")
            }
        }

        var pageCache = PageCacheMode.auto
        if let raw = value("SOUK_PAGE_CACHE") {
            if let mode = PageCacheMode(rawValue: raw.lowercased()) { pageCache = mode } else {
                problems.append("SOUK_PAGE_CACHE: \"\(raw)\" is not auto, off, local or redis")
            }
        }
        if pageCache == .redis && redisURL == nil {
            problems.append("SOUK_PAGE_CACHE: redis needs SOUK_REDIS_URL")
        }

        var pageCacheTTL = Duration.seconds(15 * 60)
        if let raw = value("SOUK_PAGE_CACHE_TTL") {
            if let parsed = Self.duration(raw), parsed > .zero { pageCacheTTL = parsed } else {
                problems.append("SOUK_PAGE_CACHE_TTL: \"\(raw)\" is not a duration such as 900s, 15m or 1h")
            }
        }

        var verifierURL: URL?
        if let raw = value("SOUK_VERIFIER"), raw != "simulated" {
            if let url = Self.outboundURL(raw) { verifierURL = url } else {
                problems.append("SOUK_VERIFIER: \"\(raw)\" is not simulated or an http(s)://host[:port]/path URL")
            }
        }
        var verifierDelay: ClosedRange<Duration> = .seconds(1) ... .seconds(100)
        if let raw = value("SOUK_VERIFIER_DELAY") {
            let parts = raw.split(separator: "-", maxSplits: 1).map { Self.duration(String($0)) }
            if parts.count == 2, let low = parts[0], let high = parts[1], low <= high { verifierDelay = low ... high } else {
                problems.append("SOUK_VERIFIER_DELAY: \"\(raw)\" is not a range such as 1s-100s")
            }
        }
        var verifyDeadline = Duration.seconds(60)
        if let raw = value("SOUK_VERIFY_DEADLINE") {
            if let parsed = Self.duration(raw), parsed > .zero { verifyDeadline = parsed } else {
                problems.append("SOUK_VERIFY_DEADLINE: \"\(raw)\" is not a duration such as 60s")
            }
        }

        var feedSource = FeedSource.simulated
        if let raw = value("SOUK_FEED_SOURCE"), raw != "simulated" {
            if let url = Self.outboundURL(raw) {
                feedSource = .http(url)
            } else if raw.hasPrefix("file://"), let url = URL(string: raw), !url.path.isEmpty {
                feedSource = .file(path: url.path)
            } else {
                problems.append("SOUK_FEED_SOURCE: \"\(raw)\" is not simulated, an http(s)://host[:port]/path URL or file:///path.csv")
            }
        }
        var feedInterval = Duration.seconds(60)
        if let raw = value("SOUK_FEED_INTERVAL") {
            if let parsed = Self.duration(raw), parsed >= .milliseconds(10) { feedInterval = parsed } else {
                problems.append("SOUK_FEED_INTERVAL: \"\(raw)\" is not a duration of at least 10ms, such as 60s or 1s")
            }
        }
        var feedItems = 20
        if let raw = value("SOUK_FEED_ITEMS") {
            if let parsed = Int(raw), (1...1_000_000).contains(parsed) { feedItems = parsed } else {
                problems.append("SOUK_FEED_ITEMS: \"\(raw)\" is not a count from 1 to 1000000")
            }
        }

        var rateLimits = RateLimitPolicy()
        if let raw = value("SOUK_RATE_LIMITS") {
            if let parsed = RateLimitPolicy.parse(raw) { rateLimits = parsed } else {
                let names = RateLimitPolicy.Name.allCases.map(\.rawValue).joined(separator: ", ")
                problems.append("SOUK_RATE_LIMITS: \"\(raw)\" is not default, off or a list such as login_ip=10/1m,purchase_ip=off (names: \(names))")
            }
        }
        var behindProxy = false
        if let raw = value("SOUK_BEHIND_PROXY") {
            switch raw.lowercased() {
            case "yes", "true", "1": behindProxy = true
            case "no", "false", "0": behindProxy = false
            default: problems.append("SOUK_BEHIND_PROXY: \"\(raw)\" is not yes or no")
            }
        }

        var timeouts = HTTPTimeouts()
        for (name, keyPath) in [("SOUK_HTTP_IDLE_TIMEOUT", \HTTPTimeouts.idle), ("SOUK_HTTP_BODY_TIMEOUT", \.body), ("SOUK_HTTP_READ_TIMEOUT", \.read)] {
            guard let raw = value(name) else { continue }
            if let parsed = Self.duration(raw), parsed >= .seconds(1), parsed <= .seconds(86_400) { timeouts[keyPath: keyPath] = parsed } else {
                problems.append("\(name): \"\(raw)\" is not a duration from 1s to 24h, such as 30s or 5m")
            }
        }

        let smtpURL = value("SOUK_SMTP_URL")
        if let smtpURL {
            let components = URLComponents(string: smtpURL)
            if components?.scheme != "smtp" || components?.host?.isEmpty != false {
                problems.append("SOUK_SMTP_URL: \"\(smtpURL)\" is not smtp://host[:port]")
            }
        }
        let mailFrom = value("SOUK_MAIL_FROM") ?? "no-reply@souk.localhost"
        if !CustomerSignup.isEmail(mailFrom.lowercased()) {
            problems.append("SOUK_MAIL_FROM: \"\(mailFrom)\" is not an email address such as shop@example.com")
        }

        var paymentsURL: URL?
        if let raw = value("SOUK_PAYMENTS"), raw != "simulated" {
            if let url = Self.outboundURL(raw) { paymentsURL = url } else {
                problems.append("SOUK_PAYMENTS: \"\(raw)\" is not simulated or an https://host[:port]/path URL")
            }
        }
        let paymentsKey = value("SOUK_PAYMENTS_KEY")
        if paymentsURL != nil, (paymentsKey ?? "").isEmpty {
            problems.append("SOUK_PAYMENTS_KEY: the card provider's secret key is needed with SOUK_PAYMENTS=\(paymentsURL?.absoluteString ?? "")")
        }
        let paymentEventSecret = value("SOUK_PAYMENTS_WEBHOOK_SECRET")
        if let paymentEventSecret, paymentEventSecret.utf8.count < 16 {
            problems.append("SOUK_PAYMENTS_WEBHOOK_SECRET: a secret of 16 characters or more is needed")
        }

        let caFile = value("SOUK_CA_FILE")
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            problems.append("SOUK_CA_FILE: \"\(caFile)\" is not a readable file of PEM certificates")
        }

        guard problems.isEmpty else { throw Invalid(problems: problems) }
        var configuration = SoukConfiguration(
            host: host, port: port, dataDirectory: dataDirectory, database: database, redisURL: redisURL, logLevel: logLevel,
            cookies: cookies, pageCache: pageCache, pageCacheTTL: pageCacheTTL, verifierURL: verifierURL, verifierDelay: verifierDelay,
            verifyDeadline: verifyDeadline, feedSource: feedSource, feedInterval: feedInterval, feedItems: feedItems
        )
        configuration.databaseConnections = databaseConnections
        configuration.smtpURL = smtpURL
        configuration.mailFrom = mailFrom
        configuration.caFile = caFile
        configuration.paymentEventSecret = paymentEventSecret
        configuration.paymentsURL = paymentsURL
        configuration.paymentsKey = paymentsKey
        configuration.databaseTimeout = databaseTimeout
        configuration.rateLimits = rateLimits
        configuration.behindProxy = behindProxy
        configuration.timeouts = timeouts
        return configuration
    }

    /// An outside service's address Souk can call (``URL/isOutsideService``).
    static func outboundURL(_ raw: String) -> URL? {
        URL(string: raw).flatMap { $0.isOutsideService ? $0 : nil }
    }

    /// "250ms", "30s", "15m", "1h", or a bare number of seconds.
    public static func duration(_ text: String) -> Duration? {
        Duration.parsing(text)
    }
}
