import Foundation
import SoukCore

extension SQLStorage: FlashSaleStore {
    static let flashSaleColumns: SQL = """
         id, vendor_id, product_id, product_name, price_minor, list_price_minor, currency, quantity, per_buyer_limit, sold,
        starts_at, ends_at, created_at, closed_at, verified_only, paid, hold_seconds, expired, refunded 
        """

    public func createFlashSale(vendorID: Int64, _ draft: FlashSaleDraft, now: Date) async throws -> FlashSale {
        try await database.transaction { transaction in
            // The sale's units leave the product's stock now, so the store link cannot sell them too.
            guard let product = try await transaction.first("""
                UPDATE products SET stock = stock - \(draft.quantity), updated_at = \(now)
                WHERE id = \(draft.productID) AND vendor_id = \(vendorID) AND stock >= \(draft.quantity)
                RETURNING name, price_minor, currency
                """)
            else {
                guard let row = try await transaction.first("SELECT name, stock FROM products WHERE id = \(draft.productID) AND vendor_id = \(vendorID)") else {
                    throw SoukError.validationFailed([FieldError(field: "product_id", message: "must be one of your products")])
                }
                throw SoukError.insufficientStock(productID: draft.productID, name: try row.string("name"), requested: draft.quantity, available: Int(try row.int("stock")))
            }
            let listPrice = try product.int("price_minor")
            if let salePrice = draft.salePriceMinor, salePrice > listPrice {
                // Nothing is written: the statement above is undone with the transaction.
                let price = Money(minor: listPrice, currency: try Self.currency(product.string("currency")))
                throw SoukError.validationFailed([FieldError(field: "sale_price_minor", message: "must be at most the product's price, \(price.formatted)")])
            }
            var sql: SQL = """
                INSERT INTO flash_sales (vendor_id, product_id, product_name, price_minor, list_price_minor, currency, quantity, per_buyer_limit, sold, starts_at, ends_at, created_at,
                                         verified_only, hold_seconds)
                VALUES (\(vendorID), \(draft.productID), \(try product.string("name")), \(draft.salePriceMinor ?? listPrice), \(listPrice), \(try product.string("currency")),
                        \(draft.quantity), \(draft.perBuyerLimit), \(0), \(draft.startsAt), \(draft.endsAt), \(now), \(draft.verifiedOnly), \(draft.holdSeconds))
                RETURNING
                """
            sql.append(Self.flashSaleColumns)
            return try Self.flashSale(try await transaction.query(sql)[0])
        }
    }

    public func flashSale(id: Int64) async throws -> FlashSale? {
        var sql: SQL = "SELECT"
        sql.append(Self.flashSaleColumns)
        sql.append("FROM flash_sales WHERE id = \(id)")
        return try await database.readFirst(sql).map(Self.flashSale)
    }

    public func flashSales(vendorID: Int64) async throws -> [FlashSale] {
        var sql: SQL = "SELECT"
        sql.append(Self.flashSaleColumns)
        sql.append("FROM flash_sales WHERE vendor_id = \(vendorID) ORDER BY id DESC LIMIT \(200)")
        return try await database.read(sql).map(Self.flashSale)
    }

    public func openFlashSales() async throws -> [FlashSale] {
        var sql: SQL = "SELECT"
        sql.append(Self.flashSaleColumns)
        sql.append("FROM flash_sales WHERE closed_at IS NULL ORDER BY id LIMIT \(1_000)")
        return try await database.read(sql).map(Self.flashSale)
    }

    public func persistAdmitted(_ orders: [AdmittedOrder]) async throws -> Int {
        guard !orders.isEmpty else { return 0 }
        let now = Date()
        if database.dialect == .postgres { return try await persistInOneStatement(orders, now: now) }
        return try await database.transaction { transaction in
            // One statement for the whole batch; an order already recorded (a redelivery) is skipped
            // by the unique order id, so it is never counted twice.
            // The hold runs from the admission for the sale's hold_seconds.
            var insert: SQL = "INSERT INTO flash_sale_orders (order_id, sale_id, buyer_id, n, request_key, admitted_at, created_at, hold_expires_at) VALUES "
            for (index, order) in orders.enumerated() {
                if index > 0 { insert.append(", ") }
                insert.append("""
                    (\(order.orderID), \(order.saleID), \(order.buyerID), \(order.n), \(order.requestKey), \(order.admittedAt), \(now),
                     \(order.admittedAt) + 1000000 * (SELECT hold_seconds FROM flash_sales WHERE id = \(order.saleID)))
                    """)
            }
            insert.append(" ON CONFLICT DO NOTHING RETURNING sale_id")
            let inserted = try await transaction.query(insert)
            var perSale: [Int64: Int] = [:]
            for row in inserted { perSale[try row.int("sale_id"), default: 0] += 1 }
            for (saleID, count) in perSale.sorted(by: { $0.key < $1.key }) {
                // CHECK (sold <= quantity) makes an oversold sale impossible to commit.
                try await transaction.query("UPDATE flash_sales SET sold = sold + \(count) WHERE id = \(saleID)")
            }
            return inserted.count
        }
    }

    /// The batch as one statement on PostgreSQL (autocommit, so atomic by itself): the orders
    /// travel as six arrays, so every batch has the same text and is planned once per connection;
    /// the sold counters move by what was really inserted, in the same statement. A plain insert
    /// first: an order already recorded is rare (a redelivery after a worker died) and then refuses
    /// the whole statement (23505), which goes again skipping what is there. `ON CONFLICT` on every
    /// batch cost a quarter of PostgreSQL's time per order (a speculative insertion per row).
    func persistInOneStatement(_ orders: [AdmittedOrder], now: Date) async throws -> Int {
        do {
            return try await persistInOneStatement(orders, now: now, skippingRecorded: false)
        } catch where Self.isUniqueViolation(error) {
            return try await persistInOneStatement(orders, now: now, skippingRecorded: true)
        }
    }

    private func persistInOneStatement(_ orders: [AdmittedOrder], now: Date, skippingRecorded: Bool) async throws -> Int {
        var statement: SQL = """
            WITH inserted AS (
                INSERT INTO flash_sale_orders (order_id, sale_id, buyer_id, n, request_key, admitted_at, created_at, hold_expires_at)
                SELECT batch.order_id, batch.sale_id, batch.buyer_id, batch.n, batch.request_key, batch.admitted_at, \(now),
                       batch.admitted_at + 1000000 * flash_sales.hold_seconds
                FROM unnest(\(orders.map(\.orderID))::text[], \(orders.map(\.saleID))::bigint[], \(orders.map(\.buyerID))::text[],
                            \(orders.map { Int64($0.n) })::bigint[], \(orders.map(\.requestKey))::text[], \(orders.map(\.admittedAt.sqlMicroseconds))::bigint[])
                     AS batch(order_id, sale_id, buyer_id, n, request_key, admitted_at)
                JOIN flash_sales ON flash_sales.id = batch.sale_id
            """
        if skippingRecorded { statement.append(" ON CONFLICT DO NOTHING") }
        statement.append("""
             RETURNING sale_id),
            counted AS (SELECT sale_id, COUNT(*) AS new FROM inserted GROUP BY sale_id),
            sold AS (
                UPDATE flash_sales SET sold = sold + counted.new FROM counted WHERE flash_sales.id = counted.sale_id
                RETURNING counted.new)
            SELECT COALESCE(SUM(new), 0)::bigint AS new FROM sold
            """)
        return Int(try await database.execute(statement.prepared()).first?.int("new") ?? 0)
    }

    public func flashSaleOrders(saleID: Int64, after: Int64?, limit: Int) async throws -> [FlashSaleOrder] {
        try await database.read("""
            SELECT seq, order_id, buyer_id, admitted_at, created_at FROM flash_sale_orders
            WHERE sale_id = \(saleID) AND seq > \(after ?? 0) ORDER BY seq LIMIT \(limit)
            """).map { row in
            FlashSaleOrder(
                orderID: try row.string("order_id"), buyerID: try row.string("buyer_id"), quantity: 1,
                admittedAt: try row.date("admitted_at"), createdAt: try row.date("created_at"), sequence: try row.int("seq"))
        }
    }

    public func allAdmittedOrders(saleID: Int64) async throws -> [AdmittedOrder] {
        try await database.read("""
            SELECT order_id, buyer_id, n, request_key, admitted_at, status FROM flash_sale_orders WHERE sale_id = \(saleID) ORDER BY seq
            """).map { row in
            AdmittedOrder(
                orderID: try row.string("order_id"), saleID: saleID, buyerID: try row.string("buyer_id"), n: Int(try row.int("n")),
                requestKey: try row.string("request_key"), admittedAt: try row.date("admitted_at"), isExpired: try row.string("status") == "expired")
        }
    }

    public func orderTally(saleID: Int64) async throws -> FlashSaleTally? {
        let rows = try await database.read("""
            SELECT s.quantity, s.sold, s.paid, s.refunded, s.expired, o.status, COUNT(o.order_id) AS n
            FROM flash_sales s LEFT JOIN flash_sale_orders o ON o.sale_id = s.id
            WHERE s.id = \(saleID) GROUP BY s.quantity, s.sold, s.paid, s.refunded, s.expired, o.status
            """)
        guard let first = rows.first else { return nil }
        var tally = FlashSaleTally(
            quantity: Int(try first.int("quantity")), sold: Int(try first.int("sold")), paid: Int(try first.int("paid")),
            refunded: Int(try first.int("refunded")), expired: Int(try first.int("expired")))
        for row in rows {
            if let status = try row.optionalString("status").flatMap(FlashSaleOrderStatus.init(rawValue:)) { tally.rows[status] = Int(try row.int("n")) }
        }
        return tally
    }

    public func expireHolds(now: Date, limit: Int) async throws -> [ExpiredHold] {
        try await database.transaction { transaction in
            let expired = try await transaction.query("""
                UPDATE flash_sale_orders SET status = 'expired', expired_at = \(now)
                WHERE order_id IN (SELECT order_id FROM flash_sale_orders WHERE status = 'held' AND hold_expires_at <= \(now)
                                   ORDER BY hold_expires_at LIMIT \(limit))
                  AND status = 'held' AND hold_expires_at <= \(now)
                RETURNING sale_id, order_id
                """)
            var perSale: [Int64: Int] = [:]
            for row in expired { perSale[try row.int("sale_id"), default: 0] += 1 }
            for (saleID, count) in perSale.sorted(by: { $0.key < $1.key }) {
                // Read under the row's lock: a sale closed already returned its unsold units to the
                // product, so these go there now; an open sale's go back to its gate.
                guard let sale = try await transaction.first("""
                    UPDATE flash_sales SET sold = sold - \(count), expired = expired + \(count) WHERE id = \(saleID) RETURNING closed_at, product_id
                    """) else { continue }
                if try sale.optionalInt("closed_at") != nil, let productID = try sale.optionalInt("product_id") {
                    try await transaction.query("UPDATE products SET stock = stock + \(count), updated_at = \(now) WHERE id = \(productID)")
                }
            }
            return try expired.map { ExpiredHold(saleID: try $0.int("sale_id"), orderID: try $0.string("order_id")) }
        }
    }

    public func closeFlashSale(id: Int64, now: Date) async throws -> Bool {
        try await database.transaction { transaction in
            guard let sale = try await transaction.first("""
                UPDATE flash_sales SET closed_at = \(now) WHERE id = \(id) AND closed_at IS NULL
                RETURNING quantity, sold, product_id
                """) else { return false }
            if let productID = try sale.optionalInt("product_id") {
                let unsold = try sale.int("quantity") - sale.int("sold")
                try await transaction.query("UPDATE products SET stock = stock + \(unsold), updated_at = \(now) WHERE id = \(productID)")
            }
            return true
        }
    }

    public func endFlashSale(id: Int64, vendorID: Int64, now: Date) async throws -> FlashSale? {
        // A scheduled sale starts and ends now (ends_at must stay after starts_at).
        var sql: SQL = """
            UPDATE flash_sales SET starts_at = CASE WHEN starts_at < \(now) THEN starts_at ELSE \(now.addingTimeInterval(-0.001)) END, ends_at = \(now)
            WHERE id = \(id) AND vendor_id = \(vendorID) AND closed_at IS NULL AND ends_at > \(now)
            RETURNING
            """
        sql.append(Self.flashSaleColumns)
        if let ended = try await database.write(sql).first { return try Self.flashSale(ended) }
        guard let sale = try await flashSale(id: id), sale.vendorID == vendorID else { return nil }
        return sale
    }

    static func flashSale(_ row: SQLRow) throws -> FlashSale {
        let currency = try currency(row.string("currency"))
        return FlashSale(
            id: try row.int("id"), vendorID: try row.int("vendor_id"), productID: try row.optionalInt("product_id"),
            productName: try row.string("product_name"),
            price: Money(minor: try row.int("price_minor"), currency: currency),
            quantity: Int(try row.int("quantity")), perBuyerLimit: Int(try row.int("per_buyer_limit")),
            startsAt: try row.date("starts_at"), endsAt: try row.date("ends_at"), createdAt: try row.date("created_at"),
            sold: Int(try row.int("sold")), closedAt: try row.optionalInt("closed_at").map { Date(sqlMicroseconds: $0) },
            verifiedOnly: try row.bool("verified_only"),
            // Sales made before list prices were kept sold at the product's price.
            listPrice: try row.optionalInt("list_price_minor").map { Money(minor: $0, currency: currency) },
            paid: Int(try row.int("paid")), holdSeconds: Int(try row.int("hold_seconds")), expired: Int(try row.int("expired")),
            refunded: Int(try row.int("refunded"))
        )
    }
}
