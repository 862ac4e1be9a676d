import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SoukCore
import Metrics

/// Serves store pages (`/s/{username}` and its JSON twin) from the ``PageCache``, with an ETag so
/// that repeat visitors get `304 Not Modified`. HTML pages are cached with a marker where the
/// visitor's CSRF token goes, and personalised when served.
struct StorefrontCache: Sendable {
    /// Where each form's token goes in a cached page: with control characters, which no vendor
    /// text may hold (they are refused on input) and HTML escaping leaves as they are.
    static let csrfMarker = "\u{1}souk-csrf\u{1}"
    let cache: (any PageCache)?

    /// Renderings under way, so that a burst of visitors missing the same version (right after a
    /// change) waits for one rendering instead of each querying the database and rendering again.
    private let inFlight = NIOLockedValueBox<[RenderKey: Task<CachedPage, any Error>]>([:])

    struct RenderKey: Hashable {
        let page: PageKey
        let version: UInt64
    }

    init(cache: (any PageCache)?) {
        self.cache = cache
    }

    /// Page-cache lookups by result: the hit ratio is hits / (hits + misses).
    static let hits = Counter(label: "souk_page_cache_lookups_total", dimensions: [("result", "hit")])
    static let misses = Counter(label: "souk_page_cache_lookups_total", dimensions: [("result", "miss")])

    /// The cached page for `key`, rendering (and caching) it when missing. A cache that fails is
    /// logged and bypassed: the page is rendered from the database instead.
    func page(for key: PageKey, logger: Logger, render: @escaping @Sendable () async throws -> [UInt8]) async throws -> CachedPage {
        guard let cache else { return Self.make(try await render(), version: 0) }
        let version: UInt64
        do {
            let found = try await cache.lookup(key)
            if let page = found.page {
                Self.hits.increment()
                return page
            }
            Self.misses.increment()
            version = found.version
        } catch {
            logger.warning("page cache unavailable, rendering uncached", metadata: ["error": "\(error)"])
            return Self.make(try await render(), version: 0)
        }
        let renderKey = RenderKey(page: key, version: version)
        let task = inFlight.withLockedValue { tasks in
            if let running = tasks[renderKey] { return running }
            let task = Task { [inFlight] in
                defer { _ = inFlight.withLockedValue { $0.removeValue(forKey: renderKey) } }
                let page = Self.make(try await render(), version: version)
                do {
                    try await cache.store(page, for: key, version: version)
                } catch {
                    logger.warning("page cache store failed", metadata: ["error": "\(error)"])
                }
                return page
            }
            tasks[renderKey] = task
            return task
        }
        return try await task.value
    }

    /// Takes every CSRF marker (one per form) out of a fresh rendering and remembers where each was.
    static func make(_ rendered: [UInt8], version: UInt64) -> CachedPage {
        var body: [UInt8] = []
        body.reserveCapacity(rendered.count)
        var slots: [Int] = []
        let marker = Array(csrfMarker.utf8)
        rendered.withUnsafeBufferPointer { bytes in
            var copied = 0
            while let start = find(marker, in: bytes, from: copied) {
                body.append(contentsOf: bytes[copied..<start])
                slots.append(body.count)
                copied = start + marker.count
            }
            body.append(contentsOf: bytes[copied...])
        }
        return CachedPage(body: body, etag: "\"\(version)-\(fnv1a(body))\"", createdAt: Date(), slots: slots)
    }

    static func find(_ needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>, from start: Int = 0) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    /// A 200 with the page, or a 304 when the visitor already has this very version.
    func response(_ page: CachedPage, request: Request, contentType: String, csrfToken: String?) -> Response {
        let answer = Self.answer(page, requestHeaders: request.headers, contentType: contentType, csrfToken: csrfToken)
        return Response(status: answer.status, headers: answer.headers, body: answer.body.map { .init(byteBuffer: $0) } ?? .init())
    }

    /// The response's parts, shared by the router's handlers and the ``StorePageLane``.
    static func answer(_ page: CachedPage, requestHeaders: HTTPFields, contentType: String, csrfToken: String?) -> (status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer?) {
        var etag = page.etag
        if let csrfToken { etag = String(etag.dropLast()) + "-\(Self.fnv1a(Array(csrfToken.utf8)) % 100_000)\"" }
        var headers: HTTPFields = [
            .contentType: contentType, .eTag: etag,
            .cacheControl: csrfToken == nil ? "public, no-cache" : "private, no-cache",
        ]
        // If-None-Match compares weakly (RFC 9110): a proxy that compressed the page sends back W/"…".
        if let match = requestHeaders[.ifNoneMatch], match.split(separator: ",").contains(where: { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == etag || tag == "W/" + etag || tag == "*"
        }) {
            return (.notModified, headers, nil)
        }
        var body = ByteBuffer()
        body.reserveCapacity(page.body.count + 64 * page.slots.count + 64)
        if let csrfToken, !page.slots.isEmpty {
            page.body.withUnsafeBufferPointer { bytes in
                var written = 0
                for slot in page.slots {
                    body.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[written..<slot])))
                    body.writeString(csrfToken)
                    written = slot
                }
                body.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[written...])))
            }
        } else {
            body.writeBytes(page.body)
        }
        headers[.contentLength] = String(body.readableBytes)
        return (.ok, headers, body)
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
