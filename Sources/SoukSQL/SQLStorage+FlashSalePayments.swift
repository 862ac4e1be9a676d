import Foundation
import SoukCore

extension SQLStorage {
    public func payFlashSaleOrder(_ request: FlashSalePaymentRequest, cardToken: String?, deadline: TimeInterval, now: Date) async throws -> CheckoutOrder {
        if database.dialect == .postgres { return try await payInOneStatement(request, cardToken: cardToken, deadline: deadline, now: now) }
        let id = CheckoutOrder.newID()
        try await database.transaction { transaction in
            // Compare-and-set on the status: of two payments at once, one finds the order held.
            guard let order = try await transaction.first("""
                UPDATE flash_sale_orders SET status = 'paying', checkout_id = \(id), ship_name = \(request.shipping.name),
                    ship_phone = \(request.shipping.phone), ship_address = \(request.shipping.address)
                WHERE order_id = \(request.orderID) AND buyer_id = \(request.buyerID) AND status = 'held'
                  AND (hold_expires_at IS NULL OR hold_expires_at > \(now))
                RETURNING sale_id
                """)
            else { throw try await Self.whyNotPayable(request, now: now) { try await transaction.first($0) } }
            guard let sale = try await transaction.first("""
                SELECT vendor_id, product_id, product_name, price_minor, currency FROM flash_sales WHERE id = \(try order.int("sale_id"))
                """)
            else { throw SoukError.notFound("Order") }
            let vendorID = try sale.int("vendor_id"), price = try sale.int("price_minor")
            if cardToken == nil {
                let held = try await transaction.query("""
                    UPDATE store_credits SET balance_minor = balance_minor - \(price), held_minor = held_minor + \(price), updated_at = \(now)
                    WHERE vendor_id = \(vendorID) AND buyer_id = \(request.buyerID) AND balance_minor >= \(price) RETURNING buyer_id
                    """)
                // Refused: the transaction is undone, the order stays held and can be paid again.
                if held.isEmpty { throw SoukError.insufficientCredit }
                try await transaction.query("""
                    INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at)
                    VALUES (\(request.buyerID), 'hold', \(price), \(id), \(vendorID), \(now))
                    """)
            }
            try await transaction.query("""
                INSERT INTO checkouts (id, vendor_id, buyer_id, status, subtotal_minor, discount_minor, total_minor, currency, coupon_id, coupon_code,
                                       deadline_at, next_attempt_at, created_at, updated_at, flash_order_id, card_token)
                VALUES (\(id), \(vendorID), \(request.buyerID), 'in_progress', \(price), \(0), \(price), \(try sale.string("currency")), NULL, NULL,
                        \(now.addingTimeInterval(deadline)), \(now), \(now), \(now), \(request.orderID), \(cardToken))
                """)
            try await transaction.query("""
                INSERT INTO checkout_items (checkout_id, position, product_id, name, unit_price_minor, quantity)
                VALUES (\(id), \(0), \(try sale.optionalInt("product_id")), \(try sale.string("product_name")), \(price), \(1))
                """)
        }
        guard let checkout = try await checkout(id: id) else { throw SoukError.notFound("Order") }
        return checkout
    }

    /// ``payFlashSaleOrder(_:cardToken:deadline:now:)`` on PostgreSQL: one atomic statement and one
    /// round trip instead of a transaction of seven, and the saga is built from what it returns
    /// rather than read back. The order row is locked first (`FOR UPDATE` re-checks that it is
    /// still held and not past its time, so of two payments at once the second finds it paying);
    /// the credit is moved only if it covers the price, and the order is claimed, the saga, its line
    /// and the ledger entry written only if the credit was moved (or the payment is by card).
    func payInOneStatement(_ request: FlashSalePaymentRequest, cardToken: String?, deadline: TimeInterval, now: Date) async throws -> CheckoutOrder {
        let id = CheckoutOrder.newID()
        let deadlineAt = now.addingTimeInterval(deadline)
        let statement: SQL = """
            WITH target AS (
                SELECT f.order_id, s.vendor_id, s.product_id, s.product_name, s.price_minor, s.currency
                FROM flash_sale_orders f JOIN flash_sales s ON s.id = f.sale_id
                WHERE f.order_id = \(request.orderID) AND f.buyer_id = \(request.buyerID) AND f.status = 'held'
                  AND (f.hold_expires_at IS NULL OR f.hold_expires_at > \(now))
                FOR UPDATE OF f),
            held AS (
                UPDATE store_credits c SET balance_minor = c.balance_minor - t.price_minor, held_minor = c.held_minor + t.price_minor, updated_at = \(now)
                FROM target t
                WHERE \(cardToken)::text IS NULL AND c.vendor_id = t.vendor_id AND c.buyer_id = \(request.buyerID) AND c.balance_minor >= t.price_minor
                RETURNING c.buyer_id),
            claimed AS (
                UPDATE flash_sale_orders f SET status = 'paying', checkout_id = \(id), ship_name = \(request.shipping.name),
                    ship_phone = \(request.shipping.phone), ship_address = \(request.shipping.address)
                FROM target t
                WHERE f.order_id = t.order_id AND f.status = 'held' AND (\(cardToken)::text IS NOT NULL OR EXISTS (SELECT 1 FROM held))
                RETURNING t.vendor_id, t.product_id, t.product_name, t.price_minor, t.currency),
            saga AS (
                INSERT INTO checkouts (id, vendor_id, buyer_id, status, subtotal_minor, discount_minor, total_minor, currency, coupon_id, coupon_code,
                                       deadline_at, next_attempt_at, created_at, updated_at, flash_order_id, card_token)
                SELECT \(id), vendor_id, \(request.buyerID), 'in_progress', price_minor, 0, price_minor, currency, NULL, NULL,
                       \(deadlineAt), \(now), \(now), \(now), \(request.orderID), \(cardToken)::text
                FROM claimed RETURNING id),
            line AS (
                INSERT INTO checkout_items (checkout_id, position, product_id, name, unit_price_minor, quantity)
                SELECT \(id), 0, product_id, product_name, price_minor, 1 FROM claimed RETURNING checkout_id),
            ledger AS (
                INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at)
                SELECT \(request.buyerID), 'hold', price_minor, \(id), vendor_id, \(now) FROM claimed WHERE \(cardToken)::text IS NULL
                RETURNING id)
            SELECT (SELECT COUNT(*) FROM target) AS found, c.vendor_id, c.product_id, c.product_name, c.price_minor, c.currency
            FROM (SELECT 1) AS one LEFT JOIN claimed c ON TRUE
            """
        guard let row = try await database.execute(statement.prepared()).first else { throw SoukError.notFound("Order") }
        guard let vendorID = try row.optionalInt("vendor_id") else {
            // Nothing was written: the order was held and its buyer's credit did not cover it, or
            // it was not payable at all (its status says why).
            if try row.int("found") == 1 { throw SoukError.insufficientCredit }
            throw try await Self.whyNotPayable(request, now: now) { try await self.database.readFirst($0) }
        }
        let price = try row.int("price_minor")
        return CheckoutOrder(
            id: id, vendorID: vendorID, buyerID: request.buyerID, status: .inProgress,
            lines: [OrderLine(productID: try row.optionalInt("product_id"), name: try row.string("product_name"), unitPriceMinor: price, quantity: 1)],
            subtotalMinor: price, discountMinor: 0, totalMinor: price, currency: try row.string("currency"), couponCode: nil,
            deadline: Date(sqlMicroseconds: deadlineAt.sqlMicroseconds), failureReason: nil,
            createdAt: Date(sqlMicroseconds: now.sqlMicroseconds), updatedAt: Date(sqlMicroseconds: now.sqlMicroseconds), cardToken: cardToken)
    }

    /// Why a payment found no held order of the buyer's to take: someone else's order, or none, is
    /// not found (nobody learns that another's order exists); otherwise its status says.
    static func whyNotPayable(_ request: FlashSalePaymentRequest, now: Date, reading first: (SQL) async throws -> SQLRow?) async throws -> SoukError {
        guard let row = try await first("SELECT buyer_id, status FROM flash_sale_orders WHERE order_id = \(request.orderID)"),
              try row.string("buyer_id") == request.buyerID
        else { return .notFound("Order") }
        switch FlashSaleOrderStatus(rawValue: try row.string("status")) {
        case .paying: return .paymentInProgress
        case .paid: return .alreadyPaid
        case .cancelled: return .orderCancelled
        // Held past its time (the expirer has not come by yet) or expired: the same to the buyer.
        case .held, .expired: return .holdExpired
        case nil: return .notFound("Order")
        }
    }

    /// A flash-sale order the buyer owns, with its status: nil for anyone else's (or none).
    public func flashSaleOrderStatus(orderID: String, buyerID: String) async throws -> FlashSaleOrderStatus? {
        guard let row = try await database.readFirst("SELECT status FROM flash_sale_orders WHERE order_id = \(orderID) AND buyer_id = \(buyerID)") else { return nil }
        return FlashSaleOrderStatus(rawValue: try row.string("status"))
    }

    public func recordPaymentEvent(id eventID: String, type: String, checkoutID: String?, now: Date) async throws -> Bool {
        try await database.transaction { transaction in
            let inserted = try await transaction.query("""
                INSERT INTO payment_events (id, type, checkout_id, received_at) VALUES (\(eventID), \(type), \(checkoutID), \(now))
                ON CONFLICT (id) DO NOTHING RETURNING id
                """)
            guard !inserted.isEmpty else { return false }
            if let checkoutID {
                // The saga asks the provider again at once (its answer, not the event, decides), unless
                // a runner is on it right now: that one asks anyway.
                try await transaction.query("""
                    UPDATE checkouts SET next_attempt_at = \(now)
                    WHERE id = \(checkoutID) AND status = 'in_progress' AND card_token IS NOT NULL AND next_attempt_at > \(now)
                      AND (lease_until IS NULL OR lease_until < \(now))
                    """)
            }
            return true
        }
    }

    public func claimCardReleases(owner: String, lease: TimeInterval, limit: Int, now: Date) async throws -> [CheckoutOrder] {
        var sql: SQL = """
            UPDATE checkouts SET lease_owner = \(owner), lease_until = \(now.addingTimeInterval(lease))
            WHERE id IN (SELECT id FROM checkouts WHERE card_release = 'owed' AND (lease_until IS NULL OR lease_until < \(now)) LIMIT \(limit))
              AND card_release = 'owed' AND (lease_until IS NULL OR lease_until < \(now))
            RETURNING
            """
        sql.append(Self.checkoutColumns)
        return try await database.write(sql).map { try Self.checkoutOrder($0, lines: []) }
    }

    public func cardReleased(id: String) async throws {
        try await database.write("""
            UPDATE checkouts SET card_release = 'done', lease_owner = NULL, lease_until = NULL WHERE id = \(id) AND card_release = 'owed'
            """)
    }

    public func cancelPaidFlashSaleOrder(orderID: String, vendorID: Int64, now: Date) async throws -> FlashSaleRefund {
        try await database.transaction { transaction in
            // Compare-and-set on the status: of many cancellations at once, one refunds.
            guard let order = try await transaction.first("""
                UPDATE flash_sale_orders SET status = 'cancelled', cancelled_at = \(now)
                WHERE order_id = \(orderID) AND status = 'paid' AND sale_id IN (SELECT id FROM flash_sales WHERE vendor_id = \(vendorID))
                RETURNING sale_id, checkout_id
                """)
            else {
                guard let row = try await transaction.first("""
                    SELECT f.status FROM flash_sale_orders f JOIN flash_sales s ON s.id = f.sale_id WHERE f.order_id = \(orderID) AND s.vendor_id = \(vendorID)
                    """)
                else { throw SoukError.notFound("Order") }
                throw SoukError.notRefundable(status: try row.string("status"))
            }
            let saleID = try order.int("sale_id")
            guard let sale = try await transaction.first("""
                UPDATE flash_sales SET paid = paid - 1, refunded = refunded + 1 WHERE id = \(saleID) RETURNING product_id, currency
                """),
                let checkoutID = try order.optionalString("checkout_id"),
                let payment = try await transaction.first("""
                    SELECT buyer_id, total_minor, card_token FROM checkouts WHERE id = \(checkoutID) AND status = 'confirmed'
                    """)
            else { throw SoukError.notFound("Order") }
            if let productID = try sale.optionalInt("product_id") {
                try await transaction.query("UPDATE products SET stock = stock + 1, updated_at = \(now) WHERE id = \(productID)")
            }
            let total = try payment.int("total_minor"), buyer = try payment.string("buyer_id")
            let byCard = try payment.optionalString("card_token") != nil
            if byCard {
                // The provider refunds the captured charge when a runner releases it.
                try await transaction.query("UPDATE checkouts SET card_release = 'owed' WHERE id = \(checkoutID)")
            } else if total > 0 {
                try await transaction.query("""
                    UPDATE store_credits SET captured_minor = captured_minor - \(total), balance_minor = balance_minor + \(total), updated_at = \(now)
                    WHERE vendor_id = \(vendorID) AND buyer_id = \(buyer)
                    """)
                try await transaction.query("""
                    INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at)
                    VALUES (\(buyer), 'refund', \(total), \(checkoutID), \(vendorID), \(now))
                    """)
            }
            return FlashSaleRefund(orderID: orderID, amountMinor: total, currency: try sale.string("currency"), method: byCard ? .card : .credit)
        }
    }
}
