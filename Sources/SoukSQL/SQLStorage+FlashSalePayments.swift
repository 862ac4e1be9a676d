import Foundation
import SoukCore

extension SQLStorage {
    public func payFlashSaleOrder(_ request: FlashSalePaymentRequest, cardToken: String?, deadline: TimeInterval, now: Date) async throws -> CheckoutOrder {
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
            else { throw try await Self.whyNotPayable(request, now: now, transaction) }
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

    /// Why a payment found no held order of the buyer's to take: someone else's order, or none, is
    /// not found (nobody learns that another's order exists); otherwise its status says.
    static func whyNotPayable(_ request: FlashSalePaymentRequest, now: Date, _ transaction: any SQLTransaction) async throws -> SoukError {
        guard let row = try await transaction.first("SELECT buyer_id, status FROM flash_sale_orders WHERE order_id = \(request.orderID)"),
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
