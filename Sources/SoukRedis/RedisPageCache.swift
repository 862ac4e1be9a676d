import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RESP
import SoukCore

/// Store pages in Redis, shared by every instance. Versions are counters that never go back: a
/// missing counter (a Redis that lost its data) restarts at a random value, so a page cached
/// anywhere under an old version can never match again.
public struct RedisPageCache: PageCache, EventLoopPageCache {
    let redis: RedisClient
    public let timeToLive: Duration
    private let reads = TurnReads()

    public init(redis: RedisClient, timeToLive: Duration = .seconds(15 * 60)) {
        self.redis = redis
        self.timeToLive = timeToLive
    }

    public func version(of vendorID: Int64) async throws -> UInt64 {
        let key = RedisKeys.storeVersion(vendorID)
        if let value = try await redis.getString(key), let version = UInt64(value) { return version }
        try await redis.set(key, String(UInt64.random(in: 1...(1 << 52))), onlyIfAbsent: true)
        guard let value = try await redis.getString(key), let version = UInt64(value) else {
            throw RedisClientError(.unexpectedReply, "store version of \(vendorID) vanished")
        }
        return version
    }

    public func page(_ key: PageKey, version: UInt64) async throws -> CachedPage? {
        Self.decode(try await redis.get(RedisKeys.storePage(key.vendorID, variant: key.variant)), version: version, timeToLive: timeToLive)
    }

    /// The version and the page in one round trip: both GETs go out in one pipelined write.
    public func lookup(_ key: PageKey) async throws -> (version: UInt64, page: CachedPage?) {
        let replies = try await redis.pipeline([
            RESPCommand("GET", [RedisKeys.storeVersion(key.vendorID)]),
            RESPCommand("GET", [RedisKeys.storePage(key.vendorID, variant: key.variant)]),
        ])
        guard let version = replies[0].string.flatMap(UInt64.init) else {
            let version = try await version(of: key.vendorID)
            return (version, nil)
        }
        guard case .bulkString(let buffer) = replies[1] else { return (version, nil) }
        return (version, Self.decode(buffer, version: version, timeToLive: timeToLive))
    }

    /// The current page read on `eventLoop`: the version and the page in one pipelined write on that
    /// loop's own connection. Visitors of the same page in one turn of the loop share one read, made
    /// after each of them arrived, so none gets a page older than its request.
    public func currentPage(_ key: PageKey, on eventLoop: any EventLoop) -> EventLoopFuture<CachedPage?>? {
        guard let connection = redis.connection(on: eventLoop) else { return nil }
        return reads.join(key, on: eventLoop) { [timeToLive] in
            connection.submit([
                RESPCommand("GET", [RedisKeys.storeVersion(key.vendorID)]),
                RESPCommand("GET", [RedisKeys.storePage(key.vendorID, variant: key.variant)]),
            ]).map { replies -> CachedPage? in
                // No version yet: the router creates it (and renders).
                guard replies.count == 2, let version = replies[0].value.string.flatMap(UInt64.init),
                      case .bulkString(let buffer) = replies[1].value
                else { return nil }
                return Self.decode(buffer, version: version, timeToLive: timeToLive)
            }.recover { _ in nil }
        }
    }

    /// Reads waiting for the end of their event loop's turn, one per page.
    final class TurnReads: Sendable {
        private let waiting = NIOLockedValueBox<[ObjectIdentifier: [PageKey: EventLoopPromise<CachedPage?>]]>([:])

        func join(_ key: PageKey, on eventLoop: any EventLoop, read: @escaping @Sendable () -> EventLoopFuture<CachedPage?>) -> EventLoopFuture<CachedPage?> {
            let loop = ObjectIdentifier(eventLoop)
            let (promise, isNew) = waiting.withLockedValue { waiting -> (EventLoopPromise<CachedPage?>, Bool) in
                if let existing = waiting[loop]?[key] { return (existing, false) }
                let promise = eventLoop.makePromise(of: CachedPage?.self)
                waiting[loop, default: [:]][key] = promise
                return (promise, true)
            }
            if isNew {
                // The read goes out once the loop has handled what it read in this turn.
                promise.completeWith(eventLoop.submit { () }.flatMap { [waiting] in
                    _ = waiting.withLockedValue { $0[loop]?.removeValue(forKey: key) }
                    return read()
                })
            }
            return promise.futureResult
        }
    }

    /// One key per page holds the latest rendering with the version it was rendered at; a reader
    /// takes it only when that version is the current one.
    static func decode(_ stored: ByteBuffer?, version: UInt64, timeToLive: Duration) -> CachedPage? {
        guard var buffer = stored else { return nil }
        // Stored as: version, newline, created-at milliseconds, newline, slot offsets (comma-separated, or
        // -1 for none), newline, ETag, newline, body.
        guard let versionEnd = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")),
              buffer.readString(length: versionEnd - buffer.readerIndex).flatMap({ UInt64($0) }) == version,
              buffer.readInteger(as: UInt8.self) != nil,
              let header = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")),
              let millis = buffer.readString(length: header - buffer.readerIndex).flatMap({ Int64($0) }),
              buffer.readInteger(as: UInt8.self) != nil,
              let slotEnd = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")),
              let slots = buffer.readString(length: slotEnd - buffer.readerIndex).flatMap(Self.slots(from:)),
              buffer.readInteger(as: UInt8.self) != nil,
              let etagEnd = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")),
              let etag = buffer.readString(length: etagEnd - buffer.readerIndex),
              buffer.readInteger(as: UInt8.self) != nil
        else { return nil }
        let createdAt = Date(timeIntervalSince1970: Double(millis) / 1_000)
        let limit = Double(timeToLive.components.seconds) + Double(timeToLive.components.attoseconds) / 1e18
        guard Date().timeIntervalSince(createdAt) < limit else { return nil }
        return CachedPage(body: Array(buffer.readableBytesView), etag: etag, createdAt: createdAt, slots: slots)
    }

    /// "12,480" as [12, 480]; "-1" (none) as []; nil for anything else.
    static func slots(from text: String) -> [Int]? {
        if text == "-1" { return [] }
        var slots: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let offset = Int(part), offset >= 0 else { return nil }
            slots.append(offset)
        }
        return slots
    }

    public func store(_ page: CachedPage, for key: PageKey, version: UInt64) async throws {
        var buffer = ByteBuffer()
        buffer.writeString("\(version)\n\(Int64(page.createdAt.timeIntervalSince1970 * 1_000))\n\(page.slots.isEmpty ? "-1" : page.slots.map(String.init).joined(separator: ","))\n\(page.etag)\n")
        buffer.writeBytes(page.body)
        try await redis.set(RedisKeys.storePage(key.vendorID, variant: key.variant), buffer, expire: timeToLive)
    }

    public func invalidate(vendorID: Int64) async throws {
        // Make sure the counter exists first, so INCR never starts a fresh counter at 1.
        _ = try await version(of: vendorID)
        let replies = try await redis.pipeline([
            RESPCommand("INCR", [RedisKeys.storeVersion(vendorID)]),
            RESPCommand("PUBLISH", [RedisKeys.storeInvalidations, String(vendorID)]),
        ])
        for reply in replies { if case .error(let error) = reply { throw error } }
    }
}

/// The production cache: the version comes from Redis on every read (one round trip, so an
/// instance can never serve a page older than the latest committed change), and the page bytes
/// come from this process's memory when it already has that version, else from Redis.
public final class TwoLayerPageCache: PageCache {
    public let local: InProcessPageCache
    public let remote: RedisPageCache

    public init(local: InProcessPageCache, remote: RedisPageCache) {
        self.local = local
        self.remote = remote
    }

    public func version(of vendorID: Int64) async throws -> UInt64 {
        try await remote.version(of: vendorID)
    }

    public func page(_ key: PageKey, version: UInt64) async throws -> CachedPage? {
        if let page = try await local.page(key, version: version) { return page }
        guard let page = try await remote.page(key, version: version) else { return nil }
        try await local.store(page, for: key, version: version)
        return page
    }

    public func store(_ page: CachedPage, for key: PageKey, version: UInt64) async throws {
        try await local.store(page, for: key, version: version)
        try await remote.store(page, for: key, version: version)
    }

    public func invalidate(vendorID: Int64) async throws {
        local.evict(vendorID: vendorID)
        try await remote.invalidate(vendorID: vendorID)
    }

    /// Frees this process's copies as other instances announce changes. Correctness does not depend
    /// on it (versions do); it keeps memory for pages that can no longer be served short.
    public func listenForInvalidations() async {
        for await event in RedisSubscription.subscribe(remote.redis, channels: [RedisKeys.storeInvalidations]) {
            switch event {
            case .message(_, let payload):
                if let vendorID = Int64(payload) { local.evict(vendorID: vendorID) }
            case .resubscribed:
                local.removeAll()
            case .subscribed:
                break
            }
        }
    }
}

/// Login sessions in Redis, so every instance sees them and they expire on their own.
public struct RedisSessionStore: SessionStore {
    let redis: RedisClient
    let vendors: any VendorStore

    public init(redis: RedisClient, vendors: any VendorStore) {
        self.redis = redis
        self.vendors = vendors
    }

    public func createSession(tokenHash: String, vendorID: Int64, expiresAt: Date) async throws {
        let lifetime = Duration.milliseconds(max(1, Int64(expiresAt.timeIntervalSinceNow * 1_000)))
        try await redis.set(RedisKeys.session(tokenHash), String(vendorID), expire: lifetime)
    }

    public func vendor(sessionTokenHash: String, now: Date) async throws -> Vendor? {
        guard let value = try await redis.getString(RedisKeys.session(sessionTokenHash)), let id = Int64(value) else { return nil }
        return try await vendors.vendor(id: id)
    }

    public func deleteSession(tokenHash: String) async throws {
        try await redis.del([RedisKeys.session(tokenHash)])
    }
}
