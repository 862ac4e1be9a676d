import Foundation
import Synchronization

/// A vendor's live numbers over a recent window, recomputed from the orders themselves (so they are
/// never out of step with them).
public struct AnalyticsSnapshot: Sendable, Equatable {
    public struct Minute: Sendable, Equatable {
        /// Minutes since 1970.
        public let minute: Int64
        public let orders: Int

        public init(minute: Int64, orders: Int) {
            self.minute = minute
            self.orders = orders
        }
    }

    public struct TopProduct: Sendable, Equatable {
        public let name: String
        public let units: Int

        public init(name: String, units: Int) {
            self.name = name
            self.units = units
        }
    }

    public struct SaleProgress: Sendable, Equatable {
        public let id: Int64
        public let productName: String
        public let sold: Int
        public let quantity: Int
        public let endsAt: Date

        public init(id: Int64, productName: String, sold: Int, quantity: Int, endsAt: Date) {
            self.id = id
            self.productName = productName
            self.sold = sold
            self.quantity = quantity
            self.endsAt = endsAt
        }
    }

    /// One entry per minute of the window, oldest first, zeros included.
    public let perMinute: [Minute]
    public let orders: Int
    /// Revenue per currency (orders not cancelled, confirmed checkouts, flash-sale orders).
    public let revenue: [Money]
    public let topProducts: [TopProduct]
    /// Store page views in the window, and orders per view.
    public let views: Int
    public var conversion: Double? { views > 0 ? Double(orders) / Double(views) : nil }
    public let sales: [SaleProgress]

    public init(perMinute: [Minute], orders: Int, revenue: [Money], topProducts: [TopProduct], views: Int, sales: [SaleProgress]) {
        self.perMinute = perMinute
        self.orders = orders
        self.revenue = revenue
        self.topProducts = topProducts
        self.views = views
        self.sales = sales
    }
}

/// Where analytics come from, and where store-page views are counted.
public protocol AnalyticsStore: Sendable {
    /// Adds views by vendor for the minute `minute` (minutes since 1970).
    func recordViews(_ counts: [Int64: Int], minute: Int64) async throws
    func analytics(vendorID: Int64, minutes: Int, now: Date) async throws -> AnalyticsSnapshot
}

/// Counts store-page views in memory (a cached page costs a lock, not a write); a flusher moves
/// the counts to the ``AnalyticsStore`` every few seconds.
public final class ViewCounter: Sendable {
    private let counts = Mutex<[Int64: Int]>([:])

    public init() {}

    public func count(vendorID: Int64) {
        counts.withLock { $0[vendorID, default: 0] += 1 }
    }

    public func drain() -> [Int64: Int] {
        counts.withLock { counts in
            defer { counts.removeAll(keepingCapacity: true) }
            return counts
        }
    }
}
