import Foundation

/// Where a flash sale is in its life, as buyers see it.
public enum FlashSaleStatus: String, Sendable, Codable {
    case scheduled
    case active
    case soldOut = "sold_out"
    case ended
}

/// A product offered in a limited quantity during a time window, at most `perBuyerLimit` units per
/// buyer. Its quantity was taken out of the product's stock when the sale was created; units not
/// sold go back to the product when the sale is closed.
public struct FlashSale: Hashable, Sendable {
    public let id: Int64
    public let vendorID: Int64
    public let productID: Int64?
    public let productName: String
    /// What a buyer pays for a unit: the sale price.
    public let price: Money
    /// The product's price when the sale was created, shown beside the sale price.
    public let listPrice: Money
    public let quantity: Int
    public let perBuyerLimit: Int
    public let startsAt: Date
    public let endsAt: Date
    public let createdAt: Date
    /// Orders persisted in the database so far.
    public let sold: Int
    /// Of those, the ones paid for.
    public let paid: Int
    /// How long a buyer holds an admitted unit before it returns to the sale unpaid.
    public let holdSeconds: Int
    /// Holds that expired unpaid (their units went back to the sale).
    public let expired: Int
    /// Paid orders the vendor cancelled and refunded (their units went back to the product).
    public let refunded: Int
    public let closedAt: Date?
    /// Admits only customers who verified their email: one person, one account, one limit.
    public let verifiedOnly: Bool

    public init(
        id: Int64, vendorID: Int64, productID: Int64?, productName: String, price: Money, quantity: Int, perBuyerLimit: Int,
        startsAt: Date, endsAt: Date, createdAt: Date, sold: Int, closedAt: Date?, verifiedOnly: Bool = false, listPrice: Money? = nil, paid: Int = 0,
        holdSeconds: Int = FlashSaleDraft.defaultHoldSeconds, expired: Int = 0, refunded: Int = 0
    ) {
        self.refunded = refunded
        self.paid = paid
        self.holdSeconds = holdSeconds
        self.expired = expired
        self.id = id
        self.vendorID = vendorID
        self.productID = productID
        self.productName = productName
        self.price = price
        self.listPrice = listPrice ?? price
        self.quantity = quantity
        self.perBuyerLimit = perBuyerLimit
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.createdAt = createdAt
        self.sold = sold
        self.closedAt = closedAt
        self.verifiedOnly = verifiedOnly
    }

    public func status(now: Date, remaining: Int) -> FlashSaleStatus {
        if now >= endsAt || closedAt != nil { return .ended }
        if remaining <= 0 { return .soldOut }
        if now < startsAt { return .scheduled }
        return .active
    }
}

/// A validated request to start a flash sale.
public struct FlashSaleDraft: Sendable, Equatable {
    public static let maximumQuantity = 10_000_000
    public static let maximumLimit = 1_000
    public static let maximumLength: TimeInterval = 31 * 24 * 3600
    public static let defaultHoldSeconds = 600
    public static let holdSecondsRange = 5...3_600

    public let productID: Int64
    public let quantity: Int
    public let perBuyerLimit: Int
    public let startsAt: Date
    public let endsAt: Date
    public let verifiedOnly: Bool
    /// The sale price in the product's currency; nil: the product's price. At most the product's
    /// price (checked where the product is read).
    public let salePriceMinor: Int64?
    /// How long a winner holds the unit to pay for it.
    public let holdSeconds: Int

    public init(
        productID: Int64?, quantity: Int?, startsAt: Date?, endsAt: Date?, perBuyerLimit: Int?, verifiedOnly: Bool? = nil,
        salePriceMinor: Int64? = nil, holdSeconds: Int? = nil, now: Date = Date()
    ) throws(SoukError) {
        var errors: [FieldError] = []
        if let holdSeconds, !Self.holdSecondsRange.contains(holdSeconds) {
            errors.append(.init(field: "hold_seconds", message: "must be between 5 seconds and 1 hour (3600 seconds)"))
        }
        if let salePriceMinor, salePriceMinor < 1 || salePriceMinor > ProductLimits.price.upperBound {
            errors.append(.init(field: "sale_price_minor", message: "must be between 1 and \(ProductLimits.price.upperBound) (minor units)"))
        }
        if productID == nil || productID! <= 0 { errors.append(.init(field: "product_id", message: "must be one of your products")) }
        if let quantity {
            if !(1...Self.maximumQuantity).contains(quantity) { errors.append(.init(field: "quantity", message: "must be between 1 and \(Self.maximumQuantity)")) }
        } else {
            errors.append(.init(field: "quantity", message: "is required"))
        }
        let limit = perBuyerLimit ?? 1
        if !(1...Self.maximumLimit).contains(limit) { errors.append(.init(field: "per_buyer_limit", message: "must be between 1 and \(Self.maximumLimit)")) }
        if startsAt == nil { errors.append(.init(field: "starts_at", message: "is required (ISO 8601)")) }
        if endsAt == nil { errors.append(.init(field: "ends_at", message: "is required (ISO 8601)")) }
        if let startsAt, let endsAt {
            if endsAt <= startsAt { errors.append(.init(field: "ends_at", message: "must be after starts_at")) }
            if endsAt <= now { errors.append(.init(field: "ends_at", message: "must be in the future")) }
            if endsAt.timeIntervalSince(startsAt) > Self.maximumLength { errors.append(.init(field: "ends_at", message: "must be at most 31 days after starts_at")) }
        }
        guard errors.isEmpty, let productID, let quantity, let startsAt, let endsAt else { throw .validationFailed(errors) }
        self.productID = productID
        self.quantity = quantity
        self.perBuyerLimit = limit
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.verifiedOnly = verifiedOnly ?? false
        self.salePriceMinor = salePriceMinor
        self.holdSeconds = holdSeconds ?? Self.defaultHoldSeconds
    }
}

/// Who is buying: an id the shop's own identity system gives its customers.
public enum BuyerID {
    /// The id, or a validation error: 1 to 64 characters of letters, digits and `_ . @ + -`. Checked
    /// on the bytes (every allowed character is ASCII): this runs on every purchase attempt.
    public static func validated(_ raw: String?, field: String = "buyer_id") throws(SoukError) -> String {
        guard let raw, (1...64).contains(raw.utf8.count), raw.utf8.allSatisfy(isAllowed) else {
            throw .validationFailed([FieldError(field: field, message: "must be 1 to 64 characters: letters, digits, _ . @ + -")])
        }
        return raw
    }

    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "@"), UInt8(ascii: "+"), UInt8(ascii: "-"): true
        default: false
        }
    }
}

/// One unit admitted to a buyer: the buyer's n-th admission in the sale (persisting it twice is
/// impossible: the sale, buyer and n are unique together).
public struct AdmittedOrder: Hashable, Sendable {
    public let orderID: String
    public let saleID: Int64
    public let buyerID: String
    public let n: Int
    /// The buyer's idempotency key for this purchase.
    public let requestKey: String
    public let admittedAt: Date
    /// Its hold expired unpaid: the unit went back to the sale (the order stays, for retries).
    public let isExpired: Bool

    public init(orderID: String, saleID: Int64, buyerID: String, n: Int, requestKey: String, admittedAt: Date, isExpired: Bool = false) {
        self.isExpired = isExpired
        self.orderID = orderID
        self.saleID = saleID
        self.buyerID = buyerID
        self.n = n
        self.requestKey = requestKey
        self.admittedAt = admittedAt
    }

    /// A new order id: 16 random characters (80 bits), so nobody can guess another buyer's order,
    /// and nothing about the buyer in it.
    public static func newOrderID() -> String { OrderReference.random(length: 16) }

    /// `count` new order ids at once.
    public static func newOrderIDs(_ count: Int) -> [String] { OrderReference.random(length: 16, count: count) }

    /// Whether `id` could be an order id Souk gave (16 characters of its alphabet): anything else
    /// is not found at once, without looking.
    public static func isWellFormedID(_ id: String) -> Bool {
        id.utf8.count == 16 && id.utf8.allSatisfy { OrderReference.alphabetBytes.contains($0) }
    }
}

/// A persisted flash-sale order.
public struct FlashSaleOrder: Hashable, Sendable {
    public let orderID: String
    public let buyerID: String
    public let quantity: Int
    public let admittedAt: Date
    public let createdAt: Date
    /// Position for paging (insertion order).
    public let sequence: Int64

    public init(orderID: String, buyerID: String, quantity: Int, admittedAt: Date, createdAt: Date, sequence: Int64) {
        self.orderID = orderID
        self.buyerID = buyerID
        self.quantity = quantity
        self.admittedAt = admittedAt
        self.createdAt = createdAt
        self.sequence = sequence
    }
}

/// An admitted order as the gates remember it: its id and when it was admitted (its hold runs
/// from then). Kept in Redis as `<order id>:<admitted, Unix milliseconds>`.
public struct HeldOrder: Hashable, Sendable {
    public let orderID: String
    public let admittedAt: Date

    public init(orderID: String, admittedAt: Date) {
        self.orderID = orderID
        self.admittedAt = Date(timeIntervalSince1970: (admittedAt.timeIntervalSince1970 * 1_000).rounded(.down) / 1_000)
    }

    public var encoded: String { "\(orderID):\(Int64(saturating: admittedAt.timeIntervalSince1970 * 1_000))" }

    /// A remembered order; one kept before admission times were (a bare id) is dated `fallback`.
    public init?(encoded: String, fallback: Date) {
        let parts = encoded.split(separator: ":", maxSplits: 1)
        guard let id = parts.first, !id.isEmpty else { return nil }
        let millis = parts.count == 2 ? Int64(parts[1]) : nil
        self.init(orderID: String(id), admittedAt: millis.map { Date(timeIntervalSince1970: Double($0) / 1_000) } ?? fallback)
    }

    /// When the buyer's hold of it ends under `sale`'s terms.
    public func holdExpiresAt(in sale: FlashSale) -> Date {
        admittedAt.addingTimeInterval(TimeInterval(sale.holdSeconds))
    }
}

/// The answer of the admission step.
public enum Admission: Hashable, Sendable {
    /// Admitted; `repeated` when this very purchase (buyer + idempotency key) was admitted before.
    case admitted(HeldOrder, repeated: Bool)
    case soldOut
    case limitReached
    case notStarted
    case ended
    /// Over a purchase rate limit (the attempt was counted under none, and decided nothing else);
    /// the next attempt is allowed after this long.
    case rateLimited(retryAfter: Duration)
}

/// Counters of a sale across the admission gate and the database.
public struct FlashSaleStats: Hashable, Sendable {
    public let quantity: Int
    public let admitted: Int
    public let persisted: Int
    /// Admitted orders whose payment has been captured.
    public let paid: Int
    /// Holds that expired unpaid (their units were admitted again or are remaining).
    public let expired: Int
    /// Paid orders cancelled and refunded: their units left the sale for the product's stock.
    public let refunded: Int
    public var pending: Int { max(0, admitted - persisted) }
    public var remaining: Int { max(0, quantity - admitted) }
    /// Units kept for buyers who have not paid (yet): `quantity = remaining + held + paid + refunded`.
    public var held: Int { max(0, admitted - paid - refunded) }

    public init(quantity: Int, admitted: Int, persisted: Int, paid: Int = 0, expired: Int = 0, refunded: Int = 0) {
        self.refunded = refunded
        self.quantity = quantity
        self.admitted = admitted
        self.persisted = persisted
        self.paid = paid
        self.expired = expired
    }
}

/// The flash-sale tables.
public protocol FlashSaleStore: Sendable {
    /// Creates the sale and takes its quantity out of the product's stock, in one transaction.
    func createFlashSale(vendorID: Int64, _ draft: FlashSaleDraft, now: Date) async throws -> FlashSale
    func flashSale(id: Int64) async throws -> FlashSale?
    /// The vendor's sales, newest first.
    func flashSales(vendorID: Int64) async throws -> [FlashSale]
    /// Records admitted orders, ignoring those already recorded, and counts them as sold, in one
    /// transaction; returns how many were new.
    @discardableResult
    func persistAdmitted(_ orders: [AdmittedOrder]) async throws -> Int
    /// Persisted orders in the order they were recorded, after the `after` sequence.
    func flashSaleOrders(saleID: Int64, after: Int64?, limit: Int) async throws -> [FlashSaleOrder]
    /// Every persisted order, expired ones marked, to rebuild the admission state.
    func allAdmittedOrders(saleID: Int64) async throws -> [AdmittedOrder]
    /// Expires up to `limit` holds due at `now` (a compare-and-set from `held`, each at most once,
    /// taken out of their sale's `sold` and counted in `expired` in the same transaction; the
    /// units of a sale closed meanwhile go back to its product there and then) and returns them,
    /// for the gate to take their units back. A payment that claimed a hold first wins; this one
    /// then skips it.
    func expireHolds(now: Date, limit: Int) async throws -> [ExpiredHold]
    /// The sale's counters beside its order rows counted by status, read together (one snapshot:
    /// every change moves a counter and a row in one transaction, so they agree at any instant).
    /// Counted where the rows are: the reconciler asks this of sales with millions of orders.
    func orderTally(saleID: Int64) async throws -> FlashSaleTally?
    /// Sales not closed yet, oldest first.
    func openFlashSales() async throws -> [FlashSale]
    /// Returns the unsold units to the product and marks the sale closed (once). Units still held
    /// stay the buyers' to pay for; one whose hold expires later goes back to the product then.
    func closeFlashSale(id: Int64, now: Date) async throws -> Bool
    /// Ends the vendor's sale at `now` (a cancellation): it takes no more purchases, and closing
    /// returns its unsold units as for any ended sale. Nil when it is not the vendor's sale; a sale
    /// already ended is returned as it is.
    func endFlashSale(id: Int64, vendorID: Int64, now: Date) async throws -> FlashSale?
}

/// The admission step: one atomic decision per attempt (rate limits, window, buyer's count,
/// stock), made durable before the buyer hears "admitted".
public protocol FlashSaleGate: Sendable {
    /// Counts the attempt under `limits`, on this sale (all or nothing: over any of them,
    /// `.rateLimited` and nothing else happens), then decides it. The gate counts them in the same
    /// step as the decision, so that every path to a purchase counts one limit at no extra cost;
    /// per sale, because the Redis gate counts them in the sale's own slot.
    func admit(_ sale: FlashSale, buyerID: String, requestKey: String, limits: [RateCheck], now: Date) async throws -> Admission
    /// How many units have been admitted so far.
    func admittedCount(_ sale: FlashSale) async throws -> Int
    /// Gets a new sale ready for its first attempt (and for the workers).
    func prepare(_ sale: FlashSale) async throws
    /// The answer this process already knows without asking anyone (a sale it has seen sold out),
    /// without suspending; nil when only ``admit(_:buyerID:requestKey:limits:now:)`` can decide.
    func settledAdmission(_ sale: FlashSale, buyerID: String, requestKey: String, now: Date) -> Admission?
    /// Whether ``settledAdmission(_:buyerID:requestKey:now:)`` can answer for this sale at all: a
    /// look that costs nothing, so attempts on a sale still selling skip that path entirely.
    func hasSettledAdmissions(saleID: Int64) -> Bool
    /// Stops admissions to a cancelled sale at `now`, for every process that shares this gate.
    func end(_ sale: FlashSale, at now: Date) async throws
    /// Gives the units of expired holds back to the sale, each order once however often it is
    /// asked (an expirer that died before recording the release asks again).
    func release(_ sale: FlashSale, expiredOrderIDs: [String]) async throws
}

/// A sale's counters and its order rows by status, as the reconciler compares them.
public struct FlashSaleTally: Hashable, Sendable {
    public var quantity = 0
    /// The counters on the sale.
    public var sold = 0, paid = 0, refunded = 0, expired = 0
    /// The order rows, by status.
    public var rows: [FlashSaleOrderStatus: Int] = [:]

    public init(quantity: Int = 0, sold: Int = 0, paid: Int = 0, refunded: Int = 0, expired: Int = 0, rows: [FlashSaleOrderStatus: Int] = [:]) {
        self.quantity = quantity
        self.sold = sold
        self.paid = paid
        self.refunded = refunded
        self.expired = expired
        self.rows = rows
    }

    /// Orders that hold a unit: every one but the expired.
    public var liveRows: Int { rows.filter { $0.key != .expired }.values.reduce(0, +) }

    /// What does not add up, in words; empty when the counters and the rows agree and no unit is
    /// sold twice (`quantity ≥ held + paid + refunded`).
    public var problems: [String] {
        var problems: [String] = []
        if sold != liveRows { problems.append("the sold counter (\(sold)) differs from the order rows holding a unit (\(liveRows))") }
        if paid != rows[.paid, default: 0] { problems.append("the paid counter (\(paid)) differs from the paid orders (\(rows[.paid, default: 0]))") }
        if refunded != rows[.cancelled, default: 0] { problems.append("the refunded counter (\(refunded)) differs from the refunded orders (\(rows[.cancelled, default: 0]))") }
        if expired != rows[.expired, default: 0] { problems.append("the expired counter (\(expired)) differs from the expired orders (\(rows[.expired, default: 0]))") }
        if liveRows > quantity { problems.append("\(liveRows) orders hold units of \(quantity): oversold") }
        return problems
    }
}

/// An expired hold whose unit goes back to its sale.
public struct ExpiredHold: Hashable, Sendable {
    public let saleID: Int64
    public let orderID: String

    public init(saleID: Int64, orderID: String) {
        self.saleID = saleID
        self.orderID = orderID
    }
}

extension FlashSaleGate {
    /// An attempt under no rate limit.
    public func admit(_ sale: FlashSale, buyerID: String, requestKey: String, now: Date) async throws -> Admission {
        try await admit(sale, buyerID: buyerID, requestKey: requestKey, limits: [], now: now)
    }

    /// A gate that reads the sale's window from the ``FlashSale`` it is given needs nothing more:
    /// ``FlashSales`` hands it the ended terms.
    public func end(_ sale: FlashSale, at now: Date) async throws {}
    public func prepare(_ sale: FlashSale) async throws {}
    public func settledAdmission(_ sale: FlashSale, buyerID: String, requestKey: String, now: Date) -> Admission? { nil }
    public func hasSettledAdmissions(saleID: Int64) -> Bool { false }
}
