import Foundation
import SoukCore

extension SQLStorage {
    static let orderColumns: SQL = """
         id, vendor_id, reference, status, customer_name, customer_phone, customer_address, total_minor,
        currency, created_at, updated_at 
        """

    public func placeOrder(vendorID: Int64, _ request: OrderRequest) async throws -> Order {
        if database.dialect == .postgres, request.items.count == 1, request.idempotencyKey == nil,
           let order = try await placeOneItemOrder(vendorID: vendorID, request) {
            return order
        }
        do {
            return try await placeOrderInTransaction(vendorID: vendorID, request)
        } catch is KeyAlreadyUsed {
            return try await orderOfKey(vendorID: vendorID, request)
        }
    }

    /// The key's row was there: its request committed (or is committing) first.
    private struct KeyAlreadyUsed: Error {}

    /// The order a key already placed, when the request is the same one; 422 when it is not.
    private func orderOfKey(vendorID: Int64, _ request: OrderRequest) async throws -> Order {
        guard let key = request.idempotencyKey,
              let row = try await database.readFirst("""
                SELECT request_fingerprint, order_id FROM order_requests WHERE vendor_id = \(vendorID) AND idempotency_key = \(key)
                """)
        else { throw SoukError.idempotencyKeyReused }
        guard try row.string("request_fingerprint") == request.fingerprint else { throw SoukError.idempotencyKeyReused }
        guard let orderID = try row.optionalInt("order_id"), let order = try await order(id: orderID, vendorID: vendorID) else {
            throw SoukError.idempotencyKeyReused
        }
        return order
    }

    private func placeOrderInTransaction(vendorID: Int64, _ request: OrderRequest) async throws -> Order {
        try await database.transaction { transaction in
            let now = Date()
            if let key = request.idempotencyKey {
                // Claimed first: a concurrent request with the same key waits here on PostgreSQL (SQLite
                // has one writer) and then finds it taken. A refused order rolls the claim back with it.
                let claimed = try await transaction.first("""
                    INSERT INTO order_requests (vendor_id, idempotency_key, request_fingerprint, created_at)
                    VALUES (\(vendorID), \(key), \(request.fingerprint), \(now))
                    ON CONFLICT (vendor_id, idempotency_key) DO NOTHING
                    RETURNING vendor_id
                    """)
                guard claimed != nil else { throw KeyAlreadyUsed() }
            }
            var lines: [OrderLine] = []
            var currencies: Set<String> = []
            // Items come sorted by product id, so concurrent orders take row locks in one order.
            for item in request.items {
                // The conditional decrement is the stock check: it cannot go below zero, even under races.
                let taken = try await transaction.first("""
                    UPDATE products SET stock = stock - \(item.quantity), updated_at = \(now)
                    WHERE id = \(item.productID) AND vendor_id = \(vendorID) AND available = \(true) AND stock >= \(item.quantity)
                    RETURNING name, price_minor, currency
                    """)
                guard let taken else {
                    throw try await Self.whyNotTaken(item, vendorID: vendorID, transaction)
                }
                currencies.insert(try taken.string("currency"))
                lines.append(OrderLine(productID: item.productID, name: try taken.string("name"), unitPriceMinor: try taken.int("price_minor"), quantity: item.quantity))
            }
            guard currencies.count == 1, let code = currencies.first else { throw SoukError.mixedCurrency }
            var total: Int64 = 0
            for line in lines {
                let (lineTotal, overflow1) = line.unitPriceMinor.multipliedReportingOverflow(by: Int64(line.quantity))
                let (sum, overflow2) = total.addingReportingOverflow(lineTotal)
                guard !overflow1, !overflow2 else {
                    throw SoukError.validationFailed([.init(field: "items", message: "total is too large")])
                }
                total = sum
            }
            let customer = request.customer
            var inserted: SQLRow?
            // 50 random bits rarely collide; when one does, draw again instead of failing the order.
            for _ in 0..<5 where inserted == nil {
                inserted = try await transaction.first("""
                    INSERT INTO orders (vendor_id, reference, status, customer_id, customer_name, customer_phone, customer_address, total_minor, currency, created_at, updated_at)
                    VALUES (\(vendorID), \(OrderReference.random()), \(OrderStatus.placed.rawValue), \(request.customerID), \(customer.name), \(customer.phone),
                            \(customer.address), \(total), \(code), \(now), \(now))
                    ON CONFLICT (reference) DO NOTHING
                    RETURNING id, reference
                    """)
            }
            guard let inserted else { throw SQLDatabaseError.typeMismatch(column: "reference", expected: "a free order reference") }
            let orderID = try inserted.int("id")
            var insertItems: SQL = "INSERT INTO order_items (order_id, position, product_id, name, unit_price_minor, quantity) VALUES "
            for (position, line) in lines.enumerated() {
                if position > 0 { insertItems.append(", ") }
                insertItems.append("(\(orderID), \(position), \(line.productID), \(line.name), \(line.unitPriceMinor), \(line.quantity))")
            }
            try await transaction.query(insertItems)
            if let key = request.idempotencyKey {
                try await transaction.query("UPDATE order_requests SET order_id = \(orderID) WHERE vendor_id = \(vendorID) AND idempotency_key = \(key)")
            }
            return Order(
                id: orderID, vendorID: vendorID, reference: try inserted.string("reference"), status: .placed,
                customer: customer, lines: lines, total: Money(minor: total, currency: try Self.currency(code)),
                createdAt: Date(sqlMicroseconds: now.sqlMicroseconds), updatedAt: Date(sqlMicroseconds: now.sqlMicroseconds)
            )
        }
    }

    /// The common order of one product in one statement on PostgreSQL (data-modifying CTEs): the
    /// stock decrement, the order and its line commit together or not at all, in one round trip
    /// instead of five. Nil when the statement cannot decide (a reference collision, a total too
    /// large): the general path then runs and reports precisely.
    func placeOneItemOrder(vendorID: Int64, _ request: OrderRequest) async throws -> Order? {
        let item = request.items[0]
        let customer = request.customer
        let now = Date()
        for _ in 0..<3 {
            let rows: [SQLRow]
            do {
                let statement: SQL = """
                    WITH taken AS (
                        UPDATE products SET stock = stock - \(item.quantity), updated_at = \(now)
                        WHERE id = \(item.productID) AND vendor_id = \(vendorID) AND available = TRUE AND stock >= \(item.quantity)
                        RETURNING id, name, price_minor, currency),
                    placed AS (
                        INSERT INTO orders (vendor_id, reference, status, customer_id, customer_name, customer_phone, customer_address, total_minor, currency, created_at, updated_at)
                        SELECT \(vendorID), \(OrderReference.random()), \(OrderStatus.placed.rawValue), \(request.customerID), \(customer.name), \(customer.phone), \(customer.address),
                               taken.price_minor * \(item.quantity), taken.currency, \(now), \(now)
                        FROM taken
                        RETURNING id, reference, total_minor, currency),
                    line AS (
                        INSERT INTO order_items (order_id, position, product_id, name, unit_price_minor, quantity)
                        SELECT placed.id, 0, taken.id, taken.name, taken.price_minor, \(item.quantity) FROM placed, taken
                        RETURNING order_id)
                    SELECT placed.id, placed.reference, placed.total_minor, placed.currency, taken.name, taken.price_minor
                    FROM placed, taken, line
                    """
                rows = try await database.execute(statement.prepared())
            } catch where Self.isRetryableOrderStatement(error) {
                continue  // a duplicate reference or an overflowing total rolled the whole statement back
            }
            guard let row = rows.first else {
                // Nothing was taken, so nothing was written: say why.
                throw try await database.transaction { try await Self.whyNotTaken(item, vendorID: vendorID, $0) }
            }
            let line = OrderLine(productID: item.productID, name: try row.string("name"), unitPriceMinor: try row.int("price_minor"), quantity: item.quantity)
            return Order(
                id: try row.int("id"), vendorID: vendorID, reference: try row.string("reference"), status: .placed,
                customer: customer, lines: [line], total: Money(minor: try row.int("total_minor"), currency: try Self.currency(row.string("currency"))),
                createdAt: Date(sqlMicroseconds: now.sqlMicroseconds), updatedAt: Date(sqlMicroseconds: now.sqlMicroseconds))
        }
        return nil
    }

    /// Explains a failed decrement for a store order (scoped to the store's vendor) or a checkout (any vendor).
    static func whyNotTaken(_ item: OrderRequest.Item, vendorID: Int64?, _ transaction: any SQLTransaction) async throws -> SoukError {
        let found: SQLRow? = if let vendorID {
            try await transaction.first("SELECT name, available, stock FROM products WHERE id = \(item.productID) AND vendor_id = \(vendorID)")
        } else {
            try await transaction.first("SELECT name, available, stock FROM products WHERE id = \(item.productID)")
        }
        guard let row = found else { return .unknownProduct(productID: item.productID) }
        let name = try row.string("name")
        guard try row.bool("available") else { return .productUnavailable(productID: item.productID, name: name) }
        return .insufficientStock(productID: item.productID, name: name, requested: item.quantity, available: Int(try row.int("stock")))
    }

    public func orders(vendorID: Int64, before: Int64?, limit: Int) async throws -> [Order] {
        var sql: SQL = "SELECT "
        sql.append(Self.orderColumns)
        sql.append("FROM orders WHERE vendor_id = \(vendorID) AND id < \(before ?? Int64.max) ORDER BY id DESC LIMIT \(limit)")
        return try await withLines(database.read(sql)) { try await database.read($0) }
    }

    public func order(id: Int64, vendorID: Int64) async throws -> Order? {
        var sql: SQL = "SELECT "
        sql.append(Self.orderColumns)
        sql.append("FROM orders WHERE id = \(id) AND vendor_id = \(vendorID)")
        return try await withLines(database.read(sql)) { try await database.read($0) }.first
    }

    public func order(reference: String, vendorID: Int64) async throws -> Order? {
        var sql: SQL = "SELECT "
        sql.append(Self.orderColumns)
        sql.append("FROM orders WHERE reference = \(reference) AND vendor_id = \(vendorID)")
        return try await withLines(database.read(sql)) { try await database.read($0) }.first
    }

    public func updateOrderStatus(id: Int64, vendorID: Int64, to status: OrderStatus) async throws -> Order? {
        try await database.transaction { transaction in
            guard let row = try await transaction.first("SELECT status FROM orders WHERE id = \(id) AND vendor_id = \(vendorID)") else {
                return nil
            }
            let current = OrderStatus(rawValue: try row.string("status")) ?? .placed
            guard current.canBecome(status) else { throw SoukError.invalidTransition(from: current, to: status) }
            // Compare-and-set: a concurrent change between the read and here makes this match nothing.
            let moved = try await transaction.query("""
                UPDATE orders SET status = \(status.rawValue), updated_at = \(Date())
                WHERE id = \(id) AND status = \(current.rawValue) RETURNING id
                """)
            guard !moved.isEmpty else { throw SoukError.invalidTransition(from: current, to: status) }
            if status == .cancelled {
                try await Self.returnStock(transaction.query("""
                    SELECT product_id, CAST(SUM(quantity) AS BIGINT) AS quantity FROM order_items WHERE order_id = \(id) AND product_id IS NOT NULL
                    GROUP BY product_id ORDER BY product_id
                    """), now: Date(), transaction)
            }
            var sql: SQL = "SELECT "
            sql.append(Self.orderColumns)
            sql.append("FROM orders WHERE id = \(id)")
            return try await withLines(transaction.query(sql)) { try await transaction.query($0) }.first
        }
    }

    /// Maps order rows and loads their lines with one more query.
    private func withLines(_ rows: [SQLRow], query: (SQL) async throws -> [SQLRow]) async throws -> [Order] {
        guard !rows.isEmpty else { return [] }
        var sql: SQL = "SELECT order_id, product_id, name, unit_price_minor, quantity FROM order_items WHERE order_id IN ("
        for (index, row) in rows.enumerated() {
            if index > 0 { sql.append(", ") }
            sql.append("\(try row.int("id"))")
        }
        sql.append(") ORDER BY order_id, position")
        var linesByOrder: [Int64: [OrderLine]] = [:]
        for line in try await query(sql) {
            linesByOrder[try line.int("order_id"), default: []].append(OrderLine(
                productID: try line.optionalInt("product_id"), name: try line.string("name"),
                unitPriceMinor: try line.int("unit_price_minor"), quantity: Int(try line.int("quantity"))
            ))
        }
        return try rows.map { row in
            let id = try row.int("id")
            return Order(
                id: id, vendorID: try row.int("vendor_id"), reference: try row.string("reference"),
                status: OrderStatus(rawValue: try row.string("status")) ?? .placed,
                customer: ShippingContact(name: try row.string("customer_name"), phone: try row.string("customer_phone"), address: try row.string("customer_address")),
                lines: linesByOrder[id] ?? [],
                total: Money(minor: try row.int("total_minor"), currency: try Self.currency(row.string("currency"))),
                createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at")
            )
        }
    }

    /// Puts units back, one product at a time in id order: the order every writer takes product rows
    /// in. (One `UPDATE … WHERE id IN (…)` updated them in the table's physical order and deadlocked
    /// with acceptances of the same products, found by the chaos run.)
    static func returnStock(_ rows: [SQLRow], now: Date, _ transaction: any SQLTransaction) async throws {
        for row in rows {
            try await transaction.query("""
                UPDATE products SET stock = stock + \(try row.int("quantity")), updated_at = \(now) WHERE id = \(try row.int("product_id"))
                """)
        }
    }
}
