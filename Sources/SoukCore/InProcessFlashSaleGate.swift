import Foundation

/// The embedded admission gate: one actor decides every attempt of every sale in this process, and
/// an admission is written to the database (many per transaction: group commit) before the buyer
/// hears "admitted". The database is the log, so in embedded mode admitted orders are persisted
/// orders. For one process only: several processes need the Redis gate.
public actor InProcessFlashSaleGate: FlashSaleGate {
    struct SaleState {
        /// Units admitted and not given back by an expired hold.
        var admitted: Int
        var perBuyer: [String: Int]
        /// "buyer|key" → the order, for idempotent retries.
        var orders: [String: HeldOrder]
        /// Orders whose expired holds gave their units back.
        var released: Set<String> = []
    }

    let store: any FlashSaleStore
    /// Where the purchase limits are counted: the process's limiter, shared with the other limits.
    let limiter: any RateLimiter
    private var sales: [Int64: SaleState] = [:]
    private var waiting: [(order: AdmittedOrder, continuation: CheckedContinuation<Void, any Error>)] = []
    private var flushing = false

    public init(store: any FlashSaleStore, limiter: any RateLimiter = InProcessRateLimiter()) {
        self.store = store
        self.limiter = limiter
    }

    public func admit(_ sale: FlashSale, buyerID: String, requestKey: String, limits: [RateCheck], now: Date) async throws -> Admission {
        let field = buyerID + "|" + requestKey
        // What the Redis gate answers without counting, this one does too: a sale not started, and
        // a sale sold out (a retry of an admitted purchase gets its order).
        if now < sale.startsAt { return .notStarted }
        let known = try await self.state(of: sale)
        if known.admitted >= sale.quantity {
            if let existing = known.orders[field] { return .admitted(existing, repeated: true) }
            return now >= sale.endsAt || sale.closedAt != nil ? .ended : .soldOut
        }
        // A limiter that cannot be reached lets the attempt through: its outage must not close the shop.
        let onThisSale = limits.map { RateCheck($0.limit, key: "sale:\(sale.id):\($0.key)") }
        if !limits.isEmpty, case .limited(let wait) = (try? await limiter.hit(onThisSale)) ?? .allowed {
            return .rateLimited(retryAfter: wait)
        }
        // Read again: other attempts may have been decided while this one was counted.
        var state = try await self.state(of: sale)
        if let existing = state.orders[field] { return .admitted(existing, repeated: true) }
        if now < sale.startsAt { return .notStarted }
        if now >= sale.endsAt || sale.closedAt != nil { return .ended }
        let count = state.perBuyer[buyerID, default: 0]
        if count >= sale.perBuyerLimit { return .limitReached }
        if state.admitted >= sale.quantity { return .soldOut }

        // Decide now (the actor serialises decisions), then wait for the decision to be durable.
        let n = count + 1
        // Dated to the millisecond, as the Redis gate dates them: the deadline the buyer is told is
        // the one stored.
        let held = HeldOrder(orderID: AdmittedOrder.newOrderID(), admittedAt: now)
        let order = AdmittedOrder(orderID: held.orderID, saleID: sale.id,
                                  buyerID: buyerID, n: n, requestKey: requestKey, admittedAt: held.admittedAt)
        state.admitted += 1
        state.perBuyer[buyerID] = n
        state.orders[field] = held
        sales[sale.id] = state
        do {
            try await withCheckedThrowingContinuation { continuation in
                waiting.append((order, continuation))
                if !flushing {
                    flushing = true
                    Task { await self.flush() }
                }
            }
        } catch {
            // Not durable: undo the decision so the unit can be sold again.
            sales[sale.id]?.admitted -= 1
            sales[sale.id]?.perBuyer[buyerID] = count
            sales[sale.id]?.orders[field] = nil
            throw error
        }
        return .admitted(held, repeated: false)
    }

    public func release(_ sale: FlashSale, expiredOrderIDs: [String]) async throws {
        // Loaded first if need be: a load that read the database before an order expired counts
        // it as admitted, and this gives it back; one that read it after has it released already.
        var state = try await self.state(of: sale)
        for order in expiredOrderIDs where state.released.insert(order).inserted {
            state.admitted -= 1
        }
        sales[sale.id] = state
    }

    public func admittedCount(_ sale: FlashSale) async throws -> Int {
        try await state(of: sale).admitted
    }

    /// Writes everything waiting in one transaction, then answers those buyers; repeats while more arrived.
    private func flush() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting.removeAll(keepingCapacity: true)
            do {
                try await store.persistAdmitted(batch.map(\.order))
                for entry in batch { entry.continuation.resume() }
            } catch {
                for entry in batch { entry.continuation.resume(throwing: error) }
            }
        }
        flushing = false
    }

    /// The sale's counters, loaded from the database the first time this process sees the sale.
    private func state(of sale: FlashSale) async throws -> SaleState {
        if let state = sales[sale.id] { return state }
        let orders = try await store.allAdmittedOrders(saleID: sale.id)
        if let state = sales[sale.id] { return state }  // loaded meanwhile by another attempt
        var state = SaleState(admitted: orders.count { !$0.isExpired }, perBuyer: [:], orders: [:])
        for order in orders {
            state.perBuyer[order.buyerID] = max(state.perBuyer[order.buyerID, default: 0], order.n)
            state.orders[order.buyerID + "|" + order.requestKey] = HeldOrder(orderID: order.orderID, admittedAt: order.admittedAt)
            if order.isExpired { state.released.insert(order.orderID) }
        }
        sales[sale.id] = state
        return state
    }
}
