import Foundation

/// A buyer's store credit: spendable balance, and what open checkouts hold.
public struct Wallet: Hashable, Sendable {
    public let buyerID: String
    public let balanceMinor: Int64
    public let heldMinor: Int64
    /// Captured by confirmed checkouts, for the conservation check.
    public let capturedMinor: Int64

    public init(buyerID: String, balanceMinor: Int64, heldMinor: Int64, capturedMinor: Int64) {
        self.buyerID = buyerID
        self.balanceMinor = balanceMinor
        self.heldMinor = heldMinor
        self.capturedMinor = capturedMinor
    }
}

/// A vendor's discount code.
public struct Coupon: Hashable, Sendable {
    public enum Kind: String, Sendable, Codable { case percent, fixed }
    public let id: Int64
    public let vendorID: Int64
    public let code: String
    public let kind: Kind
    /// Percent (1–100) or minor units.
    public let value: Int64
    public let minimumOrderMinor: Int64
    public let maxUses: Int
    public let uses: Int
    public let expiresAt: Date?

    public init(id: Int64, vendorID: Int64, code: String, kind: Kind, value: Int64, minimumOrderMinor: Int64, maxUses: Int, uses: Int, expiresAt: Date?) {
        self.id = id
        self.vendorID = vendorID
        self.code = code
        self.kind = kind
        self.value = value
        self.minimumOrderMinor = minimumOrderMinor
        self.maxUses = maxUses
        self.uses = uses
        self.expiresAt = expiresAt
    }

    /// The discount on a subtotal, never more than the subtotal.
    public func discount(on subtotal: Int64) -> Int64 {
        switch kind {
        // floor(subtotal × value / 100) without the product: subtotals reach 10^17.
        case .percent: min(subtotal, (subtotal / 100) * value + (subtotal % 100) * value / 100)
        case .fixed: min(subtotal, value)
        }
    }
}

/// A validated coupon definition.
public struct CouponDraft: Sendable {
    public let code: String
    public let kind: Coupon.Kind
    public let value: Int64
    public let minimumOrderMinor: Int64
    public let maxUses: Int
    public let expiresAt: Date?

    public init(code: String?, kind: String?, value: Int64?, minimumOrderMinor: Int64?, maxUses: Int?, expiresAt: Date?, now: Date = Date()) throws(SoukError) {
        var errors: [FieldError] = []
        let code = (code ?? "").trimmingCharacters(in: .whitespaces).uppercased()
        if !(3...32).contains(code.count) || !code.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            errors.append(.init(field: "code", message: "must be 3 to 32 letters, digits, - or _"))
        }
        let parsedKind = kind.flatMap(Coupon.Kind.init(rawValue:))
        if parsedKind == nil { errors.append(.init(field: "kind", message: "must be percent or fixed")) }
        let value = value ?? 0
        if parsedKind == .percent && !(1...100).contains(value) { errors.append(.init(field: "value", message: "must be a percentage from 1 to 100")) }
        if parsedKind == .fixed && !(1...ProductLimits.price.upperBound).contains(value) { errors.append(.init(field: "value", message: "must be a positive amount in minor units")) }
        let minimum = minimumOrderMinor ?? 0
        if !(0...ProductLimits.price.upperBound).contains(minimum) { errors.append(.init(field: "min_order_minor", message: "must be zero or more")) }
        let maxUses = maxUses ?? 1
        if !(1...10_000_000).contains(maxUses) { errors.append(.init(field: "max_uses", message: "must be between 1 and 10000000")) }
        if let expiresAt, expiresAt <= now { errors.append(.init(field: "expires_at", message: "must be in the future")) }
        guard errors.isEmpty, let parsedKind else { throw .validationFailed(errors) }
        self.code = code
        self.kind = parsedKind
        self.value = value
        self.minimumOrderMinor = minimum
        self.maxUses = maxUses
        self.expiresAt = expiresAt
    }
}

/// Where a checkout is: answered at once as `inProgress`, then exactly one terminal state.
public enum CheckoutStatus: String, Sendable, Codable {
    case inProgress = "in_progress"
    case confirmed
    case failed

    public var message: String {
        switch self {
        case .inProgress: "In Progress: Credit check passed. User verification in progress..."
        case .confirmed: "Success: Buy order complete."
        case .failed: "Failure: User verification unsuccessful."
        }
    }
}

/// Where a page of checkouts (newest first) ended: the last one's creation time and id, so that
/// checkouts made in the same microsecond are neither skipped nor repeated.
public struct CheckoutPosition: Hashable, Sendable {
    public let createdAtMicroseconds: Int64
    public let id: String

    public init(createdAtMicroseconds: Int64, id: String) {
        self.createdAtMicroseconds = createdAtMicroseconds
        self.id = id
    }

    /// `micros.id`, as handed to clients.
    public init?(cursor: String) {
        let parts = cursor.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let micros = Int64(parts[0]), micros > 0, parts[1].hasPrefix("co_"), parts[1].count <= 40 else { return nil }
        self.init(createdAtMicroseconds: micros, id: String(parts[1]))
    }

    public var cursor: String { "\(createdAtMicroseconds).\(id)" }

    public init(_ order: CheckoutOrder) {
        self.init(createdAtMicroseconds: Int64((order.createdAt.timeIntervalSince1970 * 1_000_000).rounded()), id: order.id)
    }
}

/// A checkout order and its saga state.
public struct CheckoutOrder: Hashable, Sendable {
    public let id: String
    public let vendorID: Int64
    public let buyerID: String
    public let status: CheckoutStatus
    public let lines: [OrderLine]
    public let subtotalMinor: Int64
    public let discountMinor: Int64
    public let totalMinor: Int64
    public let currency: String
    public let couponCode: String?
    /// The hard limit of the verification, stored so that a restart still enforces it.
    public let deadline: Date
    public let failureReason: String?
    public let createdAt: Date
    public let updatedAt: Date
    /// Paid by card: the provider's token for it (the total is charged there, not to store credit).
    public let cardToken: String?

    public init(
        id: String, vendorID: Int64, buyerID: String, status: CheckoutStatus, lines: [OrderLine], subtotalMinor: Int64, discountMinor: Int64,
        totalMinor: Int64, currency: String, couponCode: String?, deadline: Date, failureReason: String?, createdAt: Date, updatedAt: Date,
        cardToken: String? = nil
    ) {
        self.cardToken = cardToken
        self.id = id
        self.vendorID = vendorID
        self.buyerID = buyerID
        self.status = status
        self.lines = lines
        self.subtotalMinor = subtotalMinor
        self.discountMinor = discountMinor
        self.totalMinor = totalMinor
        self.currency = currency
        self.couponCode = couponCode
        self.deadline = deadline
        self.failureReason = failureReason
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The order as `decision` leaves it: what waiting streams push without reading it again.
    public func applying(_ decision: CheckoutDecision) -> CheckoutOrder {
        CheckoutOrder(
            id: id, vendorID: vendorID, buyerID: buyerID, status: decision.status, lines: lines, subtotalMinor: subtotalMinor,
            discountMinor: discountMinor, totalMinor: totalMinor, currency: currency, couponCode: couponCode, deadline: deadline,
            failureReason: decision.failureReason, createdAt: createdAt, updatedAt: decision.decidedAt, cardToken: cardToken)
    }

    /// Unguessable: the id is the buyer's key to the order.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijkmnopqrstuvwxyz23456789")
        return "co_" + String((0..<24).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }
}

/// A saga's verdict as it is announced (in the process, and to other instances over pub/sub), so
/// that the streams waiting for it can push it without reading the order again.
public struct CheckoutDecision: Hashable, Sendable {
    public let orderID: String
    public let status: CheckoutStatus
    public let failureReason: String?
    /// The time written with the decision (`updated_at`), to the microsecond.
    public let decidedAt: Date

    public init(orderID: String, status: CheckoutStatus, failureReason: String?, decidedAt: Date) {
        self.orderID = orderID
        self.status = status
        self.failureReason = failureReason
        self.decidedAt = Date(timeIntervalSince1970: (decidedAt.timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
    }

    /// `order|status|microseconds|reason`.
    public var encoded: String {
        "\(orderID)|\(status.rawValue)|\(Int64((decidedAt.timeIntervalSince1970 * 1_000_000).rounded()))|\(failureReason ?? "")"
    }

    public init?(encoded: String) {
        let parts = encoded.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, let status = CheckoutStatus(rawValue: String(parts[1])), status != .inProgress, let micros = Int64(parts[2]) else { return nil }
        self.init(orderID: String(parts[0]), status: status, failureReason: parts[3].isEmpty ? nil : String(parts[3]),
                  decidedAt: Date(timeIntervalSince1970: Double(micros) / 1_000_000))
    }
}

/// A validated checkout request.
public struct CheckoutRequest: Sendable {
    public let buyerID: String
    public let items: [OrderRequest.Item]
    public let couponCode: String?
    public let idempotencyKey: String?

    public init(buyerID: String?, items: [(productID: Int64, quantity: Int)], couponCode: String?, idempotencyKey: String?) throws(SoukError) {
        let buyer = try BuyerID.validated(buyerID)
        // The order rules (at least one item, sane quantities, merged and sorted) are those of store orders.
        let order = try OrderRequest(name: buyer, phone: "00000", address: "-", items: items)
        if let couponCode, couponCode.count > 32 { throw .validationFailed([FieldError(field: "coupon", message: "is too long")]) }
        self.idempotencyKey = try IdempotencyKey.validated(idempotencyKey)
        self.buyerID = buyer
        self.items = order.items
        self.couponCode = couponCode.map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// What this request asks for, in a canonical form (items merged and sorted, coupon normalised):
    /// an idempotency key is bound to it, so the same key with another request is refused.
    public var fingerprint: String {
        items.map { "\($0.productID)x\($0.quantity)" }.joined(separator: ",") + ";" + (couponCode ?? "")
    }
}

/// The answer given to a checkout request, stored so that a replayed Idempotency-Key gets it again.
public enum CheckoutAnswer: Equatable, Sendable {
    case accepted(CheckoutOrder)
    case denied(SoukError)
}

/// Wallets, coupons and checkout sagas. Every step is one transaction and idempotent.
public protocol CheckoutStore: Sendable {
    func credit(buyerID: String, amountMinor: Int64, by vendorID: Int64) async throws -> Wallet
    /// A buyer's credit at one store: credit is given by a store and spent only there.
    func wallet(vendorID: Int64, buyerID: String) async throws -> Wallet?
    func createCoupon(vendorID: Int64, _ draft: CouponDraft) async throws -> Coupon
    func coupons(vendorID: Int64) async throws -> [Coupon]

    /// Holds the credit, reserves the stock and redeems the coupon in one transaction, or writes
    /// nothing but the denial. A replayed idempotency key gets the first answer back.
    func accept(_ request: CheckoutRequest, deadline: TimeInterval, now: Date) async throws -> CheckoutAnswer
    func checkout(id: String) async throws -> CheckoutOrder?
    /// One vendor's checkouts, newest first, strictly after the `after` position of an earlier page.
    func checkouts(vendorID: Int64, after: CheckoutPosition?, limit: Int) async throws -> [CheckoutOrder]
    /// Leases up to `limit` sagas that are due, for `lease` seconds, to `owner`.
    func claimSagas(owner: String, lease: TimeInterval, limit: Int, now: Date) async throws -> [CheckoutOrder]
    /// Extends the lease of a saga still being worked on; false when the lease was lost.
    func renewLease(id: String, owner: String, until: Date) async throws -> Bool
    /// Postpones a saga's next attempt (the verifier could not be reached) and frees its lease.
    func retrySaga(id: String, owner: String, at: Date) async throws
    /// Success: capture the held credit, record the payment, confirm. False when already final.
    func confirm(id: String, now: Date) async throws -> Bool
    /// Many successes at once, each dated by its verifier's answer: one statement for all of them
    /// where the backend can. A saga whose buyer's credit is locked right now (a checkout of that
    /// buyer is being accepted) is left `busy` rather than making the whole group wait.
    func confirm(_ sagas: [VerifiedSaga]) async throws -> GroupConfirmation
    /// Failure or timeout: release stock, coupon use and credit, fail. False when already final.
    func fail(id: String, reason: String, now: Date) async throws -> Bool
    /// Pays for the buyer's held flash-sale order: in one transaction the order becomes `paying` with
    /// its shipping details, its sale price is held in the buyer's credit at the sale's store, and a
    /// checkout saga for it starts (verified, then captured — the order becomes `paid` with the
    /// capture — or failed, and the order is `held` again with the credit released). Nothing is
    /// written when it is refused: ``SoukError/notFound(_:)`` for an order that is not the buyer's
    /// (or not recorded yet), ``SoukError/paymentInProgress``, ``SoukError/alreadyPaid``,
    /// ``SoukError/insufficientCredit``. A card payment (`cardToken`, the provider's token for the
    /// card) holds no credit: its saga authorizes the card, then captures it with the confirmation.
    func payFlashSaleOrder(_ request: FlashSalePaymentRequest, cardToken: String?, deadline: TimeInterval, now: Date) async throws -> CheckoutOrder
    /// Records the provider's event `eventID` once and has the saga of `checkoutID` look at its
    /// payment again now. False for an event seen before (nothing is done again).
    func recordPaymentEvent(id eventID: String, type: String, checkoutID: String?, now: Date) async throws -> Bool
    /// Leases failed card checkouts whose charge the provider has not undone yet (a failure owes
    /// one, whoever decided it and whatever crashed after).
    func claimCardReleases(owner: String, lease: TimeInterval, limit: Int, now: Date) async throws -> [CheckoutOrder]
    /// The provider acknowledged the release of this checkout's charge.
    func cardReleased(id: String) async throws
    /// The vendor cancels a paid flash-sale order of one of its sales: in one transaction, a
    /// compare-and-set `paid → cancelled` (so it is refunded once, however many cancel at once),
    /// the sale's `paid` down and `refunded` up, the unit back in the product's stock, and the
    /// money back — the credit to the buyer's balance, or the card's charge marked owed back to the
    /// provider. ``SoukError/notFound(_:)`` for another vendor's order (or none),
    /// ``SoukError/notRefundable(status:)`` for one not paid.
    func cancelPaidFlashSaleOrder(orderID: String, vendorID: Int64, now: Date) async throws -> FlashSaleRefund
}

/// A saga the verifier approved, and when it answered: the time its decision carries.
public struct VerifiedSaga: Hashable, Sendable {
    public let id: String
    public let answeredAt: Date

    public init(id: String, answeredAt: Date) {
        self.id = id
        self.answeredAt = answeredAt
    }
}

/// What a group confirmation did. Sagas in neither list were already decided elsewhere.
public struct GroupConfirmation: Equatable, Sendable {
    public var confirmed: [String]
    /// Still in progress: their buyer's credit was locked, so they go in a later group.
    public var busy: [String]

    public init(confirmed: [String] = [], busy: [String] = []) {
        self.confirmed = confirmed
        self.busy = busy
    }
}

extension CheckoutStore {
    /// Pays with store credit.
    public func payFlashSaleOrder(_ request: FlashSalePaymentRequest, deadline: TimeInterval, now: Date) async throws -> CheckoutOrder {
        try await payFlashSaleOrder(request, cardToken: nil, deadline: deadline, now: now)
    }

    public func confirm(_ sagas: [VerifiedSaga]) async throws -> GroupConfirmation {
        try await confirmOneByOne(sagas)
    }

    /// For backends without a group statement; never `busy`, since each waits for its locks.
    public func confirmOneByOne(_ sagas: [VerifiedSaga]) async throws -> GroupConfirmation {
        var result = GroupConfirmation()
        for saga in sagas where try await confirm(id: saga.id, now: saga.answeredAt) {
            result.confirmed.append(saga.id)
        }
        return result
    }
}

/// The external check of a buyer; may be slow or stall. Returns whether the buyer is verified.
public protocol UserVerifier: Sendable {
    func verify(buyerID: String, orderID: String, timeout: Duration) async throws -> Bool
}

/// The verifier of the source text: sleeps a random time in a range, then says yes.
public struct SimulatedVerifier: UserVerifier {
    public let delay: ClosedRange<Duration>
    public let verdict: @Sendable (String) -> Bool

    public init(delay: ClosedRange<Duration> = .seconds(1) ... .seconds(100), verdict: @escaping @Sendable (String) -> Bool = { _ in true }) {
        self.delay = delay
        self.verdict = verdict
    }

    public func verify(buyerID: String, orderID: String, timeout: Duration) async throws -> Bool {
        let lowMillis = delay.lowerBound.milliseconds, highMillis = delay.upperBound.milliseconds
        let wait = Duration.milliseconds(Int64.random(in: lowMillis...max(lowMillis, highMillis)))
        try await Task.sleep(for: min(wait, timeout))
        if wait > timeout { throw VerifierTimeout() }
        return verdict(buyerID)
    }
}

public struct VerifierTimeout: Error {
    public init() {}
}
