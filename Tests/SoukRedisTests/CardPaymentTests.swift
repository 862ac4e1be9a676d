import Foundation
import SoukCore
@testable import SoukSQL
import SoukTesting
import SoukWorkers
import Testing

/// A provider whose first few releases fail, as one that cannot be reached would.
final class ReleaseFailsAtFirst: PaymentProvider, @unchecked Sendable {
    let base: SimulatedPaymentProvider
    private let lock = NSLock()
    private var failuresLeft: Int

    init(_ base: SimulatedPaymentProvider, failures: Int) {
        self.base = base
        self.failuresLeft = failures
    }

    func tokenize(_ card: PaymentCard) async throws -> String { try await base.tokenize(card) }
    func authorize(_ charge: ProviderCharge, timeout: Duration) async throws -> Authorization { try await base.authorize(charge, timeout: timeout) }
    func capture(_ charge: ProviderCharge, timeout: Duration) async throws { try await base.capture(charge, timeout: timeout) }
    func release(_ charge: ProviderCharge, timeout: Duration) async throws {
        let fails = lock.withLock { () -> Bool in
            guard failuresLeft > 0 else { return false }
            failuresLeft -= 1
            return true
        }
        if fails { throw PaymentProviderUnavailable("the provider is down") }
        try await base.release(charge, timeout: timeout)
    }
}

/// Paying for a flash-sale win by card: authorized at the provider, verified, captured with the
/// confirmation — each charge taken once whatever crashes, and given back when the payment fails.
@Suite("Card payments")
struct CardPaymentTests {
    /// A sale at 7.00 with one unit won by user1, and a card payment request for it.
    static func win(_ h: CheckoutHarness, card: SimulatedPaymentProvider.TestCard) async throws -> (order: String, payment: FlashSalePaymentRequest) {
        let now = Date()
        let sale = try await h.storage.createFlashSale(vendorID: h.vendorID, try FlashSaleDraft(
            productID: h.productID, quantity: 2, startsAt: now.addingTimeInterval(-5), endsAt: now.addingTimeInterval(3_600), perBuyerLimit: 1,
            salePriceMinor: 700, now: now), now: now)
        let order = AdmittedOrder(orderID: AdmittedOrder.newOrderID(), saleID: sale.id, buyerID: "user1", n: 1, requestKey: "1", admittedAt: now)
        #expect(try await h.storage.persistAdmitted([order]) == 1)
        let payment = try FlashSalePaymentRequest(
            orderID: order.orderID, buyerID: "user1", method: "card", name: "Ann", phone: "0301234567", address: "Somewhere 1",
            card: .init(number: card.rawValue, expiryMonth: 12, expiryYear: 2040, securityCode: "123"))
        return (order.orderID, payment)
    }

    /// Runs a runner that crashes once after `step` beside a healthy one, until the payment is
    /// decided, and expects it confirmed.
    static func confirm(_ paying: CheckoutOrder, in h: CheckoutHarness, payments: any PaymentProvider, crashingAfter step: CheckoutSagaRunner.Step) async throws {
        let verifier = ScriptedVerifier(verdict: true, delay: .milliseconds(20))
        let crashing = h.runner(verifier, payments: payments, owner: "crashing", lease: .milliseconds(400), fault: CrashOnce(at: step))
        try await h.with([crashing, h.runner(verifier, payments: payments, owner: "healthy", lease: .milliseconds(400))]) {
            let status = try await h.final(paying.id).status
            #expect(status == .confirmed)
        }
    }

    static func checkouts(_ h: CheckoutHarness, _ provider: any PaymentProvider, deadline: Duration = .seconds(60)) -> Checkouts {
        Checkouts(store: h.storage, notifier: h.checkouts.notifier, deadline: deadline, payments: provider)
    }

    /// Invariant: each paid order charged exactly once. A runner crashing after any step leaves the
    /// saga to another, which asks the provider again with the same idempotency key: one capture,
    /// at the sale price, the order paid, and no store credit touched.
    @Test(arguments: TestBackend.allCases, [CheckoutSagaRunner.Step.claimed, .authorized, .verified, .captured, .decided])
    func aCardPaymentIsChargedOnceWhateverStepACrashHits(backend: TestBackend, step: CheckoutSagaRunner.Step) async throws {
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000) { h in
            let provider = SimulatedPaymentProvider()
            let (order, payment) = try await Self.win(h, card: .approved)
            let paying = try await Self.checkouts(h, provider).pay(payment)
            #expect(paying.cardToken?.hasPrefix("pm_sim_approved_4242_") == true && paying.totalMinor == 700, "a token, never the number")
            try await Self.confirm(paying, in: h, payments: provider, crashingAfter: step)
            #expect(try await h.storage.flashSaleOrderStatus(orderID: order, buyerID: "user1") == .paid)
            #expect(provider.totals == .init(capturedMinor: 700, refundedMinor: 0, captures: 1), "charged once, at the sale price")
            #expect(try await h.storage.wallet(vendorID: h.vendorID, buyerID: "user1") == nil, "no store credit was touched")
            let method = try await h.storage.database.readFirst("SELECT method, amount_minor FROM payments WHERE checkout_id = \(paying.id)")
            #expect(try method?.string("method") == "card" && method?.int("amount_minor") == 700)
        }
    }

    /// The same through a Stripe-like provider over HTTP: the adapter names the intent by the
    /// checkout's idempotency key each time, so a resumed saga captures the one intent once.
    @Test(arguments: TestBackend.allCases, [CheckoutSagaRunner.Step.authorized, .captured])
    func aCardPaymentThroughAnHTTPProviderIsChargedOnceWhateverStepACrashHits(backend: TestBackend, step: CheckoutSagaRunner.Step) async throws {
        let stub = try await StubPaymentProvider()
        let http = try OutboundHTTP(logger: TestLog.logger)
        defer { Task { await stub.close(); try? await http.shutdown() } }
        let provider = HTTPPaymentProvider(base: stub.url, secretKey: stub.secretKey, http: http)
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000) { h in
            let (order, payment) = try await Self.win(h, card: .approved)
            let paying = try await Self.checkouts(h, provider).pay(payment)
            #expect(paying.cardToken?.hasPrefix("pm_") == true)
            try await Self.confirm(paying, in: h, payments: provider, crashingAfter: step)
            #expect(try await h.storage.flashSaleOrderStatus(orderID: order, buyerID: "user1") == .paid)
            #expect(stub.totals == .init(capturedMinor: 700, refundedMinor: 0, captures: 1, refunds: 0), "charged once, at the sale price")
            #expect(stub.status(ofCheckout: paying.id) == "succeeded")
        }
    }

    /// Payments that arrive together are started together, one transaction for the group: a
    /// refused one (no credit) is undone alone, the others hold their credit once each.
    @Test(arguments: TestBackend.allCases)
    func paymentsStartedTogetherAreRefusedOrTakenEachOnItsOwn(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 50, price: 1_000) { h in
            let now = Date()
            let sale = try await h.storage.createFlashSale(vendorID: h.vendorID, try FlashSaleDraft(
                productID: h.productID, quantity: 40, startsAt: now.addingTimeInterval(-5), endsAt: now.addingTimeInterval(3_600), perBuyerLimit: 1,
                salePriceMinor: 700, now: now), now: now)
            let orders = (0..<40).map { AdmittedOrder(orderID: AdmittedOrder.newOrderID(), saleID: sale.id, buyerID: "b\($0)", n: 1, requestKey: "1", admittedAt: now) }
            #expect(try await h.storage.persistAdmitted(orders) == 40)
            for order in orders.enumerated() where order.offset % 2 == 0 {
                _ = try await h.storage.credit(buyerID: order.element.buyerID, amountMinor: 700, by: h.vendorID)
            }
            let answers = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for (index, order) in orders.enumerated() {
                    group.addTask {
                        let payment = try FlashSalePaymentRequest(orderID: order.orderID, buyerID: order.buyerID, method: "credit", name: "Ann", phone: "0301234567", address: "Somewhere 1")
                        do {
                            _ = try await h.checkouts.pay(payment)
                            return (index, true)
                        } catch SoukError.insufficientCredit {
                            return (index, false)
                        }
                    }
                }
                return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
            }
            for (index, order) in orders.enumerated() {
                let paying = index % 2 == 0
                #expect(answers[index] == paying, "\(order.buyerID)")
                #expect(try await h.storage.flashSaleOrderStatus(orderID: order.orderID, buyerID: order.buyerID) == (paying ? .paying : .held))
                let wallet = try await h.storage.wallet(vendorID: h.vendorID, buyerID: order.buyerID)
                #expect(paying ? (wallet?.heldMinor == 700 && wallet?.balanceMinor == 0) : wallet == nil, "\(order.buyerID): \(String(describing: wallet))")
            }
            let started = try await h.storage.database.read("SELECT COUNT(*) AS n FROM checkouts WHERE flash_order_id IS NOT NULL").first?.int("n")
            #expect(started == 20)
        }
    }

    /// The reconciler holds the sale's counters against its order rows: paid, refunded (cancelled),
    /// expired, and the units held, read in one snapshot — consistent after a payment, a refund
    /// and an expiry; each counter put wrong is named.
    @Test(arguments: TestBackend.allCases)
    func theReconcilerChecksPaidRefundedAndExpiredAgainstTheOrders(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 50, price: 1_000) { h in
            let now = Date()
            let sale = try await h.storage.createFlashSale(vendorID: h.vendorID, try FlashSaleDraft(
                productID: h.productID, quantity: 5, startsAt: now.addingTimeInterval(-5), endsAt: now.addingTimeInterval(3_600), perBuyerLimit: 1,
                salePriceMinor: 700, holdSeconds: 60, now: now), now: now)
            let orders = (0..<4).map { AdmittedOrder(orderID: AdmittedOrder.newOrderID(), saleID: sale.id, buyerID: "b\($0)", n: 1, requestKey: "1", admittedAt: now) }
            #expect(try await h.storage.persistAdmitted(orders) == 4)
            for order in orders.prefix(2) {
                _ = try await h.storage.credit(buyerID: order.buyerID, amountMinor: 700, by: h.vendorID)
                let paying = try await h.checkouts.pay(try FlashSalePaymentRequest(orderID: order.orderID, buyerID: order.buyerID, method: "credit", name: "Ann", phone: "0301234567", address: "Somewhere 1"))
                #expect(try await h.storage.confirm(id: paying.id, now: Date()))
            }
            _ = try await h.storage.cancelPaidFlashSaleOrder(orderID: orders[1].orderID, vendorID: h.vendorID, now: Date())
            #expect(Set(try await h.storage.expireHolds(now: now.addingTimeInterval(61), limit: 10).map(\.orderID)) == [orders[2].orderID, orders[3].orderID])
            let reconciler = FlashSaleReconciler(redis: nil, store: h.storage, logger: TestLog.logger)
            let clean = try await reconciler.reconcile(saleID: sale.id, repair: false)
            #expect(clean.isConsistent, "\(clean)")
            let tally = try #require(try await h.storage.orderTally(saleID: sale.id))
            #expect(tally.sold == 2 && tally.paid == 1 && tally.refunded == 1 && tally.expired == 2, "\(tally)")
            let wrong: [(SQL, SQL, String)] = [
                ("UPDATE flash_sales SET paid = paid + 1 WHERE id = \(sale.id)", "UPDATE flash_sales SET paid = paid - 1 WHERE id = \(sale.id)", "the paid counter"),
                ("UPDATE flash_sales SET refunded = refunded + 1 WHERE id = \(sale.id)", "UPDATE flash_sales SET refunded = refunded - 1 WHERE id = \(sale.id)", "the refunded counter"),
                ("UPDATE flash_sales SET expired = expired + 1 WHERE id = \(sale.id)", "UPDATE flash_sales SET expired = expired - 1 WHERE id = \(sale.id)", "the expired counter"),
                ("UPDATE flash_sales SET sold = sold + 1 WHERE id = \(sale.id)", "UPDATE flash_sales SET sold = sold - 1 WHERE id = \(sale.id)", "the sold counter"),
            ]
            for (breaking, mending, words) in wrong {
                try await h.storage.database.write(breaking)
                let found = try await reconciler.reconcile(saleID: sale.id, repair: false)
                #expect(found.problems.contains { $0.hasPrefix(words) }, "\(words): \(found)")
                try await h.storage.database.write(mending)
            }
            #expect(try await reconciler.reconcile(saleID: sale.id, repair: false).isConsistent)
        }
    }

    /// A declined card fails the payment without asking the verifier; the unit stays held, and
    /// the buyer pays again with another card. A verifier's refusal after the authorization
    /// cancels it: nothing is taken.
    @Test(arguments: TestBackend.allCases)
    func aDeclinedOrRefusedCardTakesNothingAndTheHoldStays(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000) { h in
            let provider = SimulatedPaymentProvider()
            let (order, declinedPayment) = try await Self.win(h, card: .declined)
            let checkouts = Self.checkouts(h, provider)
            let declined = try await checkouts.pay(declinedPayment)
            try await h.with([h.runner(ScriptedVerifier(verdict: true, delay: .zero, stalls: true), payments: provider)]) {
                let final = try await h.final(declined.id)
                #expect(final.status == .failed && final.failureReason == "the card was declined", "not held up by a verifier that never answers")
            }
            #expect(try await h.storage.flashSaleOrderStatus(orderID: order, buyerID: "user1") == .held)

            let refusedPayment = try FlashSalePaymentRequest(
                orderID: order, buyerID: "user1", method: "card", name: "Ann", phone: "0301234567", address: "Somewhere 1",
                card: .init(number: SimulatedPaymentProvider.TestCard.approved.rawValue, expiryMonth: 1, expiryYear: 2041, securityCode: "999"))
            let refused = try await checkouts.pay(refusedPayment)
            try await h.with([h.runner(ScriptedVerifier(verdict: false, delay: .milliseconds(5)), payments: provider)]) {
                let status = try await h.final(refused.id).status
                #expect(status == .failed)
                let held = try await eventually { try await Self.released(h, refused.id) }
                #expect(held)
                #expect(provider.charge(refused.id)?.state == .cancelled)
            }
            #expect(provider.totals.capturedMinor == 0)
            #expect(try await h.storage.flashSaleOrderStatus(orderID: order, buyerID: "user1") == .held)
            let owed = try await h.storage.database.readFirst("SELECT card_release FROM checkouts WHERE id = \(refused.id)")
            #expect(try owed?.string("card_release") == "done")
        }
    }

    /// A provider that answers late: the saga asks again until the authorization is there (the
    /// provider's event wakes it), then confirms. One that never answers: the saga fails at its
    /// deadline, and nothing is taken.
    @Test(arguments: TestBackend.allCases)
    func aLateProviderIsWaitedForAndASilentOneUntilTheDeadline(backend: TestBackend) async throws {
        // A deadline the late card beats with room to spare, even when the whole suite keeps the
        // machine busy (the saga takes about two seconds; the test ends when it is confirmed).
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000, deadline: .seconds(60)) { h in
            let storage = h.storage
            let provider = SimulatedPaymentProvider(lateBy: .milliseconds(1_500)) { key in
                _ = try? await storage.recordPaymentEvent(id: "evt_\(key)", type: "payment_intent.amount_capturable_updated", checkoutID: key, now: Date())
            }
            let (order, latePayment) = try await Self.win(h, card: .late)
            let late = try await Self.checkouts(h, provider, deadline: .seconds(60)).pay(latePayment)
            try await h.with([h.runner(ScriptedVerifier(verdict: true, delay: .milliseconds(5)), payments: provider)]) {
                let final = try await h.final(late.id)
                #expect(final.status == .confirmed, "\(final.failureReason ?? "")")
            }
            #expect(try await h.storage.flashSaleOrderStatus(orderID: order, buyerID: "user1") == .paid)
            #expect(provider.totals.captures == 1)
        }
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000, deadline: .seconds(3)) { h in
            let provider = SimulatedPaymentProvider()
            let (order, silentPayment) = try await Self.win(h, card: .silent)
            let silent = try await Self.checkouts(h, provider, deadline: .seconds(3)).pay(silentPayment)
            let started = ContinuousClock.now
            try await h.with([h.runner(ScriptedVerifier(verdict: true, delay: .milliseconds(5)), payments: provider)]) {
                let final = try await h.final(silent.id)
                // "payment timed out" as a rule; "verification timed out" when a busy machine
                // first reaches the saga after its deadline. Either way: failed, nothing taken.
                #expect(final.status == .failed && final.failureReason?.hasSuffix("timed out") == true, "\(final)")
            }
            #expect(ContinuousClock.now - started < .seconds(20), "decided at the deadline, not much later")
            #expect(provider.totals.captures == 0, "nothing was taken")
            #expect(try await h.storage.flashSaleOrderStatus(orderID: order, buyerID: "user1") == .held, "the order stays the buyer's to pay again")
        }
    }

    /// A payment failed by another runner (its deadline passed) after the card was captured owes
    /// the provider a refund: a release that fails is tried again by the next runner to look, until
    /// the provider has it. Money is conserved: captured − refunded = what paid orders cost.
    @Test(arguments: TestBackend.allCases)
    func aChargeOwedBackIsReleasedOnceEvenIfTheProviderIsDownAtFirst(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000) { h in
            let base = SimulatedPaymentProvider()
            let provider = ReleaseFailsAtFirst(base, failures: 2)
            let (order, payment) = try await Self.win(h, card: .approved)
            let paying = try await Self.checkouts(h, provider).pay(payment)
            let charge = ProviderCharge(key: paying.id, amountMinor: 700, currency: "USD", cardToken: try #require(paying.cardToken))
            #expect(try await base.authorize(charge, timeout: .seconds(1)) == .authorized)
            try await base.capture(charge, timeout: .seconds(1))
            #expect(try await h.storage.fail(id: paying.id, reason: "verification timed out", now: Date()))
            // A failed release waits out the claim's lease (one second here) before the next try.
            try await h.with([h.runner(ScriptedVerifier(verdict: true, delay: .zero), payments: provider, lease: .seconds(1))]) {
                let held = try await eventually { try await Self.released(h, paying.id) }
                #expect(held)
            }
            #expect(base.totals == .init(capturedMinor: 700, refundedMinor: 700, captures: 1), "refunded once")
            #expect(try await h.storage.flashSaleOrderStatus(orderID: order, buyerID: "user1") == .held)
            let owed = try await h.storage.database.readFirst("SELECT card_release FROM checkouts WHERE id = \(paying.id)")
            #expect(try owed?.string("card_release") == "done")
        }
    }

    /// A paid card order the vendor cancels owes the card its charge back: a runner releases it,
    /// and the provider refunds it once. Money is conserved: captured − refunded = 0.
    @Test(arguments: TestBackend.allCases)
    func aCancelledCardOrderIsRefundedOnceByTheProvider(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000) { h in
            let provider = SimulatedPaymentProvider()
            let (order, payment) = try await Self.win(h, card: .approved)
            let paying = try await Self.checkouts(h, provider).pay(payment)
            try await h.with([h.runner(ScriptedVerifier(verdict: true, delay: .milliseconds(5)), payments: provider)]) {
                let status = try await h.final(paying.id).status
                #expect(status == .confirmed)
                let stock = try await h.stock()
                let refund = try await h.storage.cancelPaidFlashSaleOrder(orderID: order, vendorID: h.vendorID, now: Date())
                #expect(refund == FlashSaleRefund(orderID: order, amountMinor: 700, currency: "USD", method: .card))
                await #expect(throws: SoukError.notRefundable(status: "cancelled")) {
                    try await h.storage.cancelPaidFlashSaleOrder(orderID: order, vendorID: h.vendorID, now: Date())
                }
                #expect(try await h.stock() == stock + 1)
                let held = try await eventually { try await Self.released(h, paying.id) }
                #expect(held)
                #expect(provider.charge(paying.id)?.state == .refunded)
            }
            #expect(provider.totals == .init(capturedMinor: 700, refundedMinor: 700, captures: 1))
            #expect(try await h.storage.flashSaleOrderStatus(orderID: order, buyerID: "user1") == .cancelled)
            let sale = try #require(try await h.storage.flashSales(vendorID: h.vendorID).first)
            #expect(sale.paid == 0 && sale.refunded == 1)
        }
    }

    /// The provider's events are recorded once by id and only wake a card payment's saga.
    @Test(arguments: TestBackend.allCases)
    func providerEventsAreRecordedOnceAndWakeTheSaga(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000) { h in
            let (_, payment) = try await Self.win(h, card: .late)
            let paying = try await Self.checkouts(h, SimulatedPaymentProvider()).pay(payment)
            let claimed = try await h.storage.claimSagas(owner: "a", lease: 10, limit: 10, now: Date())
            #expect(claimed.map(\.id) == [paying.id])
            try await h.storage.retrySaga(id: paying.id, owner: "a", at: Date().addingTimeInterval(3_600))
            #expect(try await h.storage.claimSagas(owner: "a", lease: 10, limit: 10, now: Date()).isEmpty)
            #expect(try await h.storage.recordPaymentEvent(id: "evt_1", type: "payment_intent.amount_capturable_updated", checkoutID: paying.id, now: Date()))
            #expect(try await !h.storage.recordPaymentEvent(id: "evt_1", type: "payment_intent.amount_capturable_updated", checkoutID: paying.id, now: Date()), "a duplicate")
            #expect(try await h.storage.claimSagas(owner: "a", lease: 10, limit: 10, now: Date()).map(\.id) == [paying.id], "woken")
            #expect(try await h.storage.recordPaymentEvent(id: "evt_2", type: "payment_intent.created", checkoutID: "co_nobody", now: Date()), "an unknown checkout is recorded, and nothing else")
        }
    }

    /// A release that reaches the provider before the authorization it undoes (sent by a runner
    /// that lost its lease) spends the key: the late authorization is declined, nothing is taken.
    @Test func aReleaseBeforeItsAuthorizationSpendsTheKey() async throws {
        let provider = SimulatedPaymentProvider()
        let token = try await provider.tokenize(try PaymentCard(number: "4242424242424242", expiryMonth: 1, expiryYear: 2040, securityCode: "123", now: Date()))
        let charge = ProviderCharge(key: "co_late", amountMinor: 700, currency: "USD", cardToken: token)
        try await provider.release(charge, timeout: .seconds(1))
        let late = try await provider.authorize(charge, timeout: .seconds(1))
        #expect(late == .declined(reason: "the payment was cancelled"))
        await #expect(throws: PaymentProviderUnavailable.self) { try await provider.capture(charge, timeout: .seconds(1)) }
        #expect(provider.totals == .init())
    }

    /// Whether the checkout's release is recorded `done` (after the provider acknowledged it).
    static func released(_ h: CheckoutHarness, _ id: String) async throws -> Bool {
        try await h.storage.database.readFirst("SELECT card_release FROM checkouts WHERE id = \(id)")?.optionalString("card_release") == "done"
    }

}
