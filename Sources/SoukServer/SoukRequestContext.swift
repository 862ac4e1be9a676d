import Foundation
import Hummingbird
import NIOCore
import SoukCore

/// The request context of every Souk route: who is logged in, and the form token of the page.
public struct SoukRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The logged-in vendor, set by ``SessionMiddleware``.
    public var vendor: Vendor?
    /// The signed-in customer (a verified token; ``CustomerTokens``), set by ``SessionMiddleware``.
    public var customer: CustomerIdentity?
    /// The hash of the session token that authenticated this request (for logout).
    public var sessionTokenHash: String?
    /// The CSRF token to embed in forms, set by ``CSRFMiddleware`` on HTML routes.
    public var csrfToken: String = ""

    /// This request's id (``RequestIDMiddleware``), also in the logger's metadata.
    public var requestID: String = ""
    /// The connection's channel: its peer (the client, or the proxy in front) is read only by
    /// the routes that need it (rate limits).
    private let channel: any Channel

    /// The address of the connection's peer (the client, or the proxy in front).
    public var peerAddress: String? { channel.remoteAddress?.ipAddress }

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// Souk takes small JSON and form bodies only; anything larger is refused with 413.
    public var maxUploadSize: Int { 64 * 1024 }

    /// The signed-in customer, or 401: a vendor's token is not a customer's.
    func requireCustomer() throws -> CustomerIdentity {
        guard let customer else { throw SoukError.unauthorized }
        return customer
    }

    /// The vendor, or 401 for the API (pages redirect to the login form before reaching here).
    func requireVendor() throws -> Vendor {
        guard let vendor else { throw SoukError.unauthorized }
        return vendor
    }
}

extension Parameters {
    /// A path parameter with its percent-encoding undone (`alice%40example.com` is `alice@example.com`);
    /// nil when it is missing or not valid percent-encoded UTF-8.
    func decoded(_ name: String) -> String? {
        get(name)?.removingPercentEncoding
    }
}
