import Crypto
import Foundation
import Hummingbird
import SoukCore

/// Session tokens: 256 random bits handed to the client once; only their SHA-256 is stored.
struct SessionTokens: Sendable {
    static let cookieName = "souk_session"
    let store: any SessionStore
    let lifetime: Duration

    /// Creates a session for the vendor and returns the raw token.
    func open(for vendor: Vendor) async throws -> String {
        let token = Self.randomToken()
        let expiresAt = Date().addingTimeInterval(TimeInterval(lifetime.components.seconds))
        try await store.createSession(tokenHash: Self.hash(token), vendorID: vendor.id, expiresAt: expiresAt)
        return token
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// Finds who is calling: a customer from a signed token (checked in memory), a vendor behind
/// `Authorization: Bearer …` (API) or the session cookie (pages), looked up in the session store.
struct SessionMiddleware: RouterMiddleware {
    typealias Context = SoukRequestContext
    let store: any SessionStore
    let customers: CustomerTokens

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let customer = customers.identity(in: request.head) {
            context.customer = customer
            context.logger[metadataKey: "souk.customer_id"] = "\(customer.customerID)"
        }
        if let token = Self.token(in: request), token.count <= 128, !token.hasPrefix(CustomerTokens.prefix) {
            let hash = SessionTokens.hash(token)
            if let vendor = try await store.vendor(sessionTokenHash: hash, now: Date()) {
                context.vendor = vendor
                context.sessionTokenHash = hash
                context.logger[metadataKey: "souk.vendor_id"] = "\(vendor.id)"
            }
        }
        return try await next(request, context)
    }

    /// The bearer token, or the session cookie where a cookie counts (``CookieAuthentication``).
    static func token(in request: Request) -> String? {
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]) }
            return nil
        }
        guard let cookie = cookie(SessionTokens.cookieName, in: request), CookieAuthentication.allows(request.head) else { return nil }
        return cookie
    }

    /// One cookie's value, found by scanning the header rather than parsing every cookie: this
    /// runs on every request, including the hottest cached store pages.
    static func cookie(_ name: String, in request: Request) -> String? {
        cookie(name, in: request.headers)
    }

    static func cookie(_ name: String, in headers: HTTPFields) -> String? {
        for field in headers where field.name == .cookie {
            if let value = cookie(name, inHeader: field.value) { return value }
        }
        return nil
    }

    /// Scans `a=1; b=2` without building the list of pairs.
    static func cookie(_ name: String, inHeader header: String) -> String? {
        let bytes = header.utf8
        let wanted = name.utf8
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: ";")) ?? bytes.endIndex
            var pair = bytes[start..<end].drop { $0 == UInt8(ascii: " ") }
            if pair.starts(with: wanted) {
                pair = pair.dropFirst(wanted.count)
                if pair.first == UInt8(ascii: "=") { return String(Substring(pair.dropFirst())) }
            }
            start = end == bytes.endIndex ? end : bytes.index(after: end)
        }
        return nil
    }
}

/// Answers 401 for API routes that need a vendor.
struct RequireVendorMiddleware: RouterMiddleware {
    typealias Context = SoukRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard context.vendor != nil else { throw SoukError.unauthorized }
        return try await next(request, context)
    }
}

/// Sends visitors of vendor pages who are not logged in to the login form.
struct RequireVendorPageMiddleware: RouterMiddleware {
    typealias Context = SoukRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard context.vendor != nil else { return .redirect(to: "/login", type: .found) }
        return try await next(request, context)
    }
}
