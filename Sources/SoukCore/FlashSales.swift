import Foundation

/// The flash-sale use cases: create a sale, admit purchases, read its counters.
public struct FlashSales: Sendable {
    public let store: any FlashSaleStore
    public let gate: any FlashSaleGate
    /// Called when a sale's existence or counters change what the vendor's store page shows.
    let onStoreChange: @Sendable (Int64) async -> Void
    private let terms = SaleTerms()

    public init(store: any FlashSaleStore, gate: any FlashSaleGate, onStoreChange: @escaping @Sendable (Int64) async -> Void = { _ in }) {
        self.store = store
        self.gate = gate
        self.onStoreChange = onStoreChange
    }

    public func create(vendorID: Int64, _ draft: FlashSaleDraft, now: Date = Date()) async throws -> FlashSale {
        let sale = try await store.createFlashSale(vendorID: vendorID, draft, now: now)
        try await gate.prepare(sale)
        await onStoreChange(vendorID)
        return sale
    }

    /// Cancels the vendor's sale: admissions stop at once (in the gate, shared by every instance,
    /// before the database says so), admitted orders stay, and the unsold units return to the
    /// product when the sale is closed, as for any ended sale.
    public func cancel(saleID: Int64, vendorID: Int64, now: Date = Date()) async throws -> FlashSale {
        guard let known = try await store.flashSale(id: saleID), known.vendorID == vendorID else { throw SoukError.notFound("Flash sale") }
        guard known.closedAt == nil, known.endsAt > now else { return known }
        try await gate.end(known, at: now)
        guard let ended = try await store.endFlashSale(id: saleID, vendorID: vendorID, now: now) else { throw SoukError.notFound("Flash sale") }
        terms.put(ended)
        await onStoreChange(vendorID)
        // Again, for a process that loaded the sale into the gate from the database in between (the
        // gate's `prepare` also checks the database after loading); the sale is cancelled whatever
        // this answers.
        try? await gate.end(ended, at: now)
        return ended
    }

    /// One purchase attempt: admitted (with the order id) or a ``SoukError`` saying why not.
    /// `verified`: whether the buyer verified their email (a sale may require it); `limits`: the
    /// rate limits the attempt counts under, counted by the gate with its decision.
    public func purchase(saleID: Int64, buyerID rawBuyer: String?, verified: Bool = false, requestKey rawKey: String?, limits: [RateCheck] = [], now: Date = Date()) async throws -> (sale: FlashSale, order: HeldOrder, repeated: Bool) {
        let buyerID = try BuyerID.validated(rawBuyer)
        let requestKey = try Self.requestKey(rawKey)
        guard let sale = try await sale(id: saleID) else { throw SoukError.notFound("Flash sale") }
        if sale.verifiedOnly && !verified { throw SoukError.verificationRequired }
        let admission = try await gate.admit(sale, buyerID: buyerID, requestKey: requestKey, limits: limits, now: now)
        switch Self.outcome(admission, of: sale) {
        case .success(let order): return (sale, order, admission == .admitted(order, repeated: true))
        case .failure(let error): throw error
        }
    }

    /// The answer to an attempt when this process already has it (a sale it knows is sold out), without
    /// suspending: the admitted order of a retried purchase, or the refusal. Nil when the attempt
    /// must go through ``purchase(saleID:buyerID:verified:requestKey:limits:now:)`` (which then gives the same answer).
    public func settledPurchase(saleID: Int64, buyerID rawBuyer: String?, verified: Bool = false, requestKey rawKey: String?, now: Date = Date()) -> (sale: FlashSale, outcome: Result<HeldOrder, SoukError>)? {
        guard let attempt = knownAttempt(saleID: saleID, buyerID: rawBuyer, verified: verified, requestKey: rawKey),
              let admission = gate.settledAdmission(attempt.sale, buyerID: attempt.buyerID, requestKey: attempt.requestKey, now: now)
        else { return nil }
        return (attempt.sale, Self.outcome(admission, of: attempt.sale))
    }

    /// A well-formed attempt on a sale whose terms this process already holds: what a gate needs to
    /// decide without suspending. Nil when only ``purchase(saleID:buyerID:verified:requestKey:limits:now:)`` can
    /// answer (an invalid buyer or key, whose error it gives; a sale not read yet; a buyer the sale
    /// refuses as unverified).
    public func knownAttempt(saleID: Int64, buyerID rawBuyer: String?, verified: Bool = false, requestKey rawKey: String?) -> (sale: FlashSale, buyerID: String, requestKey: String)? {
        guard let buyerID = try? BuyerID.validated(rawBuyer), let requestKey = try? Self.requestKey(rawKey),
              let sale = terms.get(saleID), verified || !sale.verifiedOnly
        else { return nil }
        return (sale, buyerID, requestKey)
    }

    /// Whether this process holds the sale's terms: an attempt on a sale it does not (or on none at
    /// all) reads the database before any gate decides.
    public func knowsTerms(of saleID: Int64) -> Bool {
        terms.get(saleID) != nil
    }

    /// What the buyer hears for an admission decision: the held order, or why not.
    public static func outcome(_ admission: Admission, of sale: FlashSale) -> Result<HeldOrder, SoukError> {
        switch admission {
        case .admitted(let order, _): .success(order)
        case .soldOut: .failure(.soldOut)
        case .limitReached: .failure(.limitReached(limit: sale.perBuyerLimit))
        case .notStarted: .failure(.saleNotStarted(startsAt: sale.startsAt))
        case .ended: .failure(.saleEnded)
        case .rateLimited(let wait): .failure(.rateLimited(retryAfterSeconds: wait.retryAfterSeconds))
        }
    }

    /// Expires the holds due at `now` and gives their units back to their sales; returns how many
    /// (at most `limit`). The expiry is the database's compare-and-set, so a hold a payment claimed
    /// first stays paid for; the gate gives each order's unit back once, however often it is asked,
    /// so the reconciler can give back again what an expirer killed in between did not.
    @discardableResult
    public func expireDueHolds(now: Date = Date(), limit: Int = 2_000) async throws -> Int {
        let due = try await store.expireHolds(now: now, limit: limit)
        for (saleID, holds) in Dictionary(grouping: due, by: \.saleID) {
            let orders = holds.map(\.orderID)
            if let sale = try await store.flashSale(id: saleID), sale.closedAt == nil {
                try await gate.release(terms.get(saleID) ?? sale, expiredOrderIDs: orders)
                await onStoreChange(sale.vendorID)
            }
        }
        return due.count
    }

    /// The vendor's sales that buyers can still see (not ended, not closed), soonest first.
    public func upcoming(vendorID: Int64, now: Date = Date()) async throws -> [FlashSale] {
        try await store.flashSales(vendorID: vendorID).filter { $0.closedAt == nil && $0.endsAt > now }.sorted { $0.startsAt < $1.startsAt }
    }

    public func stats(_ sale: FlashSale) async throws -> FlashSaleStats {
        let admitted = try await gate.admittedCount(sale)
        let stored = try await store.flashSale(id: sale.id) ?? sale
        return FlashSaleStats(quantity: sale.quantity, admitted: max(admitted, stored.sold), persisted: stored.sold, paid: stored.paid, expired: stored.expired,
                              refunded: stored.refunded)
    }

    /// Sales are read on every purchase attempt; their terms change only when the sale is
    /// cancelled, so they are remembered (`sold` and `closedAt` move, and are read fresh where
    /// needed). A cancellation elsewhere reaches buyers through the shared gate, which holds the
    /// window each attempt is checked against.
    public func sale(id: Int64) async throws -> FlashSale? {
        if let known = terms.get(id) { return known }
        // The first attempts on a sale arrive together (a storm at its start): one read serves them.
        guard let sale = try await terms.reads.value(for: id, { [store] in try await store.flashSale(id: id) }) else { return nil }
        terms.put(sale)
        return sale
    }

    /// The idempotency key of a purchase: the same key from the same buyer is the same purchase.
    /// Without one, a buyer's attempts are all the same purchase.
    static func requestKey(_ raw: String?) throws(SoukError) -> String {
        guard let raw, !raw.isEmpty else { return "1" }
        guard raw.count <= 64, raw.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) }) else {
            throw .validationFailed([FieldError(field: "Idempotency-Key", message: "must be 1 to 64 characters: letters, digits, - _ . :")])
        }
        return raw
    }
}

/// A small memory of sale terms (bounded).
final class SaleTerms: @unchecked Sendable {
    private let lock = NSLock()
    private var sales: [Int64: FlashSale] = [:]
    /// Reads of sales under way, shared by the attempts that arrive meanwhile.
    let reads = SingleFlight<Int64, FlashSale?>()

    func get(_ id: Int64) -> FlashSale? { lock.withLock { sales[id] } }

    func put(_ sale: FlashSale) {
        lock.withLock {
            if sales.count > 10_000 { sales.removeAll(keepingCapacity: true) }
            sales[sale.id] = sale
        }
    }
}
