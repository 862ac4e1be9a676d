import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RESP
import SoukCore

/// The production admission gate: one Lua script per attempt decides atomically (the purchase rate
/// limits, window, the buyer's count, stock), decrements, records the buyer and appends the order to the sale's
/// stream. Redis runs with AOF, so an answered admission survives a Redis crash; workers persist
/// the stream to the database. Once a sale is sold out, this process answers further attempts from
/// memory without touching Redis.
public final class RedisFlashSaleGate: FlashSaleGate, EventLoopAdmissionGate {
    let redis: RedisClient
    let store: any FlashSaleStore
    /// Sales this process has seen sold out, with every admitted order for idempotent retries.
    private let soldOut = NIOLockedValueBox(SoldOutMemory())

    public init(redis: RedisClient, store: any FlashSaleStore) {
        self.redis = redis
        self.store = store
    }

    /// ARGV: now (ms), then per attempt a buyer, an idempotency key, the order id to give it if it
    /// is admitted (new and random: ids are not guessable), the number of its rate limits and each
    /// limit's interval and window (ms); KEYS: the sale's keys, then each attempt's rate-limit keys.
    /// One result per attempt, in order, each decided as if alone and after the ones before it (a
    /// batch is as atomic as one attempt: it is one script). An attempt is counted under its limits
    /// first (GCRA, as ``RedisRateLimiter``, on the Redis server's clock): over any of them it is
    /// `limited` with the wait in ms and counts under none; otherwise it is decided.
    public static let admitScript = RedisScript("""
        local meta = redis.call('HMGET', KEYS[1], 'starts', 'ends', 'limit')
        local results = {}
        local i = 2
        if not meta[1] then
            while i <= #ARGV do
                results[#results + 1] = {'unprepared'}
                i = i + 4 + 2 * tonumber(ARGV[i + 3])
            end
            return results
        end
        local now, starts, ends, limit = tonumber(ARGV[1]), tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3])
        local left = tonumber(redis.call('GET', KEYS[2]) or '0')
        local taken, clock, arrivals, changed = 0, nil, {}, {}
        local k = 6
        while i <= #ARGV do
            local buyer, key, order, checks = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
            if checks > 0 and not clock then
                local time = redis.call('TIME')
                clock = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
            end
            local wait, next = 0, {}
            for c = 0, checks - 1 do
                local tat = arrivals[KEYS[k + c]] or tonumber(redis.call('GET', KEYS[k + c]) or clock)
                if tat < clock then tat = clock end
                next[c + 1] = tat + tonumber(ARGV[i + 4 + 2 * c])
                local excess = next[c + 1] - clock - tonumber(ARGV[i + 5 + 2 * c])
                if excess > wait then wait = excess end
            end
            if wait > 0 then results[#results + 1] = {'limited', wait}
            else
                for c = 0, checks - 1 do
                    arrivals[KEYS[k + c]] = next[c + 1]
                    changed[KEYS[k + c]] = true
                end
                local field = buyer .. '|' .. key
                local existing = redis.call('HGET', KEYS[4], field)
                if existing then results[#results + 1] = {'admitted', existing, '1'}
                elseif now < starts then results[#results + 1] = {'not_started'}
                elseif now >= ends then results[#results + 1] = {'ended'}
                elseif tonumber(redis.call('HGET', KEYS[3], buyer) or '0') >= limit then results[#results + 1] = {'limit_reached'}
                elseif left - taken <= 0 then results[#results + 1] = {'sold_out'}
                else
                    taken = taken + 1
                    local n = redis.call('HINCRBY', KEYS[3], buyer, 1)
                    local held = order .. ':' .. ARGV[1]
                    redis.call('HSET', KEYS[4], field, held)
                    redis.call('XADD', KEYS[5], '*', 'order', order, 'buyer', buyer, 'n', n, 'key', key, 'at', ARGV[1])
                    results[#results + 1] = {'admitted', held, '0'}
                end
            end
            k = k + checks
            i = i + 4 + 2 * checks
        end
        if taken > 0 then redis.call('DECRBY', KEYS[2], taken) end
        for rate in pairs(changed) do redis.call('SET', rate, arrivals[rate], 'PX', arrivals[rate] - clock) end
        return results
        """)

    /// Loads a sale into Redis unless it is there: its terms, the stock left and the buyers and
    /// orders already persisted (so a Redis that lost its data is rebuilt from the database), with
    /// the expired ones among them marked released (their units are in the stock already).
    /// KEYS: the sale's keys, then its released set; ARGV: the terms, the stock, then per order
    /// buyer, key, order id, n, 1 when it expired, and when it was admitted (Unix milliseconds).
    public static let prepareScript = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('HSET', KEYS[1], 'starts', ARGV[1], 'ends', ARGV[2], 'limit', ARGV[3], 'quantity', ARGV[4])
        redis.call('SET', KEYS[2], ARGV[5])
        local i = 6
        while i + 5 <= #ARGV do
            redis.call('HSET', KEYS[4], ARGV[i] .. '|' .. ARGV[i + 1], ARGV[i + 2] .. ':' .. ARGV[i + 5])
            local n = tonumber(ARGV[i + 3])
            if n > tonumber(redis.call('HGET', KEYS[3], ARGV[i]) or '0') then redis.call('HSET', KEYS[3], ARGV[i], n) end
            if ARGV[i + 4] == '1' then redis.call('SADD', KEYS[6], ARGV[i + 2]) end
            i = i + 6
        end
        return 1
        """)

    /// Gives expired holds' units back: each order id once (the released set remembers it), then
    /// announces the sale on ARGV[1] so every instance forgets it was sold out. KEYS: meta, stock,
    /// released; ARGV: the channel, the sale id, the order ids. -1 when the sale is not in Redis.
    public static let releaseScript = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
        local back = 0
        for i = 3, #ARGV do
            if redis.call('SADD', KEYS[3], ARGV[i]) == 1 then back = back + 1 end
        end
        if back > 0 then
            redis.call('INCRBY', KEYS[2], back)
            redis.call('PUBLISH', ARGV[1], ARGV[2])
        end
        return back
        """)

    public func release(_ sale: FlashSale, expiredOrderIDs: [String]) async throws {
        guard !expiredOrderIDs.isEmpty else { return }
        let keys = RedisKeys.sale(sale.id)
        let command = (keys: [keys.meta, keys.stock, keys.released], arguments: [RedisKeys.saleReleases, String(sale.id)] + expiredOrderIDs)
        var back = try await redis.evalsha(Self.releaseScript, keys: command.keys, arguments: command.arguments).int
        if back == -1 {
            // Not in Redis (it lost the sale): loading it from the database marks what expired
            // before the load; what expired after is released now.
            try await prepare(sale)
            back = try await redis.evalsha(Self.releaseScript, keys: command.keys, arguments: command.arguments).int
        }
        if (back ?? 0) > 0 { forgetSoldOut(saleID: sale.id) }
    }

    /// Forgets that the sale was sold out: expired holds gave units back.
    public func forgetSoldOut(saleID: Int64) {
        soldOut.withLockedValue { $0.forget(saleID) }
    }

    /// Follows the releases every instance announces, for as long as the task runs: a sale this
    /// process remembers as sold out is asked about again (after a lost subscription, every sale).
    public func listenForReleases() async {
        for await event in RedisSubscription.subscribe(redis, channels: [RedisKeys.saleReleases]) {
            switch event {
            case .message(_, let payload):
                if let saleID = Int64(payload) { forgetSoldOut(saleID: saleID) }
            case .resubscribed:
                soldOut.withLockedValue { $0.forgetAll() }
            case .subscribed:
                break
            }
        }
    }

    /// Moves a prepared sale's window to end at ARGV[1] (ms), and its start before it: the admission
    /// script answers "ended" from then on. A sale not in Redis is left alone (preparing it reads
    /// the window from the database).
    public static let endScript = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        local now = tonumber(ARGV[1])
        if tonumber(redis.call('HGET', KEYS[1], 'ends')) > now then redis.call('HSET', KEYS[1], 'ends', now) end
        if tonumber(redis.call('HGET', KEYS[1], 'starts')) >= now then redis.call('HSET', KEYS[1], 'starts', now - 1) end
        return 1
        """)

    public func end(_ sale: FlashSale, at now: Date) async throws {
        let keys = RedisKeys.sale(sale.id)
        _ = try await redis.evalsha(Self.endScript, keys: [keys.meta], arguments: [String(Int64(saturating: now.timeIntervalSince1970 * 1_000))])
    }

    public func settledAdmission(_ sale: FlashSale, buyerID: String, requestKey: String, now: Date) -> Admission? {
        guard let orders = soldOut.withLockedValue({ $0.orders[sale.id] }) else { return nil }
        if let order = orders[buyerID + "|" + requestKey].flatMap({ HeldOrder(encoded: $0, fallback: now) }) { return .admitted(order, repeated: true) }
        return now >= sale.endsAt ? .ended : .soldOut
    }

    public func hasSettledAdmissions(saleID: Int64) -> Bool {
        soldOut.withLockedValue { $0.orders[saleID] != nil }
    }

    public func admit(_ sale: FlashSale, buyerID: String, requestKey: String, limits: [RateCheck], now: Date) async throws -> Admission {
        if let settled = settledAdmission(sale, buyerID: buyerID, requestKey: requestKey, now: now) { return settled }
        if now < sale.startsAt { return .notStarted }
        let (keys, arguments) = Self.admitCommand(sale, [(buyerID, requestKey, limits)], now: now)
        var admission = try Self.admissions(from: try await redis.evalsha(Self.admitScript, keys: keys, arguments: arguments), count: 1)[0]
        if admission == nil {
            try await prepare(sale)
            admission = try Self.admissions(from: try await redis.evalsha(Self.admitScript, keys: keys, arguments: arguments), count: 1)[0]
        }
        guard let admission else { throw RedisClientError(.unexpectedReply, "the sale is still not in Redis after preparing it") }
        if admission == .soldOut {
            try await rememberSoldOut(sale)
            if let order = soldOut.withLockedValue({ $0.orders[sale.id]?[buyerID + "|" + requestKey] }).flatMap({ HeldOrder(encoded: $0, fallback: now) }) {
                return .admitted(order, repeated: true)
            }
        }
        return admission
    }

    /// The same decision made on `eventLoop`, for an answer given without a task (Souk's admission
    /// lane): the attempts one turn of the loop has read are sent together, one script call per
    /// sale on that loop's own connection, and the reply is read there. Nil when that connection is
    /// not open yet; the future gives nil whenever only ``admit(_:buyerID:requestKey:limits:now:)``
    /// can decide (a sale not loaded into Redis, the script not loaded, a failed connection), and
    /// that decides the same: the script admits a buyer and key once, and says so again to a retry.
    /// (Only a failed connection can leave an attempt counted under its limits by a script that ran
    /// and then counted again by the retry.)
    public func admit(_ sale: FlashSale, buyerID: String, requestKey: String, limits: [RateCheck], now: Date, on eventLoop: any EventLoop) -> EventLoopFuture<Admission?>? {
        if now < sale.startsAt { return eventLoop.makeSucceededFuture(.notStarted) }
        guard redis.connection(on: eventLoop) != nil else { return nil }
        let promise = eventLoop.makePromise(of: Admission?.self)
        let attempt = GatheredAttempt(sale: sale, buyerID: buyerID, requestKey: requestKey, limits: limits, promise: promise)
        gathered.add(attempt, under: sale.id, on: eventLoop) { [self] batches in sendGathered(batches, on: eventLoop) }
        return promise.futureResult
    }

    struct GatheredAttempt: Sendable {
        let sale: FlashSale
        let buyerID: String
        let requestKey: String
        let limits: [RateCheck]
        let promise: EventLoopPromise<Admission?>
    }

    /// Attempts per event loop and sale, waiting for the end of the loop's turn.
    private let gathered = TurnBatches<Int64, GatheredAttempt>()
    /// At most this many attempts in one script call, so Redis is never held long by one.
    static let maximumBatch = 64

    private func sendGathered(_ sales: [Int64: [GatheredAttempt]], on eventLoop: any EventLoop) {
        let connection = redis.connection(on: eventLoop)
        let now = Date()
        for attempts in sales.values {
            let sale = attempts[0].sale
            for start in stride(from: 0, to: attempts.count, by: Self.maximumBatch) {
                let batch = Array(attempts[start..<min(start + Self.maximumBatch, attempts.count)])
                guard let connection else {
                    for attempt in batch { attempt.promise.succeed(nil) }
                    continue
                }
                let (keys, arguments) = Self.admitCommand(sale, batch.map { ($0.buyerID, $0.requestKey, $0.limits) }, now: now)
                connection.submit([Self.admitScript.evalsha(keys: keys, arguments: arguments)]).whenComplete { [self] result in
                    let admissions = try? result.get().first.map { try Self.admissions(from: $0.value, count: batch.count) }
                    for (index, attempt) in batch.enumerated() {
                        attempt.promise.succeed(admissions?[index] ?? nil)
                    }
                    if admissions?.contains(.soldOut) == true {
                        // Later attempts are answered from memory once this has loaded the sale's orders.
                        Task { try? await rememberSoldOut(sale) }
                    }
                }
            }
        }
    }

    /// The keys and arguments of the admission script for attempts on one sale.
    static func admitCommand(_ sale: FlashSale, _ attempts: [(buyerID: String, requestKey: String, limits: [RateCheck])], now: Date) -> (keys: [String], arguments: [String]) {
        let saleKeys = RedisKeys.sale(sale.id)
        var keys = saleKeys.all
        var arguments = [String(Int64(now.timeIntervalSince1970 * 1_000))]
        arguments.reserveCapacity(1 + 8 * attempts.count)
        for (attempt, order) in zip(attempts, AdmittedOrder.newOrderIDs(attempts.count)) {
            arguments += [attempt.buyerID, attempt.requestKey, order, String(attempt.limits.count)]
            for check in attempt.limits {
                keys.append(saleKeys.rateLimit(check.key))
                arguments += [String(check.limit.intervalMilliseconds), String(check.limit.windowMilliseconds)]
            }
        }
        return (keys, arguments)
    }

    /// The decisions in the admission script's reply, one per attempt; nil where the sale is not in
    /// Redis yet.
    static func admissions(from reply: RESPValue, count: Int) throws -> [Admission?] {
        if case .error(let error) = reply { throw error }
        guard let results = reply.elements, results.count == count else {
            throw RedisClientError(.unexpectedReply, "admission script returned \(reply) for \(count) attempts")
        }
        return try results.map(admission(from:))
    }

    static func admission(from result: RESPValue) throws -> Admission? {
        guard let parts = result.elements, let outcome = parts.first?.string else {
            throw RedisClientError(.unexpectedReply, "admission script returned \(result)")
        }
        switch outcome {
        case "admitted":
            guard parts.count >= 3, let value = parts[1].string, let order = HeldOrder(encoded: value, fallback: Date()) else {
                throw RedisClientError(.unexpectedReply, "admission without an order id")
            }
            return .admitted(order, repeated: parts[2].string == "1")
        case "unprepared": return nil
        case "sold_out": return .soldOut
        case "limit_reached": return .limitReached
        case "not_started": return .notStarted
        case "ended": return .ended
        case "limited":
            guard parts.count >= 2, let wait = parts[1].int else { throw RedisClientError(.unexpectedReply, "a limited attempt without its wait") }
            return .rateLimited(retryAfter: .milliseconds(wait))
        default: throw RedisClientError(.unexpectedReply, "admission script returned \(outcome)")
        }
    }

    public func admittedCount(_ sale: FlashSale) async throws -> Int {
        if soldOut.withLockedValue({ $0.orders[sale.id] != nil }) { return sale.quantity }
        guard let stock = try await redis.getString(RedisKeys.sale(sale.id).stock).flatMap(Int.init) else {
            return sale.sold  // not prepared yet: nothing admitted beyond what is persisted
        }
        return sale.quantity - min(max(stock, -sale.quantity), sale.quantity)
    }

    /// Preparations under way: the first attempts on a new sale all find it missing from Redis at
    /// once, and each would read its orders from the database; they share one preparation instead.
    private let preparing = SingleFlight<Int64, Void>()

    /// Puts the sale into Redis (idempotent) and registers its stream with the workers.
    public func prepare(_ sale: FlashSale) async throws {
        try await preparing.value(for: sale.id) { [self] in try await prepareOnce(sale) }
    }

    private func prepareOnce(_ sale: FlashSale) async throws {
        // The window as the database has it now: the sale may have been cancelled since `sale` was read.
        let sale = try await store.flashSale(id: sale.id) ?? sale
        let keys = RedisKeys.sale(sale.id)
        let persisted = try await store.allAdmittedOrders(saleID: sale.id)
        let live = persisted.count { !$0.isExpired }
        var arguments = [
            String(Int64(sale.startsAt.timeIntervalSince1970 * 1_000)), String(Int64(sale.endsAt.timeIntervalSince1970 * 1_000)),
            String(sale.perBuyerLimit), String(sale.quantity), String(sale.quantity - live),
        ]
        for order in persisted {
            arguments += [order.buyerID, order.requestKey, order.orderID, String(order.n), order.isExpired ? "1" : "0",
                          String(Int64(saturating: order.admittedAt.timeIntervalSince1970 * 1_000))]
        }
        _ = try await redis.evalsha(Self.prepareScript, keys: keys.all + [keys.released], arguments: arguments)
        // Cancelled while this was under way (its end found no key to move): end it in Redis now.
        if let fresh = try await store.flashSale(id: sale.id), fresh.endsAt < sale.endsAt {
            try await end(fresh, at: fresh.endsAt)
        }
        _ = try await redis.xgroupCreate(keys.admitted, group: RedisKeys.persisterGroup, startingAt: "0")
        try await redis.sadd(RedisKeys.flashSales, [String(sale.id)])
    }

    /// Loads every admitted order of a sold-out sale once, so later attempts stay in this process.
    private func rememberSoldOut(_ sale: FlashSale) async throws {
        // Kept only if still sold out after the orders are loaded (a release before that gave a
        // unit back) and no release was heard meanwhile (one after is heard and forgets it).
        guard let forgotten = soldOut.withLockedValue({ $0.orders[sale.id] == nil ? $0.forgotten : nil }) else { return }
        let keys = RedisKeys.sale(sale.id)
        let orders = try await redis.hgetall(keys.orders)
        guard (try await redis.getString(keys.stock).flatMap { Int($0) } ?? 0) <= 0 else { return }
        soldOut.withLockedValue { memory in
            if memory.forgotten == forgotten { memory.orders[sale.id] = orders }
        }
    }
}

/// Sales this process has seen sold out, with every admitted order (for idempotent retries), and
/// how many times it has been told to forget one: memory loaded across a release is not kept.
struct SoldOutMemory {
    var orders: [Int64: [String: String]] = [:]
    private(set) var forgotten = 0

    mutating func forget(_ saleID: Int64) {
        orders[saleID] = nil
        forgotten += 1
    }

    mutating func forgetAll() {
        orders.removeAll()
        forgotten += 1
    }
}
