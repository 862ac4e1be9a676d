import Foundation
import Hummingbird
import Logging
import NIOCore
import SoukCore

/// Serves store pages (`/s/{username}` and its JSON twin) from the ``PageCache``, with an ETag so
/// that repeat visitors get `304 Not Modified`. HTML pages are cached with a marker where the
/// visitor's CSRF token goes, and personalised when served.
struct StorefrontCache: Sendable {
    static let csrfMarker = "__SOUK_CSRF_TOKEN__"
    let cache: (any PageCache)?

    /// The cached page for `key`, rendering (and caching) it when missing. A cache that fails is
    /// logged and bypassed: the page is rendered from the database instead.
    func page(for key: PageKey, logger: Logger, render: () async throws -> [UInt8]) async throws -> CachedPage {
        guard let cache else { return Self.make(try await render(), version: 0) }
        let version: UInt64
        do {
            version = try await cache.version(of: key.vendorID)
            if let page = try await cache.page(key, version: version) { return page }
        } catch {
            logger.warning("page cache unavailable, rendering uncached", metadata: ["error": "\(error)"])
            return Self.make(try await render(), version: 0)
        }
        let page = Self.make(try await render(), version: version)
        do {
            try await cache.store(page, for: key, version: version)
        } catch {
            logger.warning("page cache store failed", metadata: ["error": "\(error)"])
        }
        return page
    }

    static func make(_ body: [UInt8], version: UInt64) -> CachedPage {
        CachedPage(body: body, etag: "\"\(version)-\(fnv1a(body))\"", createdAt: Date())
    }

    /// A 200 with the page, or a 304 when the visitor already has this very version.
    func response(_ page: CachedPage, request: Request, contentType: String, csrfToken: String?) -> Response {
        var etag = page.etag
        if let csrfToken { etag = String(etag.dropLast()) + "-\(Self.fnv1a(Array(csrfToken.utf8)) % 100_000)\"" }
        var headers: HTTPFields = [
            .contentType: contentType, .eTag: etag,
            .cacheControl: csrfToken == nil ? "public, no-cache" : "private, no-cache",
        ]
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag }) {
            return Response(status: .notModified, headers: headers)
        }
        var body = ByteBuffer(bytes: page.body)
        if let csrfToken, let range = page.body.firstRange(of: Array(Self.csrfMarker.utf8)) {
            body = ByteBuffer()
            body.writeBytes(page.body[..<range.lowerBound])
            body.writeString(csrfToken)
            body.writeBytes(page.body[range.upperBound...])
        }
        headers[.contentLength] = String(body.readableBytes)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
