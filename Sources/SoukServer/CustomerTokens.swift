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

    /// `SymmetricKey` is not `Sendable`; this one is never changed after it is made. `hmac` is the
    /// key's HMAC before any message: a copy of it checks a token without keying a new one.
    private final class SigningKey: @unchecked Sendable {
        let key: SymmetricKey
        let hmac: HMAC<SHA256>
        init(_ bytes: [UInt8]) {
            key = SymmetricKey(data: bytes)
            hmac = HMAC<SHA256>(key: key)
        }
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
    /// Read in place on the token's bytes (every part is ASCII), with the key's HMAC state made
    /// once: this runs on every purchase attempt.
    func identity(token: some StringProtocol, now: Date = Date()) -> CustomerIdentity? {
        var text = String(token)
        return text.withUTF8 { identity(bytes: $0, now: Int64(now.timeIntervalSince1970)) }
    }

    private func identity(bytes: UnsafeBufferPointer<UInt8>, now: Int64) -> CustomerIdentity? {
        guard bytes.count <= 160, bytes.count > Self.prefix.utf8.count, bytes.starts(with: Self.prefix.utf8) else { return nil }
        // The five dots: after c1, the customer id, the session id, the expiry and the flag.
        var dots: (Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0)
        var found = 0
        for index in bytes.indices where bytes[index] == UInt8(ascii: ".") {
            switch found {
            case 0: dots.0 = index
            case 1: dots.1 = index
            case 2: dots.2 = index
            case 3: dots.3 = index
            case 4: dots.4 = index
            default: return nil
            }
            found += 1
        }
        guard found == 5, dots.2 - dots.1 - 1 == 16, dots.4 - dots.3 == 2, (1...12).contains(dots.3 - dots.2 - 1) else { return nil }
        let flag = bytes[dots.4 - 1]
        guard flag == UInt8(ascii: "v") || flag == UInt8(ascii: "u") else { return nil }
        var expiry: Int64 = 0
        for digit in bytes[(dots.2 + 1)..<dots.3] {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            expiry = expiry * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        guard expiry > now, let signature = Self.base64URLDecoded(UnsafeBufferPointer(rebasing: bytes[(dots.4 + 1)...])), signature.count == 32 else { return nil }
        var mac = signingKey.hmac
        mac.update(data: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[..<dots.4])))
        guard Self.constantTimeEqual(mac.finalize(), signature) else { return nil }
        let customerBytes = UnsafeBufferPointer(rebasing: bytes[(dots.0 + 1)..<dots.1])
        guard Customer.isID(utf8: customerBytes) else { return nil }
        let sessionID = String(decoding: UnsafeBufferPointer(rebasing: bytes[(dots.1 + 1)..<dots.2]), as: UTF8.self)
        guard !isRevoked(sessionID) else { return nil }
        let customerID = String(decoding: customerBytes, as: UTF8.self)
        return CustomerIdentity(customerID: customerID, sessionID: sessionID, expiresAt: Date(timeIntervalSince1970: TimeInterval(expiry)),
                                verified: flag == UInt8(ascii: "v"))
    }

    static func constantTimeEqual(_ code: HashedAuthenticationCode<SHA256>, _ signature: [UInt8]) -> Bool {
        code.withUnsafeBytes { code in
            guard code.count == signature.count else { return false }
            var difference: UInt8 = 0
            for index in 0..<code.count { difference |= code[index] ^ signature[index] }
            return difference == 0
        }
    }

    /// The customer behind `Authorization: Bearer c1.…`, or the customer cookie where a cookie
    /// counts (``CookieAuthentication``): for the router and every event-loop lane alike.
    func identity(in request: HTTPRequest, now: Date = Date()) -> CustomerIdentity? {
        let headers = request.headerFields
        if let authorization = headers[.authorization] {
            guard authorization.utf8.count > 7, authorization.utf8.prefix(7).elementsEqual("bearer ".utf8, by: { $0 == $1 || ($1 >= 0x61 && $1 <= 0x7A && $0 == $1 - 0x20) }) else { return nil }
            return identity(token: Substring(authorization.utf8.dropFirst(7)), now: now)
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
        base64URLDecoded(text.utf8)
    }

    static func base64URLDecoded(_ text: some Collection<UInt8>) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for character in text {
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
