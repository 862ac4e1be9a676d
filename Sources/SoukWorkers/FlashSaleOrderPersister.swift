import Foundation
import Logging
import RESP
import ServiceLifecycle
import SoukCore
import SoukRedis
import CoreMetrics

/// A worker of the `persisters` consumer group: reads admitted orders from every sale's stream,
/// writes them to the database in batches (one statement per batch, idempotent by order id) and
/// acknowledges them only after the commit. Entries a dead worker left pending are claimed after
/// `claimIdle`. An entry is never skipped: a failing batch is retried with backoff, and an entry
/// that still fails on its own is moved to the sale's dead-letter stream with the reason.
public struct FlashSaleOrderPersister: Service {
    let redis: RedisClient
    let store: any FlashSaleStore
    let consumer: String
    let batchSize: Int
    let claimIdle: Duration
    let logger: Logger

    public init(redis: RedisClient, store: any FlashSaleStore, consumer: String, batchSize: Int = 500, claimIdle: Duration = .seconds(5), logger: Logger) {
        self.redis = redis
        self.store = store
        self.consumer = consumer
        self.batchSize = batchSize
        self.claimIdle = claimIdle
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await consume()
                } catch is CancellationError {
                    return
                } catch {
                    failures += 1
                    logger.warning("flash-sale persister restarting", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                    try? await Task.sleep(for: min(.seconds(2), .milliseconds(50) * (1 << min(failures, 6))))
                }
            }
        }
    }

    /// Reads and persists until cancelled or until the connection fails.
    func consume() async throws {
        try await redis.withDedicatedConnection { connection in
            var known: Set<String> = []
            var streams: [String] = []
            var lastRefresh = ContinuousClock.now - .seconds(10)
            var lastClaim = ContinuousClock.now
            while !Task.isCancelled {
                if ContinuousClock.now - lastRefresh > .milliseconds(500) {
                    let ids = try await redis.smembers(RedisKeys.flashSales).compactMap(Int64.init).sorted()
                    streams = ids.map { RedisKeys.sale($0).admitted }
                    for stream in streams where !known.contains(stream) {
                        try await redis.xgroupCreate(stream, group: RedisKeys.persisterGroup, startingAt: "0")
                        known.insert(stream)
                    }
                    lastRefresh = .now
                }
                guard !streams.isEmpty else {
                    try await Task.sleep(for: .milliseconds(200))
                    continue
                }
                var batches = try await RedisClient.xreadgroup(
                    on: connection, group: RedisKeys.persisterGroup, consumer: consumer, streams: streams, count: batchSize, block: .milliseconds(200))
                if ContinuousClock.now - lastClaim > claimIdle / 2 {
                    for stream in streams {
                        let claimed = try await redis.xautoclaim(stream, group: RedisKeys.persisterGroup, consumer: consumer, minIdle: claimIdle, count: batchSize)
                        if !claimed.entries.isEmpty {
                            logger.info("claimed entries of a dead worker", metadata: ["stream": "\(stream)", "count": "\(claimed.entries.count)"])
                            batches[stream, default: []] += claimed.entries
                        }
                    }
                    lastClaim = .now
                }
                for (stream, entries) in batches where !entries.isEmpty {
                    try await persist(entries, from: stream)
                }
            }
        }
    }

    /// Persists one stream's entries and acknowledges them after the commit.
    func persist(_ entries: [RedisStreamEntry], from stream: String) async throws {
        var orders: [(String, AdmittedOrder)] = []
        for entry in entries {
            if let order = Self.order(from: entry, stream: stream) {
                orders.append((entry.id, order))
            } else {
                try await deadLetter(entry, from: stream, reason: "malformed entry: \(entry.fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))")
            }
        }
        guard !orders.isEmpty else { return }
        var attempt = 0
        while true {
            do {
                try await store.persistAdmitted(orders.map(\.1))
                try await redis.xack(stream, group: RedisKeys.persisterGroup, ids: orders.map(\.0))
                return
            } catch {
                attempt += 1
                logger.warning("persisting admitted orders failed", metadata: ["stream": "\(stream)", "attempt": "\(attempt)", "error": "\(String(reflecting: error))"])
                if attempt >= 5 { break }
                try await Task.sleep(for: .milliseconds(100) * (1 << attempt))
            }
        }
        // The batch keeps failing: find the entries that fail alone; the others go in.
        for (id, order) in orders {
            do {
                try await store.persistAdmitted([order])
                try await redis.xack(stream, group: RedisKeys.persisterGroup, ids: [id])
            } catch {
                try await deadLetter(RedisStreamEntry(id: id, fields: [("order", order.orderID), ("buyer", order.buyerID)]), from: stream, reason: "\(error)")
            }
        }
    }

    /// Moves an entry to the dead-letter stream with the reason and acknowledges it, atomically and
    /// once (an entry redelivered after a lost reply is not dead-lettered twice), and raises the alarm.
    func deadLetter(_ entry: RedisStreamEntry, from stream: String, reason: String) async throws {
        let fields = entry.fields + [("entry", entry.id), ("reason", reason)]
        guard let sale = RedisKeys.Sale(admittedStream: stream) else { throw RedisClientError(.unexpectedReply, "\(stream) is not a sale's stream") }
        _ = try await redis.evalsha(
            Self.deadLetterScript,
            keys: [sale.deadLetters, sale.deadLetterIDs, stream],
            arguments: [entry.id, RedisKeys.persisterGroup] + fields.flatMap { [$0.0, $0.1] })
        Counter(label: "souk_flash_sale_dead_letters_total").increment()
        logger.error("admitted order dead-lettered", metadata: ["stream": "\(stream)", "entry": "\(entry.id)", "reason": "\(reason)"])
    }

    static let deadLetterScript = RedisScript("""
        if redis.call('HSETNX', KEYS[2], ARGV[1], '1') == 1 then
            redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
        end
        return redis.call('XACK', KEYS[3], ARGV[2], ARGV[1])
        """)

    /// The admitted order an entry of a sale's stream describes, or nil when it is malformed.
    public static func order(from entry: RedisStreamEntry, stream: String) -> AdmittedOrder? {
        guard let order = entry["order"], let buyer = entry["buyer"], let n = entry["n"].flatMap(Int.init),
              let key = entry["key"], let at = entry["at"].flatMap(Int64.init),
              let saleID = RedisKeys.Sale(admittedStream: stream)?.id
        else { return nil }
        return AdmittedOrder(orderID: order, saleID: saleID, buyerID: buyer, n: n, requestKey: key, admittedAt: Date(timeIntervalSince1970: Double(at) / 1_000))
    }
}
