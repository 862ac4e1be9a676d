import Foundation

/// Where an order came from: the store link (a guest's or a customer's form), a checkout (the
/// saga over stock, coupon and credit) or a flash sale (an admission).
public enum OrderSource: String, Sendable, CaseIterable, Codable {
    case store, checkout
    case flashSale = "flash_sale"
}

/// Whether the money of an order has been taken. Store-link orders are paid on delivery; a
/// checkout's credit is held while it is verified, then captured or released; a flash-sale
/// order is unpaid while held, its credit held while its payment is verified, then paid.
public enum PaymentStatus: String, Sendable, CaseIterable, Codable {
    case onDelivery = "on_delivery"
    case held, paid, released, unpaid, none, refunded
}

/// One order of any source, as a list shows it: for the vendor's one orders list and the
/// customer's "My orders".
public struct OrderSummary: Hashable, Sendable {
    /// The order's id in its source: a store order's reference, a checkout's `co_…`, a flash-sale order id.
    public let id: String
    public let source: OrderSource
    /// A store order's number in the vendor's API (`PATCH /api/v1/orders/{number}`); nil for the others.
    public let number: Int64?
    public let vendorID: Int64
    public let storeName: String
    public let storeUsername: String
    /// The customer account, when the order was placed signed in.
    public let customerID: String?
    public let customerName: String?
    /// The phone a guest gave, or the customer's email.
    public let customerContact: String?
    public let customerAddress: String?
    public let status: String
    public let paymentStatus: PaymentStatus
    public let lines: [OrderLine]
    public let total: Money
    public let createdAt: Date
    /// A held flash-sale order's deadline to be paid; nil for every other order.
    public let holdExpiresAt: Date?

    public init(
        id: String, source: OrderSource, number: Int64?, vendorID: Int64, storeName: String, storeUsername: String, customerID: String?, customerName: String?,
        customerContact: String?, customerAddress: String?, status: String, paymentStatus: PaymentStatus, lines: [OrderLine], total: Money, createdAt: Date,
        holdExpiresAt: Date? = nil
    ) {
        self.holdExpiresAt = holdExpiresAt
        self.id = id
        self.source = source
        self.number = number
        self.vendorID = vendorID
        self.storeName = storeName
        self.storeUsername = storeUsername
        self.customerID = customerID
        self.customerName = customerName
        self.customerContact = customerContact
        self.customerAddress = customerAddress
        self.status = status
        self.paymentStatus = paymentStatus
        self.lines = lines
        self.total = total
        self.createdAt = createdAt
    }

    /// Where the next page starts: newest first, ties broken by id.
    public var position: OrderListPosition { OrderListPosition(createdAt: createdAt, id: id) }
}

/// A place in an orders list, newest first; its text form is the `cursor` of the next page.
public struct OrderListPosition: Hashable, Sendable {
    public let createdAtMicroseconds: Int64
    public let id: String

    public init(createdAt: Date, id: String) {
        self.createdAtMicroseconds = Int64((createdAt.timeIntervalSince1970 * 1_000_000).rounded())
        self.id = id
    }

    /// `<microseconds>~<id>`; nil for any other text (a client's cursor is input like any other).
    public init?(cursor: some StringProtocol) {
        let parts = cursor.split(separator: "~", maxSplits: 1, omittingEmptySubsequences: false)
        guard cursor.utf8.count <= 120, parts.count == 2, let micros = Int64(parts[0]), micros >= 0, !parts[1].isEmpty,
              parts[1].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
        else { return nil }
        self.createdAtMicroseconds = micros
        self.id = String(parts[1])
    }

    public var cursor: String { "\(createdAtMicroseconds)~\(id)" }
}

/// Which orders a list shows: one vendor's or one customer's, optionally narrowed.
public struct OrderFilter: Hashable, Sendable {
    public enum Owner: Hashable, Sendable {
        case vendor(Int64)
        case customer(String)
    }

    public var owner: Owner
    public var source: OrderSource?
    /// A status of the order's own source (`placed`, `confirmed`, `held`, …).
    public var status: String?
    /// Part of the order's id, the customer's name or their email, any case.
    public var query: String?

    public init(owner: Owner, source: OrderSource? = nil, status: String? = nil, query: String? = nil) {
        self.owner = owner
        self.source = source
        self.status = status
        self.query = query
    }

    /// Every status an order of some source can have, for validating a filter.
    public static let statuses: Set<String> = Set(OrderStatus.allCases.map(\.rawValue) + ["in_progress", "failed"] + FlashSaleOrderStatus.allCases.map(\.rawValue))
}

/// Every kind of order in one list.
public protocol OrderListing: Sendable {
    /// Orders matching `filter`, newest first, starting after `after`, at most `limit`.
    func orderSummaries(_ filter: OrderFilter, after: OrderListPosition?, limit: Int) async throws -> [OrderSummary]
}
