import Foundation
import SoukCore

extension SQLStorage: CheckoutStore {
    // MARK: Wallets

    public func credit(buyerID: String, amountMinor: Int64, by vendorID: Int64) async throws -> Wallet {
        let now = Date()
        return try await database.transaction { transaction in
            try await transaction.query("""
                INSERT INTO store_credits (vendor_id, buyer_id, balance_minor, held_minor, captured_minor, updated_at)
                VALUES (\(vendorID), \(buyerID), \(amountMinor), \(0), \(0), \(now))
                ON CONFLICT (vendor_id, buyer_id) DO UPDATE SET balance_minor = store_credits.balance_minor + \(amountMinor), updated_at = \(now)
                """)
            try await transaction.query("""
                INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, vendor_id, created_at) VALUES (\(buyerID), 'credit', \(amountMinor), \(vendorID), \(now))
                """)
            return try Self.wallet(try await transaction.query("""
                SELECT buyer_id, balance_minor, held_minor, captured_minor FROM store_credits WHERE vendor_id = \(vendorID) AND buyer_id = \(buyerID)
                """)[0])
        }
    }

    public func wallet(vendorID: Int64, buyerID: String) async throws -> Wallet? {
        try await database.readFirst("""
            SELECT buyer_id, balance_minor, held_minor, captured_minor FROM store_credits WHERE vendor_id = \(vendorID) AND buyer_id = \(buyerID)
            """).map(Self.wallet)
    }

    static func wallet(_ row: SQLRow) throws -> Wallet {
        Wallet(buyerID: try row.string("buyer_id"), balanceMinor: try row.int("balance_minor"), heldMinor: try row.int("held_minor"), capturedMinor: try row.int("captured_minor"))
    }

    // MARK: Coupons

    static let couponColumns: SQL = " id, vendor_id, code, kind, value, min_order_minor, max_uses, uses, expires_at "

    public func createCoupon(vendorID: Int64, _ draft: CouponDraft) async throws -> Coupon {
        var sql: SQL = """
            INSERT INTO coupons (vendor_id, code, kind, value, min_order_minor, max_uses, uses, expires_at, created_at)
            VALUES (\(vendorID), \(draft.code), \(draft.kind.rawValue), \(draft.value), \(draft.minimumOrderMinor), \(draft.maxUses), \(0),
                    \(draft.expiresAt?.sqlMicroseconds), \(Date()))
            ON CONFLICT (vendor_id, code) DO NOTHING RETURNING
            """
        sql.append(Self.couponColumns)
        guard let row = try await database.write(sql).first else {
            throw SoukError.validationFailed([FieldError(field: "code", message: "is already one of your coupons")])
        }
        return try Self.coupon(row)
    }

    public func coupons(vendorID: Int64) async throws -> [Coupon] {
        var sql: SQL = "SELECT"
        sql.append(Self.couponColumns)
        sql.append("FROM coupons WHERE vendor_id = \(vendorID) ORDER BY id DESC")
        return try await database.read(sql).map(Self.coupon)
    }

    static func coupon(_ row: SQLRow) throws -> Coupon {
        Coupon(
            id: try row.int("id"), vendorID: try row.int("vendor_id"), code: try row.string("code"),
            kind: Coupon.Kind(rawValue: try row.string("kind")) ?? .fixed, value: try row.int("value"),
            minimumOrderMinor: try row.int("min_order_minor"), maxUses: Int(try row.int("max_uses")), uses: Int(try row.int("uses")),
            expiresAt: try row.optionalInt("expires_at").map { Date(sqlMicroseconds: $0) })
    }

    // MARK: Acceptance

    /// Thrown inside the acceptance transaction when another request already owns the idempotency key.
    struct KeyTaken: Error {}

    public func accept(_ request: CheckoutRequest, deadline: TimeInterval, now: Date) async throws -> CheckoutAnswer {
        if let key = request.idempotencyKey, let previous = try await previousAnswer(request, key: key) { return previous }
        if request.idempotencyKey == nil, request.couponCode == nil, request.items.count == 1, database.dialect == .postgres,
           let order = try await acceptOneItem(request, deadline: deadline, now: now) {
            return .accepted(order)
        }
        let id = CheckoutOrder.newID()
        do {
            try await database.transaction { transaction in try await Self.hold(request, id: id, deadline: deadline, now: now, transaction) }
            return .accepted(try await checkout(id: id)!)
        } catch let denial as SoukError {
            guard let key = request.idempotencyKey else { return .denied(denial) }
            let status = Self.statusCode(denial)
            // Record the denial (unless a concurrent request with the key got there first), then answer what is recorded.
            let recorded = try await database.write("""
                INSERT INTO checkout_requests (buyer_id, idempotency_key, request_fingerprint, denial_code, denial_message, denial_status, created_at)
                VALUES (\(request.buyerID), \(key), \(request.fingerprint), \(denial.code), \(denial.message), \(status), \(now)) ON CONFLICT DO NOTHING RETURNING buyer_id
                """)
            if !recorded.isEmpty { return .denied(denial) }
            return try await previousAnswer(request, key: key) ?? .denied(denial)
        } catch is KeyTaken {
            guard let key = request.idempotencyKey, let previous = try await previousAnswer(request, key: key) else { throw KeyTaken() }
            return previous
        }
    }

    /// The common checkout — one product, no coupon, no idempotency key — accepted together with
    /// the others that arrive meanwhile, in one statement on PostgreSQL (``GroupCommit``). Nil when
    /// it was not taken there: the general path then runs and says precisely why.
    func acceptOneItem(_ request: CheckoutRequest, deadline: TimeInterval, now: Date) async throws -> CheckoutOrder? {
        let item = request.items[0]
        return try await oneItemAcceptances.submit(OneItemCheckout(
            id: CheckoutOrder.newID(), buyerID: request.buyerID, productID: item.productID, quantity: item.quantity,
            now: now, deadline: now.addingTimeInterval(deadline)))
    }

    /// A group of one-item checkouts in one statement: the products and the buyers' credit rows are
    /// locked (`FOR UPDATE` re-reads the newest versions, in key order), then each checkout is taken
    /// when the stock and the credit cover it *and every checkout before it in the group* for the
    /// same product or buyer (running sums). That never takes more than there is, even if an
    /// earlier one is refused; a refused one comes back nil and goes the general way, alone. Stock
    /// and credit move by their sums, and every saga, line and ledger entry is written, all or
    /// nothing, in one round trip.
    static func acceptOneItemCheckouts(_ checkouts: [OneItemCheckout], _ database: any SQLDatabase) async throws -> [CheckoutOrder?] {
        let latest = checkouts.map(\.now.sqlMicroseconds).max() ?? 0
        let statement: SQL = """
            WITH request AS (
                SELECT * FROM unnest(\(checkouts.map(\.id))::text[], \(checkouts.map(\.buyerID))::text[], \(checkouts.map(\.productID))::bigint[],
                                     \(checkouts.map { Int64($0.quantity) })::bigint[], \(checkouts.map(\.now.sqlMicroseconds))::bigint[],
                                     \(checkouts.map(\.deadline.sqlMicroseconds))::bigint[])
                    WITH ORDINALITY AS request(id, buyer_id, product_id, quantity, now_at, deadline_at, position)),
            product AS (
                SELECT id, vendor_id, name, price_minor, currency, stock FROM products
                WHERE id IN (SELECT product_id FROM request) AND available = TRUE ORDER BY id FOR UPDATE),
            priced AS (
                SELECT request.*, product.vendor_id, product.name, product.price_minor, product.currency, product.stock,
                       product.price_minor * request.quantity AS total,
                       SUM(request.quantity) OVER (PARTITION BY request.product_id ORDER BY request.position) AS stock_needed
                FROM request JOIN product ON product.id = request.product_id),
            credit AS (
                SELECT vendor_id, buyer_id, balance_minor FROM store_credits
                WHERE (vendor_id, buyer_id) IN (SELECT vendor_id, buyer_id FROM priced) ORDER BY vendor_id, buyer_id FOR UPDATE),
            ok AS (
                SELECT summed.* FROM (
                    SELECT priced.*, SUM(priced.total) OVER (PARTITION BY priced.vendor_id, priced.buyer_id ORDER BY priced.position) AS credit_needed
                    FROM priced) summed
                JOIN credit ON credit.vendor_id = summed.vendor_id AND credit.buyer_id = summed.buyer_id
                WHERE summed.stock_needed <= summed.stock AND summed.credit_needed <= credit.balance_minor),
            taken AS (
                UPDATE products SET stock = stock - sums.quantity, updated_at = \(latest)
                FROM (SELECT product_id, CAST(SUM(quantity) AS BIGINT) AS quantity FROM ok GROUP BY product_id) sums
                WHERE products.id = sums.product_id RETURNING products.id),
            held AS (
                UPDATE store_credits SET balance_minor = balance_minor - sums.total, held_minor = held_minor + sums.total, updated_at = \(latest)
                FROM (SELECT vendor_id, buyer_id, SUM(total) AS total FROM ok GROUP BY vendor_id, buyer_id) sums
                WHERE store_credits.vendor_id = sums.vendor_id AND store_credits.buyer_id = sums.buyer_id RETURNING store_credits.buyer_id),
            saga AS (
                INSERT INTO checkouts (id, vendor_id, buyer_id, status, subtotal_minor, discount_minor, total_minor, currency, coupon_id, coupon_code,
                                       deadline_at, next_attempt_at, created_at, updated_at)
                SELECT id, vendor_id, buyer_id, 'in_progress', total, 0, total, currency, NULL, NULL, deadline_at, now_at, now_at, now_at
                FROM ok ORDER BY position RETURNING id),
            line AS (
                INSERT INTO checkout_items (checkout_id, position, product_id, name, unit_price_minor, quantity)
                SELECT id, 0, product_id, name, price_minor, quantity FROM ok RETURNING checkout_id),
            ledger AS (
                INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at)
                SELECT buyer_id, 'hold', total, id, vendor_id, now_at FROM ok ORDER BY position RETURNING id)
            SELECT id, vendor_id, name, price_minor, currency, total FROM ok
            """
        // A failure is each member's error: the statement may have committed before its answer was
        // lost, so taking the general path now could hold a buyer's credit twice. (A deadlock was
        // rolled back whole, and `execute` sends it again.)
        let rows = try await database.execute(statement.prepared())
        var accepted: [String: SQLRow] = [:]
        for row in rows { accepted[try row.string("id")] = row }
        return try checkouts.map { checkout in
            guard let row = accepted[checkout.id] else { return nil }
            let total = try row.int("total")
            return CheckoutOrder(
                id: checkout.id, vendorID: try row.int("vendor_id"), buyerID: checkout.buyerID, status: .inProgress,
                lines: [OrderLine(productID: checkout.productID, name: try row.string("name"), unitPriceMinor: try row.int("price_minor"), quantity: checkout.quantity)],
                subtotalMinor: total, discountMinor: 0, totalMinor: total, currency: try row.string("currency"), couponCode: nil,
                deadline: Date(sqlMicroseconds: checkout.deadline.sqlMicroseconds), failureReason: nil,
                createdAt: Date(sqlMicroseconds: checkout.now.sqlMicroseconds), updatedAt: Date(sqlMicroseconds: checkout.now.sqlMicroseconds))
        }
    }

    /// Statuses of denials, for replaying them; the HTTP layer maps the live ones itself.
    static func statusCode(_ error: SoukError) -> Int {
        switch error {
        case .insufficientCredit: 402
        case .insufficientStock, .productUnavailable: 409
        default: 422
        }
    }

    /// The answer already given to this buyer's key, when the key was used before; throws
    /// ``SoukError/idempotencyKeyReused`` when it was used for a different request (whose answer,
    /// and order id, this one must not learn).
    func previousAnswer(_ request: CheckoutRequest, key: String) async throws -> CheckoutAnswer? {
        guard let row = try await database.readFirst("""
            SELECT checkout_id, request_fingerprint, denial_code, denial_message, denial_status FROM checkout_requests
            WHERE buyer_id = \(request.buyerID) AND idempotency_key = \(key)
            """) else { return nil }
        if let fingerprint = try row.optionalString("request_fingerprint"), fingerprint != request.fingerprint {
            throw SoukError.idempotencyKeyReused
        }
        if let id = try? row.string("checkout_id"), let order = try await checkout(id: id) { return .accepted(order) }
        return .denied(.previousAnswer(status: Int(try row.optionalInt("denial_status") ?? 422), code: (try? row.string("denial_code")) ?? "denied",
                                       message: (try? row.string("denial_message")) ?? ""))
    }

    /// Reserves stock, redeems the coupon and holds the credit; throws a ``SoukError`` to deny (rolling all back).
    static func hold(_ request: CheckoutRequest, id: String, deadline: TimeInterval, now: Date, _ transaction: any SQLTransaction) async throws {
        if let key = request.idempotencyKey {
            let claimed = try await transaction.query("""
                INSERT INTO checkout_requests (buyer_id, idempotency_key, request_fingerprint, checkout_id, created_at)
                VALUES (\(request.buyerID), \(key), \(request.fingerprint), \(id), \(now))
                ON CONFLICT DO NOTHING RETURNING checkout_id
                """)
            if claimed.isEmpty { throw KeyTaken() }
        }
        var lines: [OrderLine] = []
        var vendors: Set<Int64> = []
        var currencies: Set<String> = []
        for item in request.items {
            guard let taken = try await transaction.first("""
                UPDATE products SET stock = stock - \(item.quantity), updated_at = \(now)
                WHERE id = \(item.productID) AND available = \(true) AND stock >= \(item.quantity)
                RETURNING vendor_id, name, price_minor, currency
                """)
            else { throw try await Self.whyNotTaken(item, vendorID: nil, transaction) }
            vendors.insert(try taken.int("vendor_id"))
            currencies.insert(try taken.string("currency"))
            lines.append(OrderLine(productID: item.productID, name: try taken.string("name"), unitPriceMinor: try taken.int("price_minor"), quantity: item.quantity))
        }
        guard vendors.count == 1, let vendorID = vendors.first else {
            throw SoukError.validationFailed([FieldError(field: "items", message: "must all come from one store")])
        }
        guard currencies.count == 1, let currency = currencies.first else { throw SoukError.mixedCurrency }
        let subtotal = lines.reduce(Int64(0)) { $0 + $1.totalMinor }

        var discount: Int64 = 0
        var couponID: Int64?
        if let code = request.couponCode {
            var sql: SQL = "SELECT"
            sql.append(couponColumns)
            sql.append("FROM coupons WHERE vendor_id = \(vendorID) AND code = \(code)")
            guard let row = try await transaction.first(sql) else { throw SoukError.invalidCoupon("there is no such code") }
            let coupon = try Self.coupon(row)
            if let expiresAt = coupon.expiresAt, expiresAt <= now { throw SoukError.invalidCoupon("it has expired") }
            if subtotal < coupon.minimumOrderMinor {
                throw SoukError.invalidCoupon("the order is below its minimum of \(Money(minor: coupon.minimumOrderMinor, currency: try Self.currency(currency)).formatted)")
            }
            let redeemed = try await transaction.query("UPDATE coupons SET uses = uses + 1 WHERE id = \(coupon.id) AND uses < max_uses RETURNING id")
            if redeemed.isEmpty { throw SoukError.invalidCoupon("it has been used up") }
            discount = coupon.discount(on: subtotal)
            couponID = coupon.id
        }
        let total = subtotal - discount
        let held = try await transaction.query("""
            UPDATE store_credits SET balance_minor = balance_minor - \(total), held_minor = held_minor + \(total), updated_at = \(now)
            WHERE vendor_id = \(vendorID) AND buyer_id = \(request.buyerID) AND balance_minor >= \(total) RETURNING buyer_id
            """)
        if held.isEmpty && total > 0 { throw SoukError.insufficientCredit }
        try await transaction.query("""
            INSERT INTO checkouts (id, vendor_id, buyer_id, status, subtotal_minor, discount_minor, total_minor, currency, coupon_id, coupon_code,
                                   deadline_at, next_attempt_at, created_at, updated_at)
            VALUES (\(id), \(vendorID), \(request.buyerID), 'in_progress', \(subtotal), \(discount), \(total), \(currency), \(couponID), \(request.couponCode),
                    \(now.addingTimeInterval(deadline)), \(now), \(now), \(now))
            """)
        var items: SQL = "INSERT INTO checkout_items (checkout_id, position, product_id, name, unit_price_minor, quantity) VALUES "
        for (position, line) in lines.enumerated() {
            if position > 0 { items.append(", ") }
            items.append("(\(id), \(position), \(line.productID), \(line.name), \(line.unitPriceMinor), \(line.quantity))")
        }
        try await transaction.query(items)
        if !held.isEmpty {
            try await transaction.query("""
                INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at)
                VALUES (\(request.buyerID), 'hold', \(total), \(id), \(vendorID), \(now))
                """)
        }
    }

    // MARK: The saga

    static let checkoutColumns: SQL = """
         id, vendor_id, buyer_id, status, subtotal_minor, discount_minor, total_minor, currency, coupon_code, deadline_at, failure_reason,
        created_at, updated_at, card_token 
        """

    public func checkout(id: String) async throws -> CheckoutOrder? {
        var sql: SQL = "SELECT"
        sql.append(Self.checkoutColumns)
        sql.append("FROM checkouts WHERE id = \(id)")
        guard let row = try await database.readFirst(sql) else { return nil }
        let lines = try await database.read("SELECT product_id, name, unit_price_minor, quantity FROM checkout_items WHERE checkout_id = \(id) ORDER BY position")
        return try Self.checkoutOrder(row, lines: lines)
    }

    public func checkouts(vendorID: Int64, after: CheckoutPosition?, limit: Int) async throws -> [CheckoutOrder] {
        var sql: SQL = "SELECT"
        sql.append(Self.checkoutColumns)
        sql.append("FROM checkouts WHERE vendor_id = \(vendorID)")
        if let after {
            sql.append(" AND (created_at < \(after.createdAtMicroseconds) OR (created_at = \(after.createdAtMicroseconds) AND id < \(after.id)))")
        }
        sql.append(" ORDER BY created_at DESC, id DESC LIMIT \(limit)")
        var orders: [CheckoutOrder] = []
        for row in try await database.read(sql) {
            let id = try row.string("id")
            let lines = try await database.read("SELECT product_id, name, unit_price_minor, quantity FROM checkout_items WHERE checkout_id = \(id) ORDER BY position")
            orders.append(try Self.checkoutOrder(row, lines: lines))
        }
        return orders
    }

    public func claimSagas(owner: String, lease: TimeInterval, limit: Int, now: Date) async throws -> [CheckoutOrder] {
        var sql: SQL = """
            UPDATE checkouts SET lease_owner = \(owner), lease_until = \(now.addingTimeInterval(lease))
            WHERE id IN (SELECT id FROM checkouts WHERE status = 'in_progress' AND next_attempt_at <= \(now)
                         AND (lease_until IS NULL OR lease_until < \(now)) ORDER BY next_attempt_at LIMIT \(limit))
              AND status = 'in_progress' AND (lease_until IS NULL OR lease_until < \(now))
            RETURNING
            """
        sql.append(Self.checkoutColumns)
        return try await database.write(sql).map { try Self.checkoutOrder($0, lines: []) }
    }

    /// Extends the lease of a saga still being worked on, so no one else takes it meanwhile.
    public func renewLease(id: String, owner: String, until: Date) async throws -> Bool {
        !(try await database.write("""
            UPDATE checkouts SET lease_until = \(until) WHERE id = \(id) AND lease_owner = \(owner) AND status = 'in_progress' RETURNING id
            """).isEmpty)
    }

    public func retrySaga(id: String, owner: String, at: Date) async throws {
        try await database.write("""
            UPDATE checkouts SET lease_owner = NULL, lease_until = NULL, next_attempt_at = \(at) WHERE id = \(id) AND lease_owner = \(owner)
            """)
    }

    public func confirm(id: String, now: Date) async throws -> Bool {
        if database.dialect == .postgres { return try await confirmInOneStatement(id: id, now: now) }
        return try await database.transaction { transaction in
            // Compare-and-set on the status: a saga ends once, whoever gets here first.
            guard let row = try await transaction.first("""
                UPDATE checkouts SET status = 'confirmed', lease_owner = NULL, lease_until = NULL, updated_at = \(now)
                WHERE id = \(id) AND status = 'in_progress' RETURNING vendor_id, buyer_id, total_minor, flash_order_id, card_token
                """) else { return false }
            let vendor = try row.int("vendor_id"), buyer = try row.string("buyer_id"), total = try row.int("total_minor")
            let byCard = try row.optionalString("card_token") != nil
            if let flashOrder = try row.optionalString("flash_order_id"),
               let paid = try await transaction.first("UPDATE flash_sale_orders SET status = 'paid' WHERE order_id = \(flashOrder) AND status = 'paying' RETURNING sale_id") {
                try await transaction.query("UPDATE flash_sales SET paid = paid + 1 WHERE id = \(try paid.int("sale_id"))")
            }
            if total > 0 && !byCard {
                try await transaction.query("""
                    UPDATE store_credits SET held_minor = held_minor - \(total), captured_minor = captured_minor + \(total), updated_at = \(now)
                    WHERE vendor_id = \(vendor) AND buyer_id = \(buyer)
                    """)
                try await transaction.query("""
                    INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at) VALUES (\(buyer), 'capture', \(total), \(id), \(vendor), \(now))
                    """)
            }
            try await transaction.query("""
                INSERT INTO payments (checkout_id, amount_minor, created_at, method) VALUES (\(id), \(total), \(now), \(byCard ? "card" : "credit"))
                """)
            return true
        }
    }

    /// ``confirm(id:now:)`` on PostgreSQL: the compare-and-set on the status, the capture, the ledger
    /// entry and the payment in data-modifying CTEs, one atomic statement and one round trip instead
    /// of six. When another decision came first, `done` is empty and nothing else is written.
    func confirmInOneStatement(id: String, now: Date) async throws -> Bool {
        let statement: SQL = """
            WITH done AS (
                UPDATE checkouts SET status = 'confirmed', lease_owner = NULL, lease_until = NULL, updated_at = \(now)
                WHERE id = \(id) AND status = 'in_progress' RETURNING vendor_id, buyer_id, total_minor, flash_order_id, card_token),\(fragment: Self.flashOrdersPaid)
            captured AS (
                UPDATE store_credits SET held_minor = held_minor - done.total_minor, captured_minor = captured_minor + done.total_minor, updated_at = \(now)
                FROM done WHERE done.total_minor > 0 AND done.card_token IS NULL AND store_credits.vendor_id = done.vendor_id AND store_credits.buyer_id = done.buyer_id
                RETURNING store_credits.buyer_id),
            ledger AS (
                INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at)
                SELECT buyer_id, 'capture', total_minor, \(id), vendor_id, \(now) FROM done WHERE total_minor > 0 AND card_token IS NULL RETURNING id),
            payment AS (
                INSERT INTO payments (checkout_id, amount_minor, created_at, method)
                SELECT \(id), total_minor, \(now), CASE WHEN card_token IS NULL THEN 'credit' ELSE 'card' END FROM done RETURNING checkout_id)
            SELECT (SELECT COUNT(*) FROM done) AS decided, (SELECT COUNT(*) FROM payment) AS paid
            """
        let rows = try await database.execute(statement.prepared())
        return try rows.first?.int("decided") == 1
    }

    /// On PostgreSQL one statement confirms the whole group: the sagas still in progress are
    /// locked, their buyers' credit rows locked with `SKIP LOCKED` (a row an acceptance holds
    /// right now is skipped, and its sagas come back `busy`, instead of the group waiting behind
    /// the storm), then statuses, captures (one per buyer, by the sum), ledger entries and
    /// payments are written together, atomic as one statement is.
    public func confirm(_ sagas: [VerifiedSaga]) async throws -> GroupConfirmation {
        guard database.dialect == .postgres, !sagas.isEmpty else { return try await confirmOneByOne(sagas) }
        let statement: SQL = """
            WITH answers AS (
                SELECT * FROM unnest(\(sagas.map(\.id))::text[], \(sagas.map(\.answeredAt.sqlMicroseconds))::bigint[]) AS answer(id, answered_at)),
            sagas AS (
                SELECT c.id, c.vendor_id, c.buyer_id, c.total_minor, c.card_token, answers.answered_at FROM checkouts c JOIN answers ON answers.id = c.id
                WHERE c.status = 'in_progress' ORDER BY c.id FOR UPDATE OF c),
            credits AS (
                SELECT s.vendor_id, s.buyer_id FROM store_credits s
                WHERE (s.vendor_id, s.buyer_id) IN (SELECT vendor_id, buyer_id FROM sagas WHERE total_minor > 0 AND card_token IS NULL)
                ORDER BY s.vendor_id, s.buyer_id FOR UPDATE SKIP LOCKED),
            ready AS (
                SELECT sagas.* FROM sagas
                WHERE sagas.total_minor = 0 OR sagas.card_token IS NOT NULL OR EXISTS (SELECT 1 FROM credits WHERE credits.vendor_id = sagas.vendor_id AND credits.buyer_id = sagas.buyer_id)),
            done AS (
                UPDATE checkouts SET status = 'confirmed', lease_owner = NULL, lease_until = NULL, updated_at = ready.answered_at
                FROM ready WHERE checkouts.id = ready.id
                RETURNING checkouts.id, ready.vendor_id, ready.buyer_id, ready.total_minor, ready.answered_at, checkouts.flash_order_id, ready.card_token),\(fragment: Self.flashOrdersPaid)
            sums AS (
                SELECT vendor_id, buyer_id, SUM(total_minor) AS total FROM done WHERE total_minor > 0 AND card_token IS NULL GROUP BY vendor_id, buyer_id),
            captured AS (
                UPDATE store_credits SET held_minor = held_minor - sums.total, captured_minor = captured_minor + sums.total,
                    updated_at = GREATEST(store_credits.updated_at, \(sagas.map(\.answeredAt.sqlMicroseconds).max() ?? 0))
                FROM sums WHERE store_credits.vendor_id = sums.vendor_id AND store_credits.buyer_id = sums.buyer_id
                RETURNING store_credits.buyer_id),
            ledger AS (
                INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at)
                SELECT buyer_id, 'capture', total_minor, id, vendor_id, answered_at FROM done WHERE total_minor > 0 AND card_token IS NULL ORDER BY answered_at, id
                RETURNING id),
            payment AS (
                INSERT INTO payments (checkout_id, amount_minor, created_at, method)
                SELECT id, total_minor, answered_at, CASE WHEN card_token IS NULL THEN 'credit' ELSE 'card' END FROM done RETURNING checkout_id)
            SELECT id, TRUE AS confirmed FROM done
            UNION ALL
            SELECT id, FALSE AS confirmed FROM sagas WHERE NOT EXISTS (SELECT 1 FROM ready WHERE ready.id = sagas.id)
            """
        var result = GroupConfirmation()
        for row in try await database.execute(statement.prepared()) {
            if try row.bool("confirmed") { result.confirmed.append(try row.string("id")) } else { result.busy.append(try row.string("id")) }
        }
        return result
    }

    public func fail(id: String, reason: String, now: Date) async throws -> Bool {
        try await database.transaction { transaction in
            guard let row = try await transaction.first("""
                UPDATE checkouts SET status = 'failed', failure_reason = \(reason), lease_owner = NULL, lease_until = NULL, updated_at = \(now),
                    card_release = CASE WHEN card_token IS NULL THEN NULL ELSE 'owed' END
                WHERE id = \(id) AND status = 'in_progress' RETURNING vendor_id, buyer_id, total_minor, coupon_id, flash_order_id, card_token
                """) else { return false }
            let vendor = try row.int("vendor_id"), buyer = try row.string("buyer_id"), total = try row.int("total_minor")
            let byCard = try row.optionalString("card_token") != nil
            // The compensations, in the same transaction as the verdict: stock (or the flash-sale
            // order's unit, which stays held for its buyer to pay again), coupon use, credit.
            if let flashOrder = try row.optionalString("flash_order_id") {
                try await transaction.query("""
                    UPDATE flash_sale_orders SET status = 'held' WHERE order_id = \(flashOrder) AND status = 'paying' AND checkout_id = \(id)
                    """)
            } else {
                try await Self.returnStock(transaction.query("""
                    SELECT product_id, CAST(SUM(quantity) AS BIGINT) AS quantity FROM checkout_items WHERE checkout_id = \(id) AND product_id IS NOT NULL
                    GROUP BY product_id ORDER BY product_id
                    """), now: now, transaction)
            }
            if let couponID = try row.optionalInt("coupon_id") {
                try await transaction.query("UPDATE coupons SET uses = uses - 1 WHERE id = \(couponID) AND uses > 0")
            }
            if total > 0 && !byCard {
                try await transaction.query("""
                    UPDATE store_credits SET held_minor = held_minor - \(total), balance_minor = balance_minor + \(total), updated_at = \(now)
                    WHERE vendor_id = \(vendor) AND buyer_id = \(buyer)
                    """)
                try await transaction.query("""
                    INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at) VALUES (\(buyer), 'release', \(total), \(id), \(vendor), \(now))
                    """)
            }
            return true
        }
    }

    /// The CTEs that mark the flash-sale orders of the sagas in `done` paid and count them on their
    /// sales, in the statement that confirms the sagas (a checkout of products has no such order).
    static let flashOrdersPaid: SQL = """

            flash_paid AS (
                UPDATE flash_sale_orders SET status = 'paid' FROM done
                WHERE flash_sale_orders.order_id = done.flash_order_id AND flash_sale_orders.status = 'paying'
                RETURNING flash_sale_orders.sale_id),
            flash_counted AS (
                UPDATE flash_sales SET paid = flash_sales.paid + sums.count
                FROM (SELECT sale_id, COUNT(*) AS count FROM flash_paid GROUP BY sale_id) sums
                WHERE flash_sales.id = sums.sale_id RETURNING flash_sales.id),
        """

    static func checkoutOrder(_ row: SQLRow, lines: [SQLRow]) throws -> CheckoutOrder {
        CheckoutOrder(
            id: try row.string("id"), vendorID: try row.int("vendor_id"), buyerID: try row.string("buyer_id"),
            status: CheckoutStatus(rawValue: try row.string("status")) ?? .inProgress,
            lines: try lines.map { line in
                OrderLine(productID: try line.optionalInt("product_id"), name: try line.string("name"),
                          unitPriceMinor: try line.int("unit_price_minor"), quantity: Int(try line.int("quantity")))
            },
            subtotalMinor: try row.int("subtotal_minor"), discountMinor: try row.int("discount_minor"), totalMinor: try row.int("total_minor"),
            currency: try row.string("currency"), couponCode: try? row.string("coupon_code"), deadline: try row.date("deadline_at"),
            failureReason: try? row.string("failure_reason"), createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"),
            cardToken: try row.optionalString("card_token"))
    }
}

/// A checkout of one product, no coupon and no idempotency key, as a group acceptance takes it.
struct OneItemCheckout: Sendable {
    let id: String
    let buyerID: String
    let productID: Int64
    let quantity: Int
    let now: Date
    let deadline: Date
}
