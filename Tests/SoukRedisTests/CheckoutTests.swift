import Foundation
import SoukCore
import SoukSQL
import SoukTesting
import SoukWorkers
import Testing

/// A verifier the test controls: answers `verdict` after `delay`, or never (stalls).
struct ScriptedVerifier: UserVerifier {
    let verdict: Bool
    let delay: Duration
    var stalls = false

    func verify(buyerID: String, orderID: String, timeout: Duration) async throws -> Bool {
        if stalls {
            try await Task.sleep(for: timeout)
            throw VerifierTimeout()
        }
        try await Task.sleep(for: min(delay, timeout))
        if delay > timeout { throw VerifierTimeout() }
        return verdict
    }
}

/// Crashes a saga once at a given step, as a worker killed there would.
final class CrashOnce: @unchecked Sendable {
    let step: CheckoutSagaRunner.Step
    private let lock = NSLock()
    private var crashed = false

    init(at step: CheckoutSagaRunner.Step) { self.step = step }

    func check(_ step: CheckoutSagaRunner.Step, _ id: String) throws {
        guard step == self.step else { return }
        try lock.withLock {
            if !crashed {
                crashed = true
                throw CancellationError()
            }
        }
    }
}

struct CheckoutHarness: Sendable {
    let storage: SQLStorage
    let checkouts: Checkouts
    let vendorID: Int64
    let productID: Int64

    static func run(_ backend: TestBackend, stock: Int = 100, price: Int64 = 1_000, deadline: Duration = .seconds(60),
                    _ body: @Sendable (CheckoutHarness) async throws -> Void) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await storage.createVendor(username: "shop", storeName: "Shop", passwordHash: "h")!
            let product = try await storage.createProduct(vendorID: vendor.id, .newProduct(
                name: "Stock", description: "", priceMinor: price, currency: "USD", stock: stock, available: true))
            let checkouts = Checkouts(store: storage, notifier: CheckoutNotifier(), deadline: deadline)
            try await body(CheckoutHarness(storage: storage, checkouts: checkouts, vendorID: vendor.id, productID: product.id))
        }
    }

    func request(_ buyer: String, quantity: Int = 1, coupon: String? = nil, key: String? = nil) throws -> CheckoutRequest {
        try CheckoutRequest(buyerID: buyer, items: [(productID, quantity)], couponCode: coupon, idempotencyKey: key)
    }

    func runner(_ verifier: any UserVerifier, owner: String = "runner", lease: Duration = .seconds(10), fault: CrashOnce? = nil) -> CheckoutSagaRunner {
        CheckoutSagaRunner(store: storage, verifier: verifier, owner: owner, lease: lease, pollInterval: .milliseconds(10), logger: TestLog.logger,
                           onResult: { [checkouts] in checkouts.notifier.resolve($0) }, fault: { step, id in try fault?.check(step, id) })
    }

    /// Runs the runners while `body` runs.
    func with(_ runners: [CheckoutSagaRunner], _ body: () async throws -> Void) async throws {
        let tasks = runners.map { runner in Task { try await runner.run() } }
        defer { for task in tasks { task.cancel() } }
        try await body()
    }

    /// The order once decided, as a waiting stream gets it (from the announced decision), checked
    /// against the order as stored.
    func final(_ id: String) async throws -> CheckoutOrder {
        let pushed = try #require(try await checkouts.order(id: id, waitingUpTo: .seconds(20)))
        #expect(try await storage.checkout(id: id) == pushed, "what is pushed is what is stored")
        return pushed
    }

    func stock() async throws -> Int { try await storage.product(id: productID, vendorID: vendorID)?.stock ?? -1 }

    /// Invariant 4: balances + holds + captured payments.
    func money(_ buyers: [String]) async throws -> Int64 {
        var total: Int64 = 0
        for buyer in buyers {
            if let wallet = try await storage.wallet(vendorID: vendorID, buyerID: buyer) { total += wallet.balanceMinor + wallet.heldMinor + wallet.capturedMinor }
        }
        return total
    }
}

@Suite("Checkout saga")
struct CheckoutTests {
    @Test(arguments: TestBackend.allCases)
    func deniedCheckoutsHoldNothing(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 5, price: 1_000) { h in
            _ = try await h.storage.credit(buyerID: "user2", amountMinor: 2_500, by: h.vendorID)
            _ = try await h.storage.createCoupon(vendorID: h.vendorID, try CouponDraft(code: "ONCE", kind: "fixed", value: 100, minimumOrderMinor: 5_000, maxUses: 1, expiresAt: nil))
            await #expect(throws: SoukError.insufficientCredit) { try await h.checkouts.checkout(try h.request("user2", quantity: 3)) }
            #expect(SoukError.insufficientCredit.message == "Deny: Not enough credit")
            await #expect(throws: SoukError.insufficientStock(productID: h.productID, name: "Stock", requested: 6, available: 5)) {
                try await h.checkouts.checkout(try h.request("user2", quantity: 6))
            }
            await #expect(throws: SoukError.self) { try await h.checkouts.checkout(try h.request("user2", quantity: 1, coupon: "ONCE")) }  // below minimum
            await #expect(throws: SoukError.invalidCoupon("there is no such code")) { try await h.checkouts.checkout(try h.request("user2", coupon: "NOPE")) }
            await #expect(throws: SoukError.insufficientCredit) { try await h.checkouts.checkout(try h.request("nobody")) }
            let wallet = try #require(try await h.storage.wallet(vendorID: h.vendorID, buyerID: "user2"))
            #expect(wallet.balanceMinor == 2_500 && wallet.heldMinor == 0)
            #expect(try await h.stock() == 5)
            #expect(try await h.storage.coupons(vendorID: h.vendorID).first?.uses == 0)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func successCapturesTheCreditAndRecordsThePayment(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000) { h in
            _ = try await h.storage.credit(buyerID: "user2", amountMinor: 10_000, by: h.vendorID)
            _ = try await h.storage.createCoupon(vendorID: h.vendorID, try CouponDraft(code: "TEN", kind: "percent", value: 10, minimumOrderMinor: 0, maxUses: 5, expiresAt: nil))
            let before = try await h.money(["user2"])
            let order = try await h.checkouts.checkout(try h.request("user2", quantity: 3, coupon: "ten"))
            #expect(order.status == .inProgress && order.status.message == "In Progress: Credit check passed. User verification in progress...")
            #expect(order.totalMinor == 2_700 && order.discountMinor == 300 && order.id.hasPrefix("co_"))
            let held = try #require(try await h.storage.wallet(vendorID: h.vendorID, buyerID: "user2"))
            #expect(held.balanceMinor == 7_300 && held.heldMinor == 2_700)
            try await h.with([h.runner(ScriptedVerifier(verdict: true, delay: .milliseconds(50)))]) {
                let done = try await h.final(order.id)
                #expect(done.status == .confirmed && done.status.message == "Success: Buy order complete.")
            }
            let wallet = try #require(try await h.storage.wallet(vendorID: h.vendorID, buyerID: "user2"))
            #expect(wallet.balanceMinor == 7_300 && wallet.heldMinor == 0 && wallet.capturedMinor == 2_700)
            #expect(try await h.money(["user2"]) == before)
            #expect(try await h.stock() == 7)
            #expect(try await h.storage.coupons(vendorID: h.vendorID).first?.uses == 1)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func refusalAndTimeoutRunTheCompensations(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000, deadline: .milliseconds(800)) { h in
            _ = try await h.storage.credit(buyerID: "user2", amountMinor: 10_000, by: h.vendorID)
            _ = try await h.storage.createCoupon(vendorID: h.vendorID, try CouponDraft(code: "OFF", kind: "fixed", value: 500, minimumOrderMinor: 0, maxUses: 1, expiresAt: nil))
            let refused = try await h.checkouts.checkout(try h.request("user2", quantity: 2, coupon: "OFF"))
            try await h.with([h.runner(ScriptedVerifier(verdict: false, delay: .milliseconds(20)))]) {
                let done = try await h.final(refused.id)
                #expect(done.status == .failed && done.status.message == "Failure: User verification unsuccessful.")
            }
            #expect(try await h.stock() == 10, "stock released")
            #expect(try await h.storage.coupons(vendorID: h.vendorID).first?.uses == 0, "coupon use restored")
            let stalled = try await h.checkouts.checkout(try h.request("user2", quantity: 4, coupon: "OFF"))
            let started = ContinuousClock.now
            try await h.with([h.runner(ScriptedVerifier(verdict: true, delay: .zero, stalls: true))]) {
                let done = try await h.final(stalled.id)
                #expect(done.status == .failed && done.failureReason == "verification timed out")
            }
            #expect(ContinuousClock.now - started < .seconds(5), "decided at the deadline, not later")
            let wallet = try #require(try await h.storage.wallet(vendorID: h.vendorID, buyerID: "user2"))
            #expect(wallet.balanceMinor == 10_000 && wallet.heldMinor == 0 && wallet.capturedMinor == 0, "credit released")
            #expect(try await h.stock() == 10)
        }
    }

    /// Invariants 4 and 5: a crash after each step; another runner resumes; one terminal state,
    /// money conserved, nothing charged twice.
    @Test(arguments: TestBackend.allCases, [CheckoutSagaRunner.Step.claimed, .verified, .decided])
    func aCrashAtAnyStepIsResumed(backend: TestBackend, step: CheckoutSagaRunner.Step) async throws {
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000) { h in
            _ = try await h.storage.credit(buyerID: "user1", amountMinor: 5_000, by: h.vendorID)
            let before = try await h.money(["user1"])
            let order = try await h.checkouts.checkout(try h.request("user1", quantity: 2))
            let verifier = ScriptedVerifier(verdict: true, delay: .milliseconds(20))
            let crashing = h.runner(verifier, owner: "crashing", lease: .milliseconds(400), fault: CrashOnce(at: step))
            try await h.with([crashing, h.runner(verifier, owner: "healthy", lease: .milliseconds(400))]) {
                let status = try await h.final(order.id).status
                #expect(status == .confirmed)
            }
            try await Task.sleep(for: .milliseconds(200))
            let wallet = try #require(try await h.storage.wallet(vendorID: h.vendorID, buyerID: "user1"))
            #expect(wallet.capturedMinor == 2_000 && wallet.heldMinor == 0 && wallet.balanceMinor == 3_000, "charged once")
            #expect(try await h.money(["user1"]) == before)
            #expect(try await h.stock() == 8)
        }
    }

    /// 200 concurrent checkouts by one buyer whose credit covers 50.
    @Test(arguments: TestBackend.allCases)
    func concurrentCheckoutsNeverOversellAndAnswerWhatIsStored(backend: TestBackend) async throws {
        // One product, no coupon, no key: on PostgreSQL the one-statement acceptance.
        try await CheckoutHarness.run(backend, stock: 10, price: 100) { h in
            for buyer in 0..<100 { _ = try await h.storage.credit(buyerID: "b\(buyer)", amountMinor: 1_000, by: h.vendorID) }
            let orders = try await withThrowingTaskGroup(of: CheckoutOrder?.self) { group in
                for buyer in 0..<100 {
                    group.addTask {
                        do {
                            return try await h.checkouts.checkout(try h.request("b\(buyer)"))
                        } catch SoukError.insufficientStock {
                            return nil
                        }
                    }
                }
                return try await group.reduce(into: [CheckoutOrder]()) { if let order = $1 { $0.append(order) } }
            }
            #expect(orders.count == 10 && Set(orders.map(\.buyerID)).count == 10)
            #expect(try await h.stock() == 0)
            for order in orders {
                #expect(try await h.storage.checkout(id: order.id) == order, "the answer is what was stored")
                let wallet = try #require(try await h.storage.wallet(vendorID: h.vendorID, buyerID: order.buyerID))
                #expect(wallet.balanceMinor == 900 && wallet.heldMinor == 100)
            }
            #expect(try await h.money((0..<100).map { "b\($0)" }) == 100_000, "money conserved")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func concurrentCheckoutsNeverOverspend(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 1_000, price: 100) { h in
            _ = try await h.storage.credit(buyerID: "spender", amountMinor: 5_000, by: h.vendorID)
            let accepted = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        do {
                            _ = try await h.checkouts.checkout(try h.request("spender"))
                            return 1
                        } catch SoukError.insufficientCredit {
                            return 0
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(accepted == 50)
            let wallet = try #require(try await h.storage.wallet(vendorID: h.vendorID, buyerID: "spender"))
            #expect(wallet.balanceMinor == 0 && wallet.heldMinor == 5_000)
            #expect(try await h.stock() == 950)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func replayingAnIdempotencyKeyReturnsTheFirstAnswer(backend: TestBackend) async throws {
        try await CheckoutHarness.run(backend, stock: 10, price: 1_000) { h in
            _ = try await h.storage.credit(buyerID: "user2", amountMinor: 1_500, by: h.vendorID)
            let first = try await h.checkouts.checkout(try h.request("user2", key: "k-1"))
            let again = try await h.checkouts.checkout(try h.request("user2", key: "k-1"))
            #expect(again.id == first.id)
            await #expect(throws: SoukError.insufficientCredit) { try await h.checkouts.checkout(try h.request("user2", key: "k-2")) }
            _ = try await h.storage.credit(buyerID: "user2", amountMinor: 10_000, by: h.vendorID)
            await #expect(throws: SoukError.previousAnswer(status: 402, code: "insufficient_credit", message: "Deny: Not enough credit")) {
                try await h.checkouts.checkout(try h.request("user2", key: "k-2"))
            }
            let concurrent = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await h.checkouts.checkout(try h.request("user2", key: "k-3")).id } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(concurrent.count == 1, "one order for one key, however many times it is sent")
            #expect(try await h.stock() == 8)
        }
    }
}
