import Foundation
import SoukCore
@testable import SoukRedis
import SoukSQL
import SoukTesting
import SoukWorkers
import Testing

/// Holds that expire: an unpaid unit goes back to its sale once, whatever runs twice or dies in
/// between, and the next customer can claim it; a payment and an expiry racing: one wins.
@Suite("Flash-sale holds")
struct HoldExpiryTests {
    static func payment(_ order: String, buyer: String) throws -> FlashSalePaymentRequest {
        try FlashSalePaymentRequest(orderID: order, buyerID: buyer, method: "credit", name: "Ann", phone: "0301234567", address: "Somewhere 1")
    }

    /// `quantity = remaining + held + paid`, read as the vendor reads it.
    static func balanced(_ harness: FlashSaleBackend.Harness, _ sale: FlashSale) async throws -> FlashSaleStats {
        let stats = try await harness.sales.stats(sale)
        #expect(stats.quantity == stats.remaining + stats.held + stats.paid, "\(stats)")
        return stats
    }

    @Test(arguments: FlashSaleBackend.allCases)
    func anUnpaidHoldExpiresOnceAndItsUnitIsSoldAgain(backend: FlashSaleBackend) async throws {
        try await backend.run { harness in
            let (sale, product) = try await SaleFixture.sale(harness, quantity: 2)
            let a = try await harness.sales.purchase(saleID: sale.id, buyerID: "ann", requestKey: nil)
            let b = try await harness.sales.purchase(saleID: sale.id, buyerID: "bob", requestKey: nil)
            await #expect(throws: SoukError.soldOut) { try await harness.sales.purchase(saleID: sale.id, buyerID: "cem", requestKey: nil) }
            #expect(try await harness.waitPersisted(sale.id, count: 2) == 2)
            let holdEnds = try #require(try await harness.storage.orderSummaries(
                OrderFilter(owner: .customer("ann"), source: .flashSale), after: nil, limit: 1).first?.holdExpiresAt)
            #expect(abs(holdEnds.timeIntervalSinceNow - Double(FlashSaleDraft.defaultHoldSeconds)) < 60, "held for the sale's hold_seconds")

            // Ann pays; Bob does not.
            _ = try await harness.storage.credit(buyerID: "ann", amountMinor: 50_000, by: sale.vendorID)
            let checkout = try await harness.storage.payFlashSaleOrder(try Self.payment(a.order.orderID, buyer: "ann"), deadline: 60, now: Date())
            #expect(try await harness.storage.confirm(id: checkout.id, now: Date()))
            #expect(try await harness.sales.expireDueHolds(now: Date()) == 0, "nothing is due yet")

            // Two expirers at once, after the hold: Bob's expires once; Ann's paid order is left alone.
            let later = Date().addingTimeInterval(Double(FlashSaleDraft.defaultHoldSeconds) + 1)
            async let first = harness.sales.expireDueHolds(now: later)
            async let second = harness.sales.expireDueHolds(now: later)
            let handled = try await first + second
            #expect((1...2).contains(handled), "a release the first recorded late may be asked for twice: \(handled)")
            var stats = try await Self.balanced(harness, sale)
            #expect(stats.remaining == 1 && stats.held == 0 && stats.paid == 1 && stats.expired == 1, "\(stats)")
            #expect(try await harness.storage.flashSaleOrderStatus(orderID: b.order.orderID, buyerID: "bob") == .expired)
            #expect(try await harness.sales.expireDueHolds(now: later) == 0)
            // An expirer that died before recording its release asks again: the unit comes back once.
            try await harness.sales.gate.release(sale, expiredOrderIDs: [b.order.orderID])
            #expect(try await Self.balanced(harness, sale).remaining == 1)

            // Bob's hold is gone: paying is 409, a retry of the same purchase names the same order.
            await #expect(throws: SoukError.holdExpired) {
                try await harness.storage.payFlashSaleOrder(try Self.payment(b.order.orderID, buyer: "bob"), deadline: 60, now: later)
            }
            #expect(try await harness.sales.purchase(saleID: sale.id, buyerID: "bob", requestKey: nil).order.orderID == b.order.orderID)
            // Bob's expired hold still counts under his limit; the unit is the next customer's.
            await #expect(throws: SoukError.limitReached(limit: 1)) { try await harness.sales.purchase(saleID: sale.id, buyerID: "bob", requestKey: "again") }
            let c = try await harness.sales.purchase(saleID: sale.id, buyerID: "cem", requestKey: nil)
            #expect(c.order.orderID != b.order.orderID)
            await #expect(throws: SoukError.soldOut) { try await harness.sales.purchase(saleID: sale.id, buyerID: "dan", requestKey: nil) }
            #expect(try await harness.waitPersisted(sale.id, count: 2) == 2)
            stats = try await Self.balanced(harness, sale)
            #expect(stats.remaining == 0 && stats.held == 1 && stats.paid == 1, "\(stats)")

            if let redis = harness.redis {
                // Redis loses the sale: rebuilt from the database, the expired unit is not given back twice.
                let keys = RedisKeys.sale(sale.id)
                try await redis.del(keys.all + [keys.released])
                let fresh = RedisFlashSaleGate(redis: redis, store: harness.storage)
                try await fresh.prepare(sale)
                try await fresh.release(sale, expiredOrderIDs: [b.order.orderID])
                #expect(try await fresh.admittedCount(sale) == 2)
            }
            #expect(try await harness.storage.product(id: product.id, vendorID: sale.vendorID)?.stock == 0, "the units stay with the open sale")
        }
    }

    /// A payment and the expiry of one hold at the same moment, twenty times: each hold ends
    /// either paying or expired, never both, never neither; the buyer who lost is told so.
    @Test(arguments: TestBackend.allCases)
    func aPaymentRacingTheExpiryEitherWinsOrIsToldItLost(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await storage.createVendor(username: "shop", storeName: "Shop", passwordHash: "h")!
            let product = try await storage.createProduct(vendorID: vendor.id, .newProduct(
                name: "Phone", description: "", priceMinor: 1_000, currency: "USD", stock: 20, available: true))
            let start = Date()
            let sale = try await storage.createFlashSale(vendorID: vendor.id, try FlashSaleDraft(
                productID: product.id, quantity: 20, startsAt: start.addingTimeInterval(-1), endsAt: start.addingTimeInterval(3_600), perBuyerLimit: 1,
                holdSeconds: 5, now: start), now: start)
            let orders = (0..<20).map { AdmittedOrder(orderID: AdmittedOrder.newOrderID(), saleID: sale.id, buyerID: "b\($0)", n: 1, requestKey: "1", admittedAt: start) }
            #expect(try await storage.persistAdmitted(orders) == 20)
            for order in orders { _ = try await storage.credit(buyerID: order.buyerID, amountMinor: 1_000, by: vendor.id) }
            let due = start.addingTimeInterval(5)
            let outcomes = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
                for order in orders {
                    group.addTask {
                        do {
                            _ = try await storage.payFlashSaleOrder(try Self.payment(order.orderID, buyer: order.buyerID), deadline: 60, now: due.addingTimeInterval(-0.001))
                            return (order.orderID, true)
                        } catch SoukError.holdExpired {
                            return (order.orderID, false)
                        }
                    }
                }
                group.addTask {
                    for _ in 0..<5 { _ = try await storage.expireHolds(now: due, limit: 4) }
                    return ("", false)
                }
                return try await group.reduce(into: [String: Bool]()) { $0[$1.0] = $1.1 }
            }
            _ = try await storage.expireHolds(now: due, limit: 100)
            for order in orders {
                let status = try await storage.flashSaleOrderStatus(orderID: order.orderID, buyerID: order.buyerID)
                let paid = try #require(outcomes[order.orderID])
                #expect(status == (paid ? .paying : .expired), "\(order.orderID): payment answered \(paid), status \(String(describing: status))")
            }
            let counted = try #require(try await storage.flashSale(id: sale.id))
            let expired = outcomes.values.filter { !$0 }.count - 1  // the expirer's own entry
            #expect(counted.expired == expired && counted.sold == 20 - expired, "sold \(counted.sold), expired \(counted.expired), lost \(expired)")
        }
    }

    /// A sale that closes with a unit still held: the unsold units go back to the product at once,
    /// the held one when its hold expires — each unit once.
    @Test(arguments: FlashSaleBackend.allCases)
    func aHoldThatExpiresAfterTheSaleClosedGoesBackToTheProduct(backend: FlashSaleBackend) async throws {
        try await backend.run { harness in
            let (sale, product) = try await SaleFixture.sale(harness, quantity: 3)
            _ = try await harness.sales.purchase(saleID: sale.id, buyerID: "ann", requestKey: nil)
            #expect(try await harness.waitPersisted(sale.id, count: 1) == 1)
            _ = try await harness.sales.cancel(saleID: sale.id, vendorID: sale.vendorID)
            #expect(try await harness.storage.closeFlashSale(id: sale.id, now: Date()))
            #expect(try await harness.storage.product(id: product.id, vendorID: sale.vendorID)?.stock == 2, "the unsold units")
            let later = Date().addingTimeInterval(Double(sale.holdSeconds) + 1)
            #expect(try await harness.sales.expireDueHolds(now: later) == 1)
            #expect(try await harness.sales.expireDueHolds(now: later) == 0)
            #expect(try await harness.storage.product(id: product.id, vendorID: sale.vendorID)?.stock == 3, "and the expired hold's, once")
            #expect(try await harness.storage.flashSale(id: sale.id)?.expired == 1)
        }
    }

    /// An expirer killed after the database expired holds and before Redis took their units back:
    /// the reconciler gives them back, once.
    @Test func theReconcilerGivesBackWhatAKilledExpirerDidNot() async throws {
        try await FlashSaleBackend.redisPostgres.run { harness in
            let redis = try #require(harness.redis)
            let (sale, _) = try await SaleFixture.sale(harness, quantity: 3)
            for buyer in ["ann", "bob"] { _ = try await harness.sales.purchase(saleID: sale.id, buyerID: buyer, requestKey: nil) }
            #expect(try await harness.waitPersisted(sale.id, count: 2) == 2)
            let expired = try await harness.storage.expireHolds(now: Date().addingTimeInterval(Double(sale.holdSeconds) + 1), limit: 10)
            #expect(expired.count == 2)
            #expect(try await harness.sales.gate.admittedCount(sale) == 2, "the units are still out in Redis")
            let reconciler = FlashSaleReconciler(redis: redis, store: harness.storage, logger: TestLog.logger)
            let report = try await reconciler.reconcile(saleID: sale.id, repair: true)
            #expect(report.repairs.contains { $0.contains("expired holds") }, "\(report)")
            #expect(try await harness.sales.gate.admittedCount(sale) == 0)
            #expect(try await reconciler.reconcile(saleID: sale.id, repair: true).isConsistent)
            #expect(try await harness.sales.gate.admittedCount(sale) == 0, "given back once")
        }
    }

    /// Another instance that remembers the sale sold out hears the release and asks Redis again.
    @Test func anotherInstanceForgetsTheSoldOutSaleWhenAHoldExpires() async throws {
        try await FlashSaleBackend.redisPostgres.run { harness in
            let redis = try #require(harness.redis)
            let (sale, _) = try await SaleFixture.sale(harness, quantity: 1)
            let other = FlashSales(store: harness.storage, gate: RedisFlashSaleGate(redis: redis, store: harness.storage))
            let listening = Task { await (other.gate as! RedisFlashSaleGate).listenForReleases() }
            defer { listening.cancel() }
            let won = try await harness.sales.purchase(saleID: sale.id, buyerID: "ann", requestKey: nil)
            await #expect(throws: SoukError.soldOut) { try await other.purchase(saleID: sale.id, buyerID: "bob", requestKey: nil) }
            #expect(other.settledPurchase(saleID: sale.id, buyerID: "bob", requestKey: nil)?.outcome == .failure(.soldOut), "remembered as sold out")
            #expect(try await harness.waitPersisted(sale.id, count: 1) == 1)
            try await Task.sleep(for: .milliseconds(200))  // the subscription is made
            #expect(try await harness.sales.expireDueHolds(now: Date().addingTimeInterval(Double(sale.holdSeconds) + 1)) == 1)
            let deadline = ContinuousClock.now + .seconds(5)
            while other.settledPurchase(saleID: sale.id, buyerID: "bob", requestKey: nil) != nil {
                try #require(ContinuousClock.now < deadline, "the release was not heard")
                try await Task.sleep(for: .milliseconds(10))
            }
            let bob = try await other.purchase(saleID: sale.id, buyerID: "bob", requestKey: nil)
            #expect(bob.order.orderID != won.order.orderID)
        }
    }
}
