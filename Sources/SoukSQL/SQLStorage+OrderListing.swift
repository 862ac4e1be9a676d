import Foundation
import SoukCore

/// Every kind of order in one list: store orders, checkouts and flash-sale orders, each read from
/// its own table into the same columns and merged newest first.
extension SQLStorage {
    public func orderSummaries(_ filter: OrderFilter, after: OrderListPosition?, limit: Int) async throws -> [OrderSummary] {
        let sources = filter.source.map { [$0] } ?? OrderSource.allCases
        var sql: SQL = "SELECT * FROM ("
        for (index, source) in sources.enumerated() {
            if index > 0 { sql.append(" UNION ALL ") }
            sql.append(Self.branch(source, owner: filter.owner))
        }
        sql.append(") listed WHERE 1 = 1")
        if let status = filter.status { sql.append(" AND status = \(status)") }
        if let query = filter.query, !query.isEmpty {
            let pattern = "%" + query.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
            sql.append("""
                 AND (LOWER(id) LIKE LOWER(\(pattern)) ESCAPE '\\' OR LOWER(COALESCE(customer_name, '')) LIKE LOWER(\(pattern)) ESCAPE '\\'
                      OR LOWER(COALESCE(customer_email, '')) LIKE LOWER(\(pattern)) ESCAPE '\\')
                """)
        }
        if let after {
            sql.append(" AND (created_at < \(after.createdAtMicroseconds) OR (created_at = \(after.createdAtMicroseconds) AND id < \(after.id)))")
        }
        sql.append(" ORDER BY created_at DESC, id DESC LIMIT \(limit)")
        let rows = try await database.read(sql)
        let lines = try await self.lines(of: rows)
        return try rows.map { row in
            let id = try row.string("id")
            let source = OrderSource(rawValue: try row.string("source")) ?? .store
            let email = try row.optionalString("customer_email")
            return OrderSummary(
                id: id, source: source, number: try row.optionalInt("number"), vendorID: try row.int("vendor_id"), storeName: try row.string("store_name"),
                storeUsername: try row.string("store_username"), customerID: try row.optionalString("customer_id"),
                customerName: try row.optionalString("customer_name"), customerContact: try row.optionalString("customer_phone") ?? email,
                customerAddress: try row.optionalString("customer_address"), status: try row.string("status"),
                paymentStatus: PaymentStatus(rawValue: try row.string("payment_status")) ?? .none,
                lines: lines[id] ?? [], total: Money(minor: try row.int("total_minor"), currency: try Self.currency(row.string("currency"))),
                createdAt: try row.date("created_at"), holdExpiresAt: try row.optionalInt("hold_expires_at").map { Date(sqlMicroseconds: $0) })
        }
    }

    /// One source's orders in the list's columns, narrowed to the owner inside (where the indexes are).
    private static func branch(_ source: OrderSource, owner: OrderFilter.Owner) -> SQL {
        var sql: SQL
        switch source {
        case .store:
            // Paid on delivery: the money is taken when the order is delivered.
            sql = """
                SELECT o.reference AS id, 'store' AS source, o.id AS number, o.vendor_id, v.store_name, v.username AS store_username,
                       o.customer_id, o.customer_name, o.customer_phone, o.customer_address, c.email AS customer_email, o.status,
                       CASE o.status WHEN 'delivered' THEN 'paid' WHEN 'cancelled' THEN 'none' ELSE 'on_delivery' END AS payment_status,
                       o.total_minor, o.currency, o.created_at, CAST(NULL AS BIGINT) AS hold_expires_at
                FROM orders o JOIN vendors v ON v.id = o.vendor_id LEFT JOIN customers c ON c.id = o.customer_id
                """
            switch owner {
            case .vendor(let id): sql.append(" WHERE o.vendor_id = \(id)")
            case .customer(let id): sql.append(" WHERE o.customer_id = \(id)")
            }
        case .checkout:
            // The credit is held while the order is verified, then captured or released.
            sql = """
                SELECT k.id, 'checkout' AS source, NULL AS number, k.vendor_id, v.store_name, v.username AS store_username,
                       k.buyer_id AS customer_id, c.name AS customer_name, NULL AS customer_phone, NULL AS customer_address, c.email AS customer_email, k.status,
                       CASE k.status WHEN 'confirmed' THEN 'paid' WHEN 'failed' THEN 'released' ELSE 'held' END AS payment_status,
                       k.total_minor, k.currency, k.created_at, CAST(NULL AS BIGINT) AS hold_expires_at
                FROM checkouts k JOIN vendors v ON v.id = k.vendor_id LEFT JOIN customers c ON c.id = k.buyer_id
                """
            switch owner {
            case .vendor(let id): sql.append(" WHERE k.vendor_id = \(id)")
            case .customer(let id): sql.append(" WHERE k.buyer_id = \(id)")
            }
            // A payment for a flash-sale order is listed as that order.
            sql.append(" AND k.flash_order_id IS NULL")
        case .flashSale:
            // A unit kept for the buyer at the sale's price until it is paid; the shipping details
            // are those given with the payment.
            sql = """
                SELECT f.order_id AS id, 'flash_sale' AS source, NULL AS number, s.vendor_id, v.store_name, v.username AS store_username,
                       f.buyer_id AS customer_id, COALESCE(f.ship_name, c.name) AS customer_name, f.ship_phone AS customer_phone,
                       f.ship_address AS customer_address, c.email AS customer_email, f.status,
                       CASE f.status WHEN 'paid' THEN 'paid' WHEN 'paying' THEN 'held' WHEN 'expired' THEN 'none' WHEN 'cancelled' THEN 'refunded'
                            ELSE 'unpaid' END AS payment_status,
                       s.price_minor AS total_minor, s.currency, f.admitted_at AS created_at,
                       CASE WHEN f.status = 'held' THEN f.hold_expires_at END AS hold_expires_at
                FROM flash_sale_orders f JOIN flash_sales s ON s.id = f.sale_id JOIN vendors v ON v.id = s.vendor_id
                     LEFT JOIN customers c ON c.id = f.buyer_id
                """
            switch owner {
            case .vendor(let id): sql.append(" WHERE s.vendor_id = \(id)")
            case .customer(let id): sql.append(" WHERE f.buyer_id = \(id)")
            }
        }
        return sql
    }

    /// The lines of the listed orders, by order id, in their positions.
    private func lines(of rows: [SQLRow]) async throws -> [String: [OrderLine]] {
        var ids: [OrderSource: [String]] = [:]
        for row in rows { ids[OrderSource(rawValue: try row.string("source")) ?? .store, default: []].append(try row.string("id")) }
        var lines: [String: [OrderLine]] = [:]
        func list(_ values: [String]) -> SQL {
            var sql: SQL = "("
            for (index, value) in values.enumerated() {
                if index > 0 { sql.append(", ") }
                sql.append("\(value)")
            }
            sql.append(")")
            return sql
        }
        if let references = ids[.store] {
            var sql: SQL = """
                SELECT o.reference AS order_id, i.product_id, i.name, i.unit_price_minor, i.quantity
                FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.reference IN
                """
            sql.append(list(references))
            sql.append(" ORDER BY i.order_id, i.position")
            for row in try await database.read(sql) { lines[try row.string("order_id"), default: []].append(try Self.orderLine(row)) }
        }
        if let checkouts = ids[.checkout] {
            var sql: SQL = "SELECT checkout_id AS order_id, product_id, name, unit_price_minor, quantity FROM checkout_items WHERE checkout_id IN "
            sql.append(list(checkouts))
            sql.append(" ORDER BY checkout_id, position")
            for row in try await database.read(sql) { lines[try row.string("order_id"), default: []].append(try Self.orderLine(row)) }
        }
        if let admissions = ids[.flashSale] {
            var sql: SQL = """
                SELECT f.order_id, s.product_id, s.product_name AS name, s.price_minor AS unit_price_minor, 1 AS quantity
                FROM flash_sale_orders f JOIN flash_sales s ON s.id = f.sale_id WHERE f.order_id IN
                """
            sql.append(list(admissions))
            for row in try await database.read(sql) { lines[try row.string("order_id"), default: []].append(try Self.orderLine(row)) }
        }
        return lines
    }

    private static func orderLine(_ row: SQLRow) throws -> OrderLine {
        OrderLine(productID: try row.optionalInt("product_id"), name: try row.string("name"),
                  unitPriceMinor: try row.int("unit_price_minor"), quantity: Int(try row.int("quantity")))
    }
}
