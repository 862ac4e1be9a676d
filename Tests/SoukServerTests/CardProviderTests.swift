import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SoukCore
import SoukServer
import SoukTesting
import SoukWorkers
import Testing

/// Cards through a Stripe-like provider over HTTP (`HTTPPaymentProvider` against `StubPaymentProvider`):
/// the whole way from the pay request to the capture, with the provider's events coming back to
/// `/api/v1/payments/events` twice, out of order, late or not at all.
@Suite("Card provider over HTTP")
struct CardProviderTests {
    /// Runs a live app whose card provider is `stub`, with a saga runner using the same adapter
    /// (the verifier answers yes at once), and the stub's events sent to the app.
    static func withShop(_ delivery: StubPaymentProvider.Delivery, lateBy: Duration = .milliseconds(1_500),
                         _ body: @escaping @Sendable (TestApp, StubPaymentProvider, Sale) async throws -> Void) async throws {
        let signature = PaymentEventSignature(secret: TestApp.paymentEventSecret)
        let stub = try await StubPaymentProvider(lateBy: lateBy, delivery: delivery) { signature.sign($0, at: Date()) }
        let http = try OutboundHTTP(logger: TestLog.logger)
        let provider = HTTPPaymentProvider(base: stub.url, secretKey: stub.secretKey, http: http)
        do {
            try await TestApp.run(payments: provider, testing: .live) { app in
                stub.sendEvents(to: URL(string: "http://127.0.0.1:\(try #require(app.client.port))/api/v1/payments/events")!)
                let runner = CheckoutSagaRunner(
                    store: app.storage, verifier: SimulatedVerifier(delay: .milliseconds(5) ... .milliseconds(5)), payments: provider, owner: "runner",
                    lease: .seconds(5), pollInterval: .milliseconds(10), logger: TestLog.logger,
                    onResult: { [notifier = app.services.checkouts.notifier] in notifier.resolve($0) })
                let running = Task { try await runner.run() }
                defer { running.cancel() }
                try await body(app, stub, try await Sale.open(app))
            }
        } catch {
            await stub.close()
            try await http.shutdown()
            throw error
        }
        await stub.close()
        try await http.shutdown()
    }

    struct Sale {
        let vendor: String
        let id: Int64
        let productID: Int64

        static func open(_ app: TestApp) async throws -> Sale {
            let vendor = try await app.vendorToken("amina")
            let phone = try await app.product(token: vendor, name: "Phone", price: 19_900, stock: 10)
            let created = try await app.json(.post, "/api/v1/flash-sales", #"""
                {"product_id":\#(phone),"quantity":5,"sale_price_minor":14900,"starts_at":"\#(FlashSaleAPITests.iso(-5))","ends_at":"\#(FlashSaleAPITests.iso(3_600))"}
                """#, token: vendor)
            return Sale(vendor: vendor, id: try #require((created.json["id"] as? NSNumber)?.int64Value, "\(created.body)"), productID: phone)
        }

        /// A customer wins a unit and pays for it with `card`: the checkout's id.
        func winAndPay(_ app: TestApp, _ email: String, card: String) async throws -> (order: String, checkout: String, token: String) {
            let buyer = try await app.customer(email)
            let won = try await app.json(.post, "/api/v1/flash-sales/\(id)/purchases", "{}", token: buyer.token)
            let order = try #require(won.json["order_id"] as? String, "\(won.body)")
            let paying = try await app.json(.post, "/api/v1/orders/\(order)/payment", #"""
                {"method":"card","shipping":{"name":"Ann","phone":"+49 30 1234567","address":"Torstr. 1"},"card":{"number":"\#(card)","exp_month":12,"exp_year":2040,"cvc":"123"}}
                """#, token: buyer.token)
            return (order, try #require(paying.json["checkout_id"] as? String, "\(paying.body)"), buyer.token)
        }
    }

    static func final(_ app: TestApp, _ checkout: String) async throws -> CheckoutOrder {
        try #require(try await app.services.checkouts.order(id: checkout, waitingUpTo: .seconds(20)))
    }

    /// Approved, declined and late cards, with every event delivered twice and out of order: each
    /// approved payment captured once at the sale price, the declined one not at all and its order
    /// held again; the events were taken, duplicates recorded once.
    @Test func cardsArePaidOnceThroughTheProviderWhateverTheEventsDo() async throws {
        try await Self.withShop(.init(duplicates: true, reorder: true)) { app, stub, sale in
            let approved = try await sale.winAndPay(app, "a@example.com", card: "4242424242424242")
            let declined = try await sale.winAndPay(app, "b@example.com", card: "4000000000000002")
            let late = try await sale.winAndPay(app, "c@example.com", card: "4000000000003220")
            #expect(try await Self.final(app, approved.checkout).status == .confirmed)
            let refused = try await Self.final(app, declined.checkout)
            #expect(refused.status == .failed && refused.failureReason == "Your card was declined.", "\(refused)")
            #expect(try await Self.final(app, late.checkout).status == .confirmed)
            #expect(stub.totals == .init(capturedMinor: 29_800, refundedMinor: 0, captures: 2, refunds: 0))
            let stats = try await app.json(.get, "/api/v1/flash-sales/\(sale.id)/stats", token: sale.vendor).json
            #expect((stats["paid"] as? NSNumber)?.intValue == 2 && (stats["held"] as? NSNumber)?.intValue == 1, "\(stats)")
            // Every event reached Souk (twice); each id is recorded once.
            let held = try await eventually { try await app.database.read("SELECT id FROM payment_events").count >= 4 }
            #expect(held)
            let ids = try await app.database.read("SELECT id FROM payment_events").map { try $0.string("id") }
            #expect(Set(ids).count == ids.count)
        }
    }

    /// With every event dropped, a late card is still paid: the saga asks the provider again.
    @Test func aLateCardIsPaidWithoutAnyEvent() async throws {
        try await Self.withShop(.init(dropEvery: 1), lateBy: .milliseconds(800)) { app, stub, sale in
            let late = try await sale.winAndPay(app, "c@example.com", card: "4000000000003220")
            #expect(try await Self.final(app, late.checkout).status == .confirmed)
            #expect(stub.totals.captures == 1)
            #expect(try await app.database.read("SELECT id FROM payment_events").isEmpty)
        }
    }

    /// The vendor cancels a card-paid order: the provider refunds it once; a provider that is down
    /// meanwhile only delays the refund.
    @Test func aCancelledCardOrderIsRefundedByTheProviderOnce() async throws {
        try await Self.withShop(.init()) { app, stub, sale in
            let paid = try await sale.winAndPay(app, "a@example.com", card: "4242424242424242")
            #expect(try await Self.final(app, paid.checkout).status == .confirmed)
            stub.setDown(true)
            let cancelled = try await app.json(.post, "/api/v1/orders/\(paid.order)/cancel", "{}", token: sale.vendor)
            #expect(cancelled.status == .ok && (cancelled.json["refund"] as? [String: Any])?["method"] as? String == "card", "\(cancelled.body)")
            try await Task.sleep(for: .milliseconds(1_500))
            #expect(stub.totals.refunds == 0, "the provider is down: the refund waits")
            stub.setDown(false)
            let held = try await eventually { stub.totals.refunds == 1 }
            #expect(held)
            try await Task.sleep(for: .milliseconds(1_500))
            #expect(stub.totals == .init(capturedMinor: 14_900, refundedMinor: 14_900, captures: 1, refunds: 1), "refunded once")
        }
    }

    /// A refund days after the payment, when the provider has forgotten the idempotency keys: the
    /// intent is found by its checkout, refunded once, and no new authorization is made.
    @Test func aRefundAfterTheProviderForgotTheKeysRefundsTheOriginalCharge() async throws {
        try await Self.withShop(.init()) { app, stub, sale in
            let paid = try await sale.winAndPay(app, "a@example.com", card: "4242424242424242")
            #expect(try await Self.final(app, paid.checkout).status == .confirmed)
            stub.forgetIdempotencyKeys()
            let cancelled = try await app.json(.post, "/api/v1/orders/\(paid.order)/cancel", "{}", token: sale.vendor)
            #expect(cancelled.status == .ok, "\(cancelled.body)")
            let held = try await eventually { stub.totals.refunds == 1 }
            #expect(held)
            #expect(stub.totals == .init(capturedMinor: 14_900, refundedMinor: 14_900, captures: 1, refunds: 1))
            #expect(stub.intents == 1, "no second authorization of the card")
        }
    }

    /// A provider that is down when the customer pays: 503 with `Retry-After`, nothing written,
    /// the order still held for them.
    @Test func aProviderThatIsDownRefusesThePaymentAndChangesNothing() async throws {
        try await Self.withShop(.init()) { app, stub, sale in
            let buyer = try await app.customer("d@example.com")
            let won = try await app.json(.post, "/api/v1/flash-sales/\(sale.id)/purchases", "{}", token: buyer.token)
            let order = try #require(won.json["order_id"] as? String)
            stub.setDown(true)
            let down = try await app.json(.post, "/api/v1/orders/\(order)/payment", #"""
                {"method":"card","shipping":{"name":"Ann","phone":"+49 30 1234567","address":"Torstr. 1"},"card":{"number":"4242424242424242","exp_month":12,"exp_year":2040,"cvc":"123"}}
                """#, token: buyer.token)
            #expect(down.status == .serviceUnavailable && down.errorCode == "unavailable" && down.headers[.retryAfter] != nil, "\(down.body)")
            #expect(try await app.storage.flashSaleOrderStatus(orderID: order, buyerID: buyer.id) == .held, "nothing was written")
            #expect(stub.totals == .init())
        }
    }

}
