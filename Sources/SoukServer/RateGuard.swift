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
            return String(last.prefix(64))
        }
        return peer ?? "unknown"
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
        let checks = checks(events())
        guard !checks.isEmpty else { return }
        let decision: RateDecision
        do {
            decision = try await limiter.hit(checks)
        } catch {
            logger.warning("rate limiter unavailable; request allowed", metadata: ["error": "\(error)"])
            return
        }
        if case .limited(let wait) = decision {
            throw SoukError.rateLimited(retryAfterSeconds: Self.seconds(wait))
        }
    }

    /// A wait as whole seconds for `Retry-After`, rounded up, at least 1.
    static func seconds(_ wait: Duration) -> Int {
        let (seconds, attoseconds) = wait.components
        return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
    }
}

extension RateGuard {
    /// Logins count per address and per username (any address): guessing one account's password
    /// from many addresses is slowed down too.
    func checkLogin(username: String, request: Request, context: SoukRequestContext) async throws {
        try await check([(.loginPerAddress, clientAddress(request, context)), (.loginPerUsername, username.lowercased())])
    }

    /// Purchase attempts count per buyer and per address; an attempt without a buyer id is refused
    /// later by validation, so it counts for the address only.
    func checkPurchase(buyer: String?, request: Request, context: SoukRequestContext) async throws {
        guard !policy.limits.isEmpty else { return }
        try await check(purchaseEvents(buyer: buyer, address: clientAddress(request, context)))
    }

    func purchaseEvents(buyer: String?, address: String) -> [(RateLimitPolicy.Name, String)] {
        var events: [(RateLimitPolicy.Name, String)] = [(.purchasePerAddress, address)]
        if let buyer, !buyer.isEmpty { events.append((.purchasePerBuyer, buyer)) }
        return events
    }

    func checkCheckout(buyer: String, request: Request, context: SoukRequestContext) async throws {
        try await check([(.checkoutPerBuyer, buyer), (.checkoutPerAddress, clientAddress(request, context))])
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
}
