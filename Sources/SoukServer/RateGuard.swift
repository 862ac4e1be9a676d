import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SoukCore

/// The rate limits of the routes that attract abuse (logins, signups, purchases, checkouts,
/// orders), checked before any work is done.
struct RateGuard: Sendable {
    let limiter: any RateLimiter
    let policy: RateLimitPolicy
    /// Whether the client is the last hop of `X-Forwarded-For` (set by the proxy in front).
    let behindProxy: Bool
    let logger: Logger

    /// The client's address: the peer, or behind a proxy the address the proxy saw.
    func clientAddress(_ request: Request, _ context: SoukRequestContext) -> String {
        clientAddress(request.headers, peer: context.peerAddress)
    }

    func clientAddress(_ headers: HTTPFields, peer: String?) -> String {
        if behindProxy, let forwarded = headers[.xForwardedFor],
           let last = forwarded.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !last.isEmpty {
            return Self.network(String(last.prefix(64)))
        }
        return Self.network(peer ?? "unknown")
    }

    /// The unit an address is limited as: an IPv4 address itself, an IPv6 address's /64 (one
    /// subscriber usually holds a whole /64, so counting single IPv6 addresses would let one
    /// client rotate through billions of them). An IPv4-mapped IPv6 address is its IPv4 address.
    static func network(_ address: String) -> String {
        guard address.contains(":") else { return address }
        var bytes = in6_addr()
        guard inet_pton(AF_INET6, address, &bytes) == 1 else { return address }
        let octets = withUnsafeBytes(of: &bytes) { Array($0) }
        if octets[0..<10].allSatisfy({ $0 == 0 }), octets[10] == 0xFF, octets[11] == 0xFF {
            return octets[12...].map(String.init).joined(separator: ".")
        }
        func hex(_ byte: UInt8) -> String { (byte < 16 ? "0" : "") + String(byte, radix: 16) }
        return stride(from: 0, to: 8, by: 2).map { hex(octets[$0]) + hex(octets[$0 + 1]) }.joined(separator: ":") + "::/64"
    }

    /// The limits that apply to these events (those switched off are left out).
    func checks(_ events: [(RateLimitPolicy.Name, String)]) -> [RateCheck] {
        events.compactMap { name, key in
            policy.limits[name].map { RateCheck($0, key: "\(name.rawValue):\(key.prefix(128))") }
        }
    }

    /// Counts one event under each named limit for its key, all or nothing; throws
    /// `SoukError.rateLimited` over any limit. Limits switched off are skipped. If the limiter
    /// cannot be reached, the request goes through (logged): an outage of the limiter must not
    /// close the shop.
    func check(_ events: @autoclosure () -> [(RateLimitPolicy.Name, String)]) async throws {
        guard !policy.limits.isEmpty else { return }
        try await check(checks(events()))
    }

    /// ``check(_:)`` for checks already built.
    func check(_ checks: [RateCheck]) async throws {
        guard !checks.isEmpty else { return }
        let decision: RateDecision
        do {
            decision = try await limiter.hit(checks)
        } catch {
            logger.warning("rate limiter unavailable; request allowed", metadata: ["error": "\(error)"])
            return
        }
        if case .limited(let wait) = decision {
            throw SoukError.rateLimited(retryAfterSeconds: wait.retryAfterSeconds)
        }
    }
}

extension RateGuard {
    /// A login under the limits a stranger cannot turn against the owner: attempts count per
    /// address; failures count per account and address (over that limit that address is refused
    /// for that account) and per account from anywhere (over that limit every attempt on the
    /// account waits a little first, so guessing from many addresses is slow, yet the owner's
    /// right password still gets in). Returns what `authenticate` found, or nil for a failure.
    func login<Account: Sendable>(username: String, request: Request, context: SoukRequestContext, authenticate: () async throws -> Account?) async throws -> Account? {
        let account = username.trimmingCharacters(in: .whitespaces).lowercased()
        let address = clientAddress(request, context)
        let pair = [(RateLimitPolicy.Name.loginPerUsernameAndAddress, "\(account)|\(address)")]
        let anywhere = [(RateLimitPolicy.Name.loginPerUsername, account)]
        try await check([(.loginPerAddress, address)])
        if case .limited(let wait) = try await decide(checks(pair), peek: true) {
            throw SoukError.rateLimited(retryAfterSeconds: wait.retryAfterSeconds)
        }
        if case .limited(let wait) = try await decide(checks(anywhere), peek: true) {
            try await Task.sleep(for: min(wait, Self.longestLoginDelay))
        }
        if let found = try await authenticate() { return found }
        _ = try await decide(checks(pair), peek: false)
        _ = try await decide(checks(anywhere), peek: false)
        return nil
    }

    /// The most a login waits while its account is being guessed at.
    static let longestLoginDelay: Duration = .seconds(2)

    /// One look at (or count under) the limiter; allowed when it is unreachable (logged).
    private func decide(_ checks: [RateCheck], peek: Bool) async throws -> RateDecision {
        guard !checks.isEmpty else { return .allowed }
        do {
            return peek ? try await limiter.peek(checks) : try await limiter.hit(checks)
        } catch {
            logger.warning("rate limiter unavailable; request allowed", metadata: ["error": "\(error)"])
            return .allowed
        }
    }

    /// The limits a purchase attempt counts under: per buyer and per address (the gate counts them
    /// with its decision, for that sale).
    /// The address is worked out only when limits are on.
    func purchaseChecks(buyer: String, address: @autoclosure () -> String) -> [RateCheck] {
        guard !policy.limits.isEmpty else { return [] }
        return checks([(.purchasePerBuyer, buyer), (.purchasePerAddress, address())])
    }

    func checkCheckout(buyer: String, request: Request, context: SoukRequestContext) async throws {
        try await check([(.checkoutPerBuyer, buyer), (.checkoutPerAddress, clientAddress(request, context))])
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
}
