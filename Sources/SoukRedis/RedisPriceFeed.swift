import Foundation
import NIOConcurrencyHelpers
import RESP
import SoukCore

/// The price log on a Redis stream: a batch is published with one script that appends its chunks
/// and moves the checkpoint together (so it is in the log whole or not at all, once), and appliers
/// read it through a consumer group, taking over what a dead applier left pending.
public struct RedisPriceFeedLog: PriceFeedLog {
    let redis: RedisClient
    let chunkSize: Int
    let claimIdle: Duration
    private let lastTrim = NIOLockedValueBox(ContinuousClock.now)

    public init(redis: RedisClient, chunkSize: Int = 1_000, claimIdle: Duration = .seconds(2)) {
        self.redis = redis
        self.chunkSize = chunkSize
        self.claimIdle = claimIdle
    }

    public func checkpoint(source: String) async throws -> Int64? {
        try await redis.hget(RedisKeys.feedCheckpoints, source).flatMap { Int64($0) }
    }

    public func publish(_ batch: PriceBatch) async throws -> Bool {
        let chunks = stride(from: 0, to: batch.ticks.count, by: chunkSize).map {
            PriceTickCoding.encode(batch.ticks[$0..<min($0 + chunkSize, batch.ticks.count)])
        }
        let reply = try await redis.evalsha(
            Self.publishScript, keys: [RedisKeys.feedLog, RedisKeys.feedCheckpoints],
            arguments: [batch.source, String(batch.interval)] + chunks)
        return reply.int == 1
    }

    public func read(consumer: String, count: Int, wait: Duration) async throws -> [PriceLogEntry] {
        do {
            return try await readGroup(consumer: consumer, count: count, wait: wait)
        } catch let error as RESPServerError where error.code == "NOGROUP" {
            try await redis.xgroupCreate(RedisKeys.feedLog, group: RedisKeys.feedGroup, startingAt: "0")
            return try await readGroup(consumer: consumer, count: count, wait: wait)
        }
    }

    private func readGroup(consumer: String, count: Int, wait: Duration) async throws -> [PriceLogEntry] {
        // A dead applier's entries first, so that the log is applied in order as far as possible.
        var entries = try await redis.xautoclaim(RedisKeys.feedLog, group: RedisKeys.feedGroup, consumer: consumer, minIdle: claimIdle, count: count).entries
        if entries.isEmpty {
            entries = try await redis.xreadgroup(group: RedisKeys.feedGroup, consumer: consumer, stream: RedisKeys.feedLog, count: count, block: wait)
        }
        return try entries.map(Self.entry)
    }

    public func acknowledge(_ entries: [PriceLogEntry]) async throws {
        try await redis.xack(RedisKeys.feedLog, group: RedisKeys.feedGroup, ids: entries.map(\.id))
        let due = lastTrim.withLockedValue { last in
            guard ContinuousClock.now - last > .seconds(1) else { return false }
            last = .now
            return true
        }
        if due { _ = try await redis.evalsha(Self.trimScript, keys: [RedisKeys.feedLog], arguments: []) }
    }

    static func entry(_ entry: RedisStreamEntry) throws -> PriceLogEntry {
        guard let source = entry["source"], let interval = entry["interval"].flatMap({ Int64($0) }),
              let ticks = entry["ticks"].flatMap(PriceTickCoding.decode)
        else { throw RedisClientError(.unexpectedReply, "malformed price log entry \(entry.id)") }
        return PriceLogEntry(id: entry.id, source: source, interval: interval, ticks: ticks)
    }

    /// KEYS: log, checkpoints. ARGV: source, interval, chunk… Returns 1 when published, 0 when the
    /// interval is at or before the source's checkpoint.
    static let publishScript = RedisScript("""
        local checkpoint = redis.call('HGET', KEYS[2], ARGV[1])
        if checkpoint and tonumber(checkpoint) >= tonumber(ARGV[2]) then return 0 end
        for i = 3, #ARGV do
            redis.call('XADD', KEYS[1], '*', 'source', ARGV[1], 'interval', ARGV[2], 'ticks', ARGV[i])
        end
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        return 1
        """)

    /// Drops the entries that every group has acknowledged: those before the oldest pending entry,
    /// or before the last delivered one when nothing is pending.
    static let trimScript = RedisScript("""
        local function before(a, b)
            local am, as = string.match(a, '(%d+)-(%d+)')
            local bm, bs = string.match(b, '(%d+)-(%d+)')
            am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
            return am < bm or (am == bm and as < bs)
        end
        local keep = nil
        for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
            local fields = {}
            for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
            local oldest = fields['last-delivered-id']
            if tonumber(fields['pending']) > 0 then
                oldest = redis.call('XPENDING', KEYS[1], fields['name'], '-', '+', 1)[1][1]
            end
            if keep == nil or before(oldest, keep) then keep = oldest end
        end
        if keep == nil or keep == '0-0' then return 0 end
        return redis.call('XTRIM', KEYS[1], 'MINID', keep)
        """)
}

/// Per-item price lists in Redis sorted sets, trimmed to `retention` before each item's newest
/// tick. Ranges older than that are read from `archive` (the SQL history).
public struct RedisPriceHistory: PriceHistory {
    let redis: RedisClient
    let retention: Duration
    let archive: (any PriceHistory)?

    public init(redis: RedisClient, retention: Duration = .seconds(7 * 24 * 3600), archive: (any PriceHistory)? = nil) {
        self.redis = redis
        self.retention = retention
        self.archive = archive
    }

    var retentionMilliseconds: Int64 { FeedSchedule(length: retention).length }

    public func apply(_ ticks: [PriceTick]) async throws {
        for start in stride(from: 0, to: ticks.count, by: 1_000) {
            let chunk = ticks[start..<min(start + 1_000, ticks.count)]
            _ = try await redis.evalsha(
                Self.applyScript, keys: chunk.map { RedisKeys.priceList($0.item) },
                arguments: [String(retentionMilliseconds)] + chunk.flatMap { [String($0.at), String($0.priceMinor)] })
        }
    }

    public func ticks(item: String, from: Int64, to: Int64, limit: Int) async throws -> [PriceTick] {
        if let archive, from < FeedSchedule.now() - retentionMilliseconds {
            return try await archive.ticks(item: item, from: from, to: to, limit: limit)
        }
        return try await listRange(item: item, from: from, to: to, limit: limit)
    }

    public func latest(item: String) async throws -> PriceTick? {
        try await listRange(item: item, from: 0, to: .max, limit: 1).last
    }

    func listRange(item: String, from: Int64, to: Int64, limit: Int) async throws -> [PriceTick] {
        let reply = try await redis.execute(RESPCommand("ZRANGE", [RedisKeys.priceList(item), String(to), String(from), "BYSCORE", "REV", "LIMIT", "0", String(limit)]))
        guard let members = reply.elements else { throw RedisClientError(.unexpectedReply, "ZRANGE returned \(reply)") }
        return try members.reversed().map { member in
            guard let text = member.string, let tick = Self.tick(item: item, member: text) else {
                throw RedisClientError(.unexpectedReply, "malformed price list member in \(item)")
            }
            return tick
        }
    }

    static func tick(item: String, member: String) -> PriceTick? {
        let parts = member.split(separator: ":")
        guard parts.count == 2, let at = Int64(parts[0]), let price = Int64(parts[1]) else { return nil }
        return PriceTick(item: item, at: at, priceMinor: price)
    }

    /// KEYS: one price list per tick. ARGV: retention (ms), then each tick's time and price. A
    /// tick replaces whatever the list had at its time, so applying it again changes nothing.
    static let applyScript = RedisScript("""
        local retention = tonumber(ARGV[1])
        for i = 1, #KEYS do
            local at = ARGV[2 * i]
            redis.call('ZREMRANGEBYSCORE', KEYS[i], at, at)
            redis.call('ZADD', KEYS[i], at, at .. ':' .. ARGV[2 * i + 1])
            redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. string.format('%d', tonumber(at) - retention))
        end
        return #KEYS
        """)
}
