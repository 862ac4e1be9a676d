import Crypto
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import SoukCore

/// Who a request is, as a customer: the account and the session it signed in with.
public struct CustomerIdentity: Hashable, Sendable {
    public let customerID: String
    public let sessionID: String
    public let expiresAt: Date
    /// Whether the customer had verified their email when the session began (a session begun
    /// before verifying is replaced by a verified one when the code is confirmed).
    public let verified: Bool
}

/// Customer sessions as signed tokens, `c1.<customer id>.<session id>.<expiry>.<v|u>.<HMAC-SHA256>`
/// (`v`: the email was verified when the session began).
///
/// A purchase attempt must know its customer without a database or Redis read — the flash-sale lanes
/// answer on the event loop — so the token carries the customer and is checked in memory, against a
/// key every instance reads once from the database. A session ended early (logout) is on a list of
/// revoked sessions that every instance keeps in memory: changed at once where the logout happened,
/// and read again from the database at most once a second by the others, in the background.
///
/// Vendor tokens are random strings looked up in the session store; a customer token is never one
/// (it starts `c1.`), so neither kind works where the other is required.
public final class CustomerTokens: Sendable {
    static let cookieName = "souk_customer"
    /// Set beside the session cookie, for the page script only: "a customer is signed in here".
    static let hintCookieName = "souk_shopper"
    static let prefix = "c1."

    /// The signing key, made once: every purchase attempt checks a token with it.
    private let signingKey: SigningKey
    private var key: SymmetricKey { signingKey.key }

    /// `SymmetricKey` is not `Sendable`; this one is never changed after it is made.
    private final class SigningKey: @unchecked Sendable {
        let key: SymmetricKey
        init(_ bytes: [UInt8]) { key = SymmetricKey(data: bytes) }
    }
    let lifetime: Duration
    private let store: any CustomerStore
    private let revoked = NIOLockedValueBox(Revoked())

    private struct Revoked {
        var sessions: [String: Date] = [:]
        var refreshedAt: ContinuousClock.Instant = .now
        var refreshing = false
    }

    public init(store: any CustomerStore, lifetime: Duration) async throws {
        self.store = store
        self.lifetime = lifetime
        self.signingKey = SigningKey(try await store.customerSigningKey())
        let now = Date()
        let sessions = try await store.revokedCustomerSessions(now: now)
        revoked.withLockedValue { $0.sessions = Dictionary(sessions.map { ($0.id, $0.expiresAt) }, uniquingKeysWith: max) }
    }

    /// A new session for `customer`: the token to hand over once, and when it stops working.
    public func issue(for customer: Customer, now: Date = Date()) -> (token: String, expiresAt: Date) {
        let expiry = Int64(now.timeIntervalSince1970) + lifetime.components.seconds
        let claims = "\(Self.prefix)\(customer.id).\(Self.randomSessionID()).\(expiry).\(customer.verifiedAt == nil ? "u" : "v")"
        return (claims + "." + mac(claims), Date(timeIntervalSince1970: TimeInterval(expiry)))
    }

    /// The identity a token proves: well formed, signed with our key, unexpired and not revoked.
    /// Read on the bytes (every part is ASCII): this runs on every purchase attempt.
    func identity(token: some StringProtocol, now: Date = Date()) -> CustomerIdentity? {
        let bytes = Array(token.utf8)
        guard bytes.count <= 160, bytes.starts(with: Self.prefix.utf8) else { return nil }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 6, parts[4].count == 1, let flag = parts[4].first, flag == UInt8(ascii: "v") || flag == UInt8(ascii: "u"),
              let customerID = String(validating: parts[1], as: UTF8.self), Customer.isID(customerID),
              parts[2].count == 16, let sessionID = String(validating: parts[2], as: UTF8.self),
              let expiryText = String(validating: parts[3], as: UTF8.self), let expiry = Int64(expiryText), expiry > Int64(now.timeIntervalSince1970),
              let signatureText = String(validating: parts[5], as: UTF8.self),
              let signature = Self.base64URLDecoded(signatureText), signature.count == 32
        else { return nil }
        let claims = bytes[..<(bytes.count - parts[5].count - 1)]
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: claims, using: key) else { return nil }
        guard !isRevoked(sessionID) else { return nil }
        return CustomerIdentity(customerID: customerID, sessionID: sessionID, expiresAt: Date(timeIntervalSince1970: TimeInterval(expiry)),
                                verified: flag == UInt8(ascii: "v"))
    }

    /// The customer behind `Authorization: Bearer c1.…`, or the customer cookie where a cookie
    /// counts (``CookieAuthentication``): for the router and every event-loop lane alike.
    func identity(in request: HTTPRequest, now: Date = Date()) -> CustomerIdentity? {
        let headers = request.headerFields
        if let authorization = headers[.authorization] {
            guard authorization.utf8.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return nil }
            return identity(token: authorization.dropFirst(7), now: now)
        }
        guard let cookie = SessionMiddleware.cookie(Self.cookieName, in: headers), CookieAuthentication.allows(request) else { return nil }
        return identity(token: cookie, now: now)
    }

    /// Ends a session everywhere: here at once, on other instances within about a second.
    func revoke(_ identity: CustomerIdentity) async throws {
        revoked.withLockedValue { $0.sessions[identity.sessionID] = identity.expiresAt }
        try await store.revokeCustomerSession(id: identity.sessionID, expiresAt: identity.expiresAt)
    }

    private func isRevoked(_ sessionID: String) -> Bool {
        let (found, stale) = revoked.withLockedValue { state -> (Bool, Bool) in
            let stale = !state.refreshing && ContinuousClock.now - state.refreshedAt > .seconds(1)
            if stale { state.refreshing = true }
            return (state.sessions[sessionID] != nil, stale)
        }
        if stale { Task { await refresh() } }
        return found
    }

    /// Reads the revoked sessions again (other instances' logouts); expired ones drop out.
    private func refresh() async {
        let now = Date()
        let sessions = try? await store.revokedCustomerSessions(now: now)
        revoked.withLockedValue { state in
            if let sessions {
                var merged = Dictionary(sessions.map { ($0.id, $0.expiresAt) }, uniquingKeysWith: max)
                for (id, expiry) in state.sessions where expiry > now { merged[id] = max(merged[id] ?? expiry, expiry) }
                state.sessions = merged
            }
            state.refreshedAt = .now
            state.refreshing = false
        }
    }

    private func mac(_ claims: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data(claims.utf8), using: key)
        return Self.base64URL(Data(code))
    }

    static func randomSessionID() -> String {
        var generator = SystemRandomNumberGenerator()
        return base64URL(Data((0..<12).map { _ in UInt8.random(in: .min ... .max, using: &generator) }))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Unpadded base64url, decoded without Foundation's string round trips (this runs on every
    /// purchase attempt); nil for any other text, including stray bits in the last character.
    static func base64URLDecoded(_ text: some StringProtocol) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            default: return nil
            }
            buffer = (buffer << 6) | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        guard bits < 6, buffer == 0 else { return nil }  // a lone character, or bits past the last byte
        return bytes
    }
}

extension CustomerTokens {
    /// `count` customers made straight in the store, each with a token signed as a login would sign it,
    /// for load tests and tests that need thousands of buyers: signing them up through bcrypt would take
    /// longer than the storm. Their password hash matches no password, so none of them can log in.
    public func mintShoppers(_ count: Int, emailPrefix: String, now: Date = Date()) async throws -> [(id: String, token: String)] {
        let customers = (0..<max(count, 0)).map {
            Customer(id: Customer.newID(), email: "\(emailPrefix)-\($0)@example.invalid", name: "Shopper \($0)", createdAt: now)
        }
        return try await store.createCustomers(customers, passwordHash: "!").map { ($0.id, issue(for: $0, now: now).token) }
    }
}
