import Foundation
import SoukCore

/// Analytics straight from the orders: store orders that are not cancelled, confirmed checkouts and
/// persisted flash-sale orders, bucketed by minute; views from `store_views`.
extension SQLStorage: AnalyticsStore {
    public func recordViews(_ counts: [Int64: Int], minute: Int64) async throws {
        guard !counts.isEmpty else { return }
        try await database.transaction { transaction in
            for (vendor, views) in counts.sorted(by: { $0.key < $1.key }) {
                try await transaction.query("""
                    INSERT INTO store_views (vendor_id, minute, views) VALUES (\(vendor), \(minute), \(views))
                    ON CONFLICT (vendor_id, minute) DO UPDATE SET views = store_views.views + excluded.views
                    """)
            }
        }
    }

    public func analytics(vendorID: Int64, minutes: Int, now: Date) async throws -> AnalyticsSnapshot {
        let nowMinute = Int64(now.timeIntervalSince1970) / 60
        let firstMinute = nowMinute - Int64(minutes) + 1
        let since = Date(timeIntervalSince1970: TimeInterval(firstMinute * 60))
        let microsPerMinute: Int64 = 60_000_000
        // Every order of the window: (minute, amount, currency, whether its money was taken). Revenue is
        // money taken only: a store order is paid on delivery, a confirmed checkout's credit was
        // captured, a flash-sale order once paid (its payment's checkout is not counted again; one
        // cancelled and refunded, or whose hold expired, is no sale).
        let rows = try await database.read("""
            SELECT created_at / \(microsPerMinute) AS minute, total_minor AS amount, currency,
                   CASE WHEN status = 'delivered' THEN 1 ELSE 0 END AS paid FROM orders
                WHERE vendor_id = \(vendorID) AND created_at >= \(since) AND status <> 'cancelled'
            UNION ALL
            SELECT created_at / \(microsPerMinute), total_minor, currency, 1 FROM checkouts
                WHERE vendor_id = \(vendorID) AND created_at >= \(since) AND status = 'confirmed' AND flash_order_id IS NULL
            UNION ALL
            SELECT o.created_at / \(microsPerMinute), s.price_minor, s.currency, CASE WHEN o.status = 'paid' THEN 1 ELSE 0 END
                FROM flash_sale_orders o JOIN flash_sales s ON s.id = o.sale_id
                WHERE s.vendor_id = \(vendorID) AND o.created_at >= \(since) AND o.status NOT IN ('cancelled', 'expired')
            """)
        var perMinute: [Int64: Int] = [:]
        var revenue: [String: Int64] = [:]
        for row in rows {
            perMinute[try row.int("minute"), default: 0] += 1
            guard try row.int("paid") == 1 else { continue }
            // Saturates: a vendor's own huge orders must not overflow the sum and kill the process.
            let (sum, overflow) = revenue[try row.string("currency"), default: 0].addingReportingOverflow(try row.int("amount"))
            revenue[try row.string("currency")] = overflow ? .max : sum
        }
        let top = try await database.read("""
            SELECT name, CAST(SUM(units) AS BIGINT) AS units FROM (
                SELECT i.name AS name, i.quantity AS units FROM order_items i JOIN orders o ON o.id = i.order_id
                    WHERE o.vendor_id = \(vendorID) AND o.created_at >= \(since) AND o.status <> 'cancelled'
                UNION ALL
                SELECT i.name, i.quantity FROM checkout_items i JOIN checkouts c ON c.id = i.checkout_id
                    WHERE c.vendor_id = \(vendorID) AND c.created_at >= \(since) AND c.status = 'confirmed'
                UNION ALL
                SELECT s.product_name, 1 FROM flash_sale_orders o JOIN flash_sales s ON s.id = o.sale_id
                    WHERE s.vendor_id = \(vendorID) AND o.created_at >= \(since)
            ) sold GROUP BY name ORDER BY units DESC, name LIMIT 5
            """).map { AnalyticsSnapshot.TopProduct(name: try $0.string("name"), units: Int(try $0.int("units"))) }
        let views = try await database.readFirst("""
            SELECT CAST(COALESCE(SUM(views), 0) AS BIGINT) AS views FROM store_views WHERE vendor_id = \(vendorID) AND minute >= \(firstMinute)
            """).map { Int(try $0.int("views")) } ?? 0
        let sales = try await database.read("""
            SELECT id, product_name, sold, quantity, ends_at FROM flash_sales
            WHERE vendor_id = \(vendorID) AND closed_at IS NULL ORDER BY starts_at, id LIMIT 10
            """).map {
            AnalyticsSnapshot.SaleProgress(
                id: try $0.int("id"), productName: try $0.string("product_name"), sold: Int(try $0.int("sold")),
                quantity: Int(try $0.int("quantity")), endsAt: try $0.date("ends_at"))
        }
        return AnalyticsSnapshot(
            perMinute: (firstMinute...nowMinute).map { AnalyticsSnapshot.Minute(minute: $0, orders: perMinute[$0] ?? 0) },
            orders: rows.count,
            revenue: revenue.sorted { $0.key < $1.key }.compactMap { code, amount in Currency(code: code).map { Money(minor: amount, currency: $0) } },
            topProducts: top, views: views, sales: sales)
    }
}
