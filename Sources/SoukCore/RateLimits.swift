import Foundation
import Synchronization

/// At most `count` events per `window` for one key, as a smooth rate: a burst of `count`, then one
/// event every `window / count`.
public struct RateLimit: Sendable, Hashable {
    public let count: Int
    public let window: Duration

    public init(count: Int, window: Duration) {
        precondition(count > 0 && window > .zero)
        self.count = count
        self.window = window
    }

    /// The spacing of events at the sustained rate, in milliseconds (at least 1).
    public var intervalMilliseconds: Int64 { max(1, window.milliseconds / Int64(count)) }
    public var windowMilliseconds: Int64 { window.milliseconds }

    /// `20/1m`, `5/10s`, `1000/1h`.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, let count = Int(parts[0]), count > 0, count <= 1_000_000,
              let window = Duration.parsing(parts[1]), window >= .seconds(1), window <= .seconds(86_400)
        else { return nil }
        self.init(count: count, window: window)
    }

    public var description: String { "\(count)/\(window.components.seconds)s" }
}

/// The answer to one event.
public enum RateDecision: Sendable, Equatable {
    case allowed
    /// Refused; the next event for this key is allowed after this long.
    case limited(retryAfter: Duration)
}

/// One event counted under one limit for one key (e.g. a login under `login_ip` for an address).
public struct RateCheck: Sendable, Hashable {
    public let limit: RateLimit
    public let key: String

    public init(_ limit: RateLimit, key: String) {
        self.limit = limit
        self.key = key
    }
}

/// Counts events per key and says when there have been too many.
///
/// Both backends run the same algorithm (GCRA, ``RateLimit/decide(tat:now:)``): one stored time per
/// key, the "theoretical arrival time" of the next event at the sustained rate.
public protocol RateLimiter: Sendable {
    /// Counts one event under every check, all or nothing: allowed only if every check allows it
    /// (a refused event uses up nothing); limited with the longest wait otherwise.
    func hit(_ checks: [RateCheck]) async throws -> RateDecision
    /// The decision ``hit(_:)`` would make now, counting nothing: for limits on failures, which
    /// are looked at before an attempt and counted only when it fails.
    func peek(_ checks: [RateCheck]) async throws -> RateDecision
}

extension RateLimit {
    /// GCRA: given the key's stored arrival time (`tat`, ms; nil if none) and the time now, the
    /// decision and the arrival time to store when allowed.
    public func decide(tat: Int64?, now: Int64) -> (decision: RateDecision, newTAT: Int64?) {
        let start = max(tat ?? now, now)
        let next = start + intervalMilliseconds
        let excess = next - now - windowMilliseconds
        if excess > 0 { return (.limited(retryAfter: .milliseconds(excess)), nil) }
        return (.allowed, next)
    }
}

/// One process's limiter: right for a single instance, and the fallback without Redis.
public final class InProcessRateLimiter: RateLimiter {
    private struct State {
        var arrivals: [String: Int64] = [:]
    }

    private let state = Mutex(State())
    private let clock: @Sendable () -> Int64
    private let maximumKeys: Int

    /// - Parameters:
    ///   - maximumKeys: beyond this many remembered keys, expired ones are swept out (and if all
    ///     are live, the oldest half is forgotten: a flood of fresh keys cannot exhaust memory).
    ///   - clock: milliseconds now (tests move it by hand).
    public init(maximumKeys: Int = 100_000, clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1_000) }) {
        self.maximumKeys = maximumKeys
        self.clock = clock
    }

    public func peek(_ checks: [RateCheck]) async throws -> RateDecision {
        let now = clock()
        return state.withLock { state in
            var wait: Duration = .zero
            for check in checks {
                if case (.limited(let retryAfter), _) = check.limit.decide(tat: state.arrivals[check.key], now: now) { wait = max(wait, retryAfter) }
            }
            return wait == .zero ? .allowed : .limited(retryAfter: wait)
        }
    }

    public func hit(_ checks: [RateCheck]) async throws -> RateDecision {
        let now = clock()
        return state.withLock { state in
            var wait: Duration = .zero
            var arrivals: [(String, Int64)] = []
            for check in checks {
                switch check.limit.decide(tat: state.arrivals[check.key], now: now) {
                case (.limited(let retryAfter), _): wait = max(wait, retryAfter)
                case (.allowed, let next): arrivals.append((check.key, next ?? now))
                }
            }
            guard wait == .zero else { return .limited(retryAfter: wait) }
            for (key, next) in arrivals { state.arrivals[key] = next }
            if state.arrivals.count > maximumKeys { Self.sweep(&state, now: now, keep: maximumKeys / 2) }
            return .allowed
        }
    }

    private static func sweep(_ state: inout State, now: Int64, keep: Int) {
        // An arrival time in the past means the key is back to a full burst: forgetting it changes nothing.
        state.arrivals = state.arrivals.filter { $0.value > now }
        if state.arrivals.count > keep {
            let newest = state.arrivals.sorted { $0.value > $1.value }.prefix(keep)
            state.arrivals = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
        }
    }
}

/// The limits Souk enforces, by name; `SOUK_RATE_LIMITS` overrides them (`off` disables all).
public struct RateLimitPolicy: Sendable, Equatable {
    public enum Name: String, Sendable, CaseIterable {
        /// Login attempts per client address.
        case loginPerAddress = "login_ip"
        /// Failed logins per username, from any address: over it, every login to the account is
        /// slowed down (never refused, so a stranger cannot lock the owner out).
        case loginPerUsername = "login_user"
        /// Failed logins per username from one address: over it, that address is refused (429) for
        /// that account; the owner at another address is not.
        case loginPerUsernameAndAddress = "login_user_ip"
        /// New vendor accounts per client address.
        case signupPerAddress = "signup_ip"
        /// Flash-sale purchase attempts per buyer and per client address.
        case purchasePerBuyer = "purchase_buyer"
        case purchasePerAddress = "purchase_ip"
        /// Checkouts (and buys) per buyer and per client address.
        case checkoutPerBuyer = "checkout_buyer"
        case checkoutPerAddress = "checkout_ip"
        /// Orders through a store link per client address.
        case orderPerAddress = "order_ip"
        /// Email verification codes mailed per customer.
        case verificationPerCustomer = "verify_email"
    }

    public static let defaults: [Name: RateLimit] = [
        .loginPerAddress: RateLimit(count: 30, window: .seconds(60)),
        .loginPerUsername: RateLimit(count: 10, window: .seconds(60)),
        .loginPerUsernameAndAddress: RateLimit(count: 5, window: .seconds(300)),
        .signupPerAddress: RateLimit(count: 20, window: .seconds(3_600)),
        .purchasePerBuyer: RateLimit(count: 20, window: .seconds(60)),
        .purchasePerAddress: RateLimit(count: 1_200, window: .seconds(60)),
        .checkoutPerBuyer: RateLimit(count: 20, window: .seconds(60)),
        .checkoutPerAddress: RateLimit(count: 1_200, window: .seconds(60)),
        .orderPerAddress: RateLimit(count: 600, window: .seconds(60)),
        .verificationPerCustomer: RateLimit(count: 5, window: .seconds(3_600)),
    ]

    public var limits: [Name: RateLimit]

    public init(limits: [Name: RateLimit] = Self.defaults) {
        self.limits = limits
    }

    public static let off = RateLimitPolicy(limits: [:])

    /// `default`, `off`, or overrides such as `login_ip=10/1m,purchase_ip=off` on top of the defaults.
    public static func parse(_ text: String) -> RateLimitPolicy? {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text == "default" || text == "on" || text.isEmpty { return RateLimitPolicy() }
        if text == "off" { return .off }
        var policy = RateLimitPolicy()
        for entry in text.split(separator: ",") {
            let pair = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let name = Name(rawValue: pair[0]) else { return nil }
            if pair[1] == "off" {
                policy.limits[name] = nil
            } else {
                guard let limit = RateLimit(parsing: pair[1]) else { return nil }
                policy.limits[name] = limit
            }
        }
        return policy
    }
}

extension Duration {
    /// Whole milliseconds, for settings, Redis arguments and SQL intervals.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }

    /// This wait as whole seconds for `Retry-After`: rounded up, at least 1.
    public var retryAfterSeconds: Int {
        let (seconds, attoseconds) = components
        return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
    }

    /// Whole nanoseconds, for NIO's `TimeAmount` (durations Souk uses are far below 292 years).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// `1500ms`, `10s`, `1m`, `2h` (a bare number is seconds): the form of every duration setting.
    public static func parsing(_ text: some StringProtocol) -> Duration? {
        let text = String(text)
        let units: [(String, Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let value = Int64(text.dropLast(suffix.count)), value >= 0, value < 1_000_000_000 else { return nil }
            return .milliseconds(value * factor)
        }
        guard let value = Int64(text), value >= 0, value < 1_000_000_000 else { return nil }
        return .seconds(value)
    }
}
