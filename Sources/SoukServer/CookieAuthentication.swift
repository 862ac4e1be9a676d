import Foundation
import HTTPTypes

/// When a session cookie may stand for its owner on the JSON API.
///
/// A browser attaches cookies to requests that other sites' pages make it send; it never attaches a
/// bearer token by itself. So on `/api/` a cookie counts only for a request one of our own pages
/// made: a change (POST, PUT, PATCH, DELETE) must carry `X-Souk-CSRF: 1`, a header another site's
/// page cannot send without our CORS consent (never given), and must not name another origin; a
/// read must not come from another site (its `Origin` or `Sec-Fetch-Site` says so). Otherwise the
/// cookie is ignored and the request is anonymous. Pages outside `/api/` use cookies freely: their
/// forms carry a CSRF token (``CSRFMiddleware``).
enum CookieAuthentication {
    static let header = HTTPField.Name("X-Souk-CSRF")!
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!

    static func allows(_ request: HTTPRequest) -> Bool {
        guard let path = request.path, isAPI(path) else { return true }
        let headers = request.headerFields
        if let origin = headers[.origin], !isOwn(origin: origin, authority: request.authority) { return false }
        if let site = headers[secFetchSite], site != "same-origin", site != "none" { return false }
        switch request.method {
        case .get, .head, .options: return true
        default: return headers[header] == "1"
        }
    }

    /// Whether the router would take `path` to the API: its first segment, ignoring empty ones (the
    /// router does: `//api/…` is `/api/…`) and percent-escapes, is `api` in any case.
    static func isAPI(_ path: String) -> Bool {
        let route = path.prefix { $0 != "?" }
        guard let first = route.split(separator: "/", omittingEmptySubsequences: true).first else { return false }
        let segment = String(first).removingPercentEncoding ?? String(first)
        return segment.lowercased() == "api"
    }

    /// Whether `Origin: scheme://host[:port]` is this server as the request reached it.
    static func isOwn(origin: String, authority: String?) -> Bool {
        guard let authority, let schemeEnd = origin.range(of: "://") else { return false }
        return origin[schemeEnd.upperBound...].lowercased() == authority.lowercased()
    }
}
