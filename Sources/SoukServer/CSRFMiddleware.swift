import HTTPTypes
import Hummingbird
import SoukCore

/// Double-submit CSRF protection for HTML forms: a random token in an HttpOnly, SameSite=Strict
/// cookie must come back as the form's `csrf` field. A cross-site page can neither read the cookie
/// nor make the browser send it.
struct CSRFMiddleware: RouterMiddleware {
    typealias Context = SoukRequestContext
    static let cookieName = "souk_csrf"
    let cookies: CookiePolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let existing = Self.token(in: request.headers)
        context.csrfToken = existing ?? SessionTokens.randomToken()
        var response = try await next(request, context)
        if existing == nil {
            response.setCookie(cookies.cookie(name: Self.cookieName, value: context.csrfToken, request: request, sameSite: .strict))
        }
        return response
    }

    /// The visitor's form token from its cookie, if it is one Souk could have made: 43 characters of
    /// unpadded URL-safe base64. The token is written into pages, so anything else (markup, quotes)
    /// is treated as no token and replaced.
    static func token(in headers: HTTPFields) -> String? {
        SessionMiddleware.cookie(cookieName, in: headers).flatMap { isWellFormed($0) ? $0 : nil }
    }

    static func isWellFormed(_ token: String) -> Bool {
        token.utf8.count == 43 && token.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
        }
    }

    /// Throws unless the submitted token matches the cookie (compared in constant time).
    static func verify(_ submitted: String?, context: Context) throws {
        let expected = Array(context.csrfToken.utf8)
        let given = Array((submitted ?? "").utf8)
        var difference = UInt8(expected.count == given.count ? 0 : 1)
        for (a, b) in zip(expected, given) { difference |= a ^ b }
        guard difference == 0, !expected.isEmpty else {
            throw SoukError.forbidden("This form has expired or came from another site. Reload the page and try again.")
        }
    }
}

/// How Souk's cookies are made: HttpOnly always, `Secure` unless configured off or (in `auto`)
/// the request came to a loopback address over plain HTTP, as in the embedded demo.
public enum CookiePolicy: String, Sendable {
    case auto, always, never

    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!

    func cookie(name: String, value: String, maxAge: Int? = nil, request: Request, sameSite: Cookie.SameSite = .lax, httpOnly: Bool = true) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: isSecure(request), httpOnly: httpOnly, sameSite: sameSite)
    }

    func isSecure(_ request: Request) -> Bool {
        switch self {
        case .always: return true
        case .never: return false
        case .auto:
            if request.headers[Self.forwardedProto] == "https" { return true }
            let host = (request.head.authority ?? "").lowercased()
            let name = host.hasPrefix("[") ? String(host.prefix(while: { $0 != "]" })) + "]" : String(host.split(separator: ":").first ?? "")
            return !["localhost", "127.0.0.1", "[::1]"].contains(name)
        }
    }
}
