import Foundation

/// Which cached rendering of a vendor's store: the HTML page or its JSON twin.
public struct PageKey: Hashable, Sendable {
    public let vendorID: Int64
    public let variant: String

    public init(vendorID: Int64, variant: String) {
        self.vendorID = vendorID
        self.variant = variant
    }
}

/// A rendered store page and what a repeat visitor's `If-None-Match` is compared with.
public struct CachedPage: Hashable, Sendable {
    public let body: [UInt8]
    public let etag: String
    public let createdAt: Date
    /// Byte offsets in `body`, ascending, where the visitor's own value (its form token) is inserted
    /// when served: one for every form on the page.
    public let slots: [Int]

    public init(body: [UInt8], etag: String, createdAt: Date, slots: [Int] = []) {
        self.body = body
        self.etag = etag
        self.createdAt = createdAt
        self.slots = slots.filter { (0...body.count).contains($0) }.sorted()
    }
}

/// The store-page cache. Every vendor has a version that each committed change to its products
/// bumps (``invalidate(vendorID:)``); pages are stored under the version they were rendered at, so
/// once the bump has returned, no reader anywhere gets an older page. Entries also expire by age.
public protocol PageCache: Sendable {
    /// The vendor's current version.
    func version(of vendorID: Int64) async throws -> UInt64
    /// The page rendered at exactly `version`, if cached and younger than the time limit.
    func page(_ key: PageKey, version: UInt64) async throws -> CachedPage?
    func store(_ page: CachedPage, for key: PageKey, version: UInt64) async throws
    /// Called after a change to the vendor's products has committed.
    func invalidate(vendorID: Int64) async throws
    /// The current version and the page cached at it: what a reader needs, in as few trips as the
    /// backend allows.
    func lookup(_ key: PageKey) async throws -> (version: UInt64, page: CachedPage?)
}

extension PageCache {
    public func lookup(_ key: PageKey) async throws -> (version: UInt64, page: CachedPage?) {
        let version = try await version(of: key.vendorID)
        return (version, try await page(key, version: version))
    }
}

/// Store pages of one process, bounded in entries and bytes, least recently used evicted first.
/// Alone it is the embedded cache; in front of Redis it saves fetching the page bytes.
public final class InProcessPageCache: PageCache, @unchecked Sendable {
    struct Entry {
        let page: CachedPage
        let version: UInt64
        var lastUse: UInt64
    }

    public let timeToLive: Duration
    let maximumEntries: Int
    let maximumBytes: Int
    private let lock = NSLock()
    private var entries: [PageKey: Entry] = [:]
    private var versions: [Int64: UInt64] = [:]
    private var bytes = 0
    private var clock: UInt64 = 0

    public init(timeToLive: Duration = .seconds(15 * 60), maximumEntries: Int = 10_000, maximumBytes: Int = 64 * 1024 * 1024) {
        self.timeToLive = timeToLive
        self.maximumEntries = maximumEntries
        self.maximumBytes = maximumBytes
    }

    public func version(of vendorID: Int64) async throws -> UInt64 {
        lock.withLock { versions[vendorID, default: 1] }
    }

    public func page(_ key: PageKey, version: UInt64) async throws -> CachedPage? {
        lock.withLock { page(key, at: version) }
    }

    public func lookup(_ key: PageKey) async throws -> (version: UInt64, page: CachedPage?) {
        lock.withLock { current(key) }
    }

    /// The page at the vendor's current version, without suspending: for answers given on the
    /// event loop that read the request.
    public func currentPage(_ key: PageKey) -> CachedPage? {
        lock.withLock { current(key).page }
    }

    /// Call with the lock held.
    private func current(_ key: PageKey) -> (version: UInt64, page: CachedPage?) {
        let version = versions[key.vendorID, default: 1]
        return (version, page(key, at: version))
    }

    /// Call with the lock held.
    private func page(_ key: PageKey, at version: UInt64) -> CachedPage? {
        guard let entry = entries[key] else { return nil }
        guard entry.version == version, !isExpired(entry.page) else {
            remove(key)
            return nil
        }
        clock += 1
        entries[key]?.lastUse = clock
        return entry.page
    }

    public func store(_ page: CachedPage, for key: PageKey, version: UInt64) async throws {
        lock.withLock {
            guard page.body.count <= maximumBytes / 4 else { return }
            remove(key)
            clock += 1
            entries[key] = Entry(page: page, version: version, lastUse: clock)
            bytes += page.body.count
            evictIfNeeded()
        }
    }

    public func invalidate(vendorID: Int64) async throws {
        lock.withLock {
            versions[vendorID, default: 1] += 1
            dropPages(of: vendorID)
        }
    }

    /// Forgets a vendor's pages without touching versions (another instance bumped it).
    public func evict(vendorID: Int64) {
        lock.withLock { dropPages(of: vendorID) }
    }

    /// Forgets everything (after missing invalidation messages).
    public func removeAll() {
        lock.withLock {
            entries.removeAll()
            bytes = 0
        }
    }

    public var count: Int { lock.withLock { entries.count } }

    private func dropPages(of vendorID: Int64) {
        for key in entries.keys where key.vendorID == vendorID { remove(key) }
    }

    private func isExpired(_ page: CachedPage) -> Bool {
        Date().timeIntervalSince(page.createdAt) >= Double(timeToLive.components.seconds) + Double(timeToLive.components.attoseconds) / 1e18
    }

    private func remove(_ key: PageKey) {
        if let old = entries.removeValue(forKey: key) { bytes -= old.page.body.count }
    }

    /// Evicts the least recently used entries, a batch at a time, so eviction stays cheap on average.
    private func evictIfNeeded() {
        while entries.count > maximumEntries || bytes > maximumBytes {
            let victims = entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(max(1, entries.count / 10))
            for (key, _) in victims { remove(key) }
        }
    }
}
