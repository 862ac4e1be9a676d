import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RESP
import SoukCore

/// The production admission gate: one Lua script per attempt decides atomically (window, the
/// buyer's count, stock), decrements, records the buyer and appends the order to the sale's
/// stream. Redis runs with AOF, so an answered admission survives a Redis crash; workers persist
/// the stream to the database. Once a sale is sold out, this process answers further attempts from
/// memory without touching Redis.
public final class RedisFlashSaleGate: FlashSaleGate, EventLoopAdmissionGate {
    let redis: RedisClient
    let store: any FlashSaleStore
    /// Sales this process has seen sold out, with every admitted order for idempotent retries.
    private let soldOut = NIOLockedValueBox<[Int64: [String: String]]>([:])

    public init(redis: RedisClient, store: any FlashSaleStore) {
        self.redis = redis
        self.store = store
    }

    public static let admitScript = RedisScript("""
        local meta = redis.call('HMGET', KEYS[1], 'starts', 'ends', 'limit')
        if not meta[1] then return {'unprepared'} end
        local field = ARGV[1] .. '|' .. ARGV[2]
        local existing = redis.call('HGET', KEYS[4], field)
        if existing then return {'admitted', existing, '1'} end
        local now = tonumber(ARGV[3])
        if now < tonumber(meta[1]) then return {'not_started'} end
        if now >= tonumber(meta[2]) then return {'ended'} end
        local count = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
        if count >= tonumber(meta[3]) then return {'limit_reached'} end
        local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
        if stock <= 0 then return {'sold_out'} end
        redis.call('DECR', KEYS[2])
        local n = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
        local order = ARGV[4] .. '-' .. ARGV[1] .. '-' .. n
        redis.call('HSET', KEYS[4], field, order)
        redis.call('XADD', KEYS[5], '*', 'order', order, 'buyer', ARGV[1], 'n', n, 'key', ARGV[2], 'at', ARGV[3])
        return {'admitted', order, '0'}
        """)

    /// Loads a sale into Redis unless it is there: its terms, the stock left and the buyers and
    /// orders already persisted (so a Redis that lost its data is rebuilt from the database).
    public static let prepareScript = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('HSET', KEYS[1], 'starts', ARGV[1], 'ends', ARGV[2], 'limit', ARGV[3], 'quantity', ARGV[4])
        redis.call('SET', KEYS[2], ARGV[5])
        local i = 6
        while i + 3 <= #ARGV do
            redis.call('HSET', KEYS[4], ARGV[i] .. '|' .. ARGV[i + 1], ARGV[i + 2])
            local n = tonumber(ARGV[i + 3])
            if n > tonumber(redis.call('HGET', KEYS[3], ARGV[i]) or '0') then redis.call('HSET', KEYS[3], ARGV[i], n) end
            i = i + 4
        end
        return 1
        """)

    public func settledAdmission(_ sale: FlashSale, buyerID: String, requestKey: String, now: Date) -> Admission? {
        guard let orders = soldOut.withLockedValue({ $0[sale.id] }) else { return nil }
        if let order = orders[buyerID + "|" + requestKey] { return .admitted(orderID: order, repeated: true) }
        return now >= sale.endsAt ? .ended : .soldOut
    }

    public func hasSettledAdmissions(saleID: Int64) -> Bool {
        soldOut.withLockedValue { $0[saleID] != nil }
    }

    public func admit(_ sale: FlashSale, buyerID: String, requestKey: String, now: Date) async throws -> Admission {
        if let settled = settledAdmission(sale, buyerID: buyerID, requestKey: requestKey, now: now) { return settled }
        if now < sale.startsAt { return .notStarted }
        let command = Self.admitCommand(sale, buyerID: buyerID, requestKey: requestKey, now: now)
        var admission = try Self.admission(from: try await redis.evalsha(Self.admitScript, keys: command.keys, arguments: command.arguments))
        if admission == nil {
            try await prepare(sale)
            admission = try Self.admission(from: try await redis.evalsha(Self.admitScript, keys: command.keys, arguments: command.arguments))
        }
        guard let admission else { throw RedisClientError(.unexpectedReply, "the sale is still not in Redis after preparing it") }
        if admission == .soldOut {
            try await rememberSoldOut(sale)
            if let order = soldOut.withLockedValue({ $0[sale.id]?[buyerID + "|" + requestKey] }) {
                return .admitted(orderID: order, repeated: true)
            }
        }
        return admission
    }

    /// The same decision with the script sent on `eventLoop`'s own connection and its reply read
    /// there, for an answer given without a task (Souk's admission lane). Nil when that connection
    /// is not open yet; the future gives nil whenever only ``admit(_:buyerID:requestKey:now:)`` can
    /// decide (a sale not loaded into Redis, the script not loaded, a failed connection), and that
    /// decides the same: the script admits a buyer and key once, and says so again to a retry.
    public func admit(_ sale: FlashSale, buyerID: String, requestKey: String, now: Date, on eventLoop: any EventLoop) -> EventLoopFuture<Admission?>? {
        if now < sale.startsAt { return eventLoop.makeSucceededFuture(.notStarted) }
        guard let connection = redis.connection(on: eventLoop) else { return nil }
        let (keys, arguments) = Self.admitCommand(sale, buyerID: buyerID, requestKey: requestKey, now: now)
        let command = RESPCommand("EVALSHA", [Self.admitScript.sha1, String(keys.count)] + keys + arguments)
        return connection.submit([command]).map { [self] replies -> Admission? in
            guard let reply = replies.first?.value, let admission = try? Self.admission(from: reply) else { return nil }
            if admission == .soldOut {
                // Later attempts are answered from memory once this has loaded the sale's orders.
                Task { try? await rememberSoldOut(sale) }
            }
            return admission
        }.recover { _ in nil }
    }

    /// The keys and arguments of the admission script for one attempt.
    static func admitCommand(_ sale: FlashSale, buyerID: String, requestKey: String, now: Date) -> (keys: [String], arguments: [String]) {
        (RedisKeys.sale(sale.id).all, [buyerID, requestKey, String(Int64(now.timeIntervalSince1970 * 1_000)), String(sale.id)])
    }

    /// The decision in the admission script's reply; nil when the sale is not in Redis yet.
    static func admission(from reply: RESPValue) throws -> Admission? {
        if case .error(let error) = reply { throw error }
        guard let parts = reply.elements, let outcome = parts.first?.string else {
            throw RedisClientError(.unexpectedReply, "admission script returned \(reply)")
        }
        switch outcome {
        case "admitted":
            guard parts.count >= 3, let order = parts[1].string else { throw RedisClientError(.unexpectedReply, "admission without an order id") }
            return .admitted(orderID: order, repeated: parts[2].string == "1")
        case "unprepared": return nil
        case "sold_out": return .soldOut
        case "limit_reached": return .limitReached
        case "not_started": return .notStarted
        case "ended": return .ended
        default: throw RedisClientError(.unexpectedReply, "admission script returned \(outcome)")
        }
    }

    public func admittedCount(_ sale: FlashSale) async throws -> Int {
        if soldOut.withLockedValue({ $0[sale.id] != nil }) { return sale.quantity }
        guard let stock = try await redis.getString(RedisKeys.sale(sale.id).stock).flatMap(Int.init) else {
            return sale.sold  // not prepared yet: nothing admitted beyond what is persisted
        }
        return sale.quantity - stock
    }

    /// Puts the sale into Redis (idempotent) and registers its stream with the workers.
    public func prepare(_ sale: FlashSale) async throws {
        let keys = RedisKeys.sale(sale.id)
        let persisted = try await store.allAdmittedOrders(saleID: sale.id)
        var arguments = [
            String(Int64(sale.startsAt.timeIntervalSince1970 * 1_000)), String(Int64(sale.endsAt.timeIntervalSince1970 * 1_000)),
            String(sale.perBuyerLimit), String(sale.quantity), String(sale.quantity - persisted.count),
        ]
        for order in persisted { arguments += [order.buyerID, order.requestKey, order.orderID, String(order.n)] }
        _ = try await redis.evalsha(Self.prepareScript, keys: keys.all, arguments: arguments)
        _ = try await redis.xgroupCreate(keys.admitted, group: RedisKeys.persisterGroup, startingAt: "0")
        try await redis.sadd(RedisKeys.flashSales, [String(sale.id)])
    }

    /// Loads every admitted order of a sold-out sale once, so later attempts stay in this process.
    private func rememberSoldOut(_ sale: FlashSale) async throws {
        guard soldOut.withLockedValue({ $0[sale.id] == nil }) else { return }
        let orders = try await redis.hgetall(RedisKeys.sale(sale.id).orders)
        soldOut.withLockedValue { $0[sale.id] = orders }
    }
}
