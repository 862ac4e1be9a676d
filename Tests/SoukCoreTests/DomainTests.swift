import Foundation
import SoukCore
import Testing

@Suite("Money")
struct MoneyTests {
    @Test func formatsExactlyFromMinorUnits() {
        #expect(Money(minor: 1250, currency: Currency(code: "USD")!).formatted == "12.50 USD")
        #expect(Money(minor: 5, currency: Currency(code: "EUR")!).formatted == "0.05 EUR")
        #expect(Money(minor: 1200, currency: Currency(code: "JPY")!).formatted == "1200 JPY")
        #expect(Money(minor: 1_234_567, currency: Currency(code: "KWD")!).formatted == "1234.567 KWD")
        #expect(Money(minor: -250, currency: Currency(code: "USD")!).formatted == "-2.50 USD")
    }

    @Test func unknownCurrenciesAreRefused() {
        #expect(Currency(code: "usd") == nil)
        #expect(Currency(code: "XYZ") == nil)
        #expect(Currency(code: "") == nil)
    }
}

@Suite("Order status")
struct OrderStatusTests {
    @Test func onlyTheDocumentedMovesAreAllowed() {
        let allowed: Set<String> = ["placed>confirmed", "confirmed>shipped", "shipped>delivered", "placed>cancelled", "confirmed>cancelled"]
        for from in OrderStatus.allCases {
            for to in OrderStatus.allCases {
                #expect(from.canBecome(to) == allowed.contains("\(from.rawValue)>\(to.rawValue)"), "\(from) → \(to)")
            }
        }
        #expect(OrderStatus.delivered.isFinal && OrderStatus.cancelled.isFinal && !OrderStatus.placed.isFinal)
        #expect(OrderStatus.placed.nextStates == [.confirmed, .cancelled])
    }
}

@Suite("Validation")
struct ValidationTests {
    /// The fields a validation failure names (empty when `body` succeeds).
    func fields(_ body: () throws -> Void) -> [String] {
        do {
            try body()
            return []
        } catch SoukError.validationFailed(let fields) {
            return fields.map(\.field)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    @Test func signupNormalisesAndReportsEveryBadField() throws {
        let signup = try VendorSignup(username: "  Amina ", password: "correct horse", storeName: " Amina's Souk ")
        #expect(signup.username == "amina" && signup.storeName == "Amina's Souk")
        #expect(fields { _ = try VendorSignup(username: "a", password: "short", storeName: "") } == ["username", "password", "store_name"])
        #expect(fields { _ = try VendorSignup(username: "api", password: "long enough", storeName: "x") } == ["username"])
        #expect(fields { _ = try VendorSignup(username: "bad name!", password: String(repeating: "x", count: 73), storeName: "x") } == ["username", "password"])
        #expect(fields { _ = try VendorSignup(username: "ok-name", password: "long enough", storeName: String(repeating: "x", count: 101)) } == ["store_name"])
    }

    @Test func newProductsNeedTheirFieldsAndSaneValues() throws {
        let product = try ProductChange.newProduct(name: " Tea ", description: nil, priceMinor: 0, currency: "INR", stock: 0, available: nil)
        #expect(product.name == "Tea" && product.description == "" && product.available == true && product.currency?.code == "INR")
        #expect(fields { _ = try ProductChange.newProduct(name: nil, description: nil, priceMinor: nil, currency: nil, stock: nil, available: nil) }
            == ["name", "price_minor", "currency", "stock"])
        #expect(fields { _ = try ProductChange.newProduct(name: "", description: nil, priceMinor: -1, currency: "ABC", stock: -3, available: nil) }
            == ["name", "price_minor", "currency", "stock"])
        #expect(fields { _ = try ProductChange(name: "x\u{0}y", description: nil, priceMinor: Int64.max, currency: nil, stock: Int.max, available: nil) }
            == ["name", "price_minor", "stock"])
    }

    @Test func orderRequestsMergeDuplicatesAndRefuseNonsense() throws {
        let request = try OrderRequest(name: "A", phone: "+1 (555) 010-0000", address: "Street 1", items: [(9, 1), (3, 2), (9, 4)])
        #expect(request.items.map(\.productID) == [3, 9] && request.items.map(\.quantity) == [2, 5])
        #expect(fields { _ = try OrderRequest(name: "", phone: "abc", address: "", items: []) }
            == ["customer.name", "customer.phone", "customer.address", "items"])
        #expect(fields { _ = try OrderRequest(name: "A", phone: "5550100", address: "x", items: [(1, 0), (-4, 1), (2, 10_001)]) }
            == ["items[0].quantity", "items[1].product_id", "items[2].quantity"], "an item out of range is reported once, as itself")
        #expect(fields { _ = try OrderRequest(name: "A", phone: "5550100", address: "x", items: [(1, 6_000), (1, 6_000)]) } == ["items"])
        #expect(fields { _ = try OrderRequest(name: "A", phone: "5550100", address: "x", items: Array(repeating: (1, 1), count: 101)) } == ["items"])
    }

    @Test func orderReferencesAreShortAndReadable() {
        let references = (0..<1_000).map { _ in OrderReference.random() }
        #expect(Set(references).count == 1_000)
        #expect(references.allSatisfy { $0.count == 10 && $0.allSatisfy { "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains($0) } })
    }

    /// Flash-sale order ids, made a batch at a time: 16 characters, every one of the 32 used about
    /// as often as the others (a skew would make ids easier to guess).
    @Test func orderIDsAreRandomAndUseTheWholeAlphabet() {
        let ids = (0..<100).flatMap { _ in AdmittedOrder.newOrderIDs(64) }
        #expect(Set(ids).count == 6_400 && ids.allSatisfy { $0.count == 16 })
        var counts: [Character: Int] = [:]
        for id in ids { for character in id { counts[character, default: 0] += 1 } }
        #expect(counts.count == 32)
        // 102,400 characters: 3,200 expected each; 6 standard deviations (~55) either way is far.
        #expect(counts.values.allSatisfy { (2_800...3_600).contains($0) }, "\(counts)")
        #expect(AdmittedOrder.newOrderIDs(0).isEmpty)
    }
}

/// Numbers a client chooses never overflow: found by fuzzing the API (a crash took the process down).
@Suite("Arithmetic limits")
struct ArithmeticLimitTests {
    @Test func hugeQuantitiesAreRefusedNotAddedUp() {
        #expect(throws: SoukError.self) {
            try OrderRequest(name: "Ann", phone: "0123456789", address: "1 Road", items: [(1, Int.max), (1, 1)])
        }
        #expect(throws: SoukError.self) {
            try CheckoutRequest(buyerID: "x", items: [(1, Int.max), (1, Int.max)], couponCode: nil, idempotencyKey: nil)
        }
    }

    @Test func percentDiscountsOfTheLargestSubtotalsAreExact() {
        let coupon = Coupon(id: 1, vendorID: 1, code: "ALL", kind: .percent, value: 100, minimumOrderMinor: 0, maxUses: 1, uses: 0, expiresAt: nil)
        let largest: Int64 = 100_000_000_000 * 10_000 * 100  // price × quantity × items at their limits
        #expect(coupon.discount(on: largest) == largest)
        let third = Coupon(id: 1, vendorID: 1, code: "THIRD", kind: .percent, value: 33, minimumOrderMinor: 0, maxUses: 1, uses: 0, expiresAt: nil)
        #expect(third.discount(on: 1_099) == 362)  // floor(1099 × 33 / 100)
        #expect(third.discount(on: largest) == largest / 100 * 33)
    }
}

@Suite("Checkout decisions")
struct CheckoutDecisionTests {
    @Test func decisionsTravelAsText() {
        let decision = CheckoutDecision(orderID: "co_abc", status: .failed, failureReason: "verification timed out | late",
                                        decidedAt: Date(timeIntervalSince1970: 1_790_000_000.123456))
        #expect(CheckoutDecision(encoded: decision.encoded) == decision)
        let confirmed = CheckoutDecision(orderID: "co_xyz", status: .confirmed, failureReason: nil, decidedAt: Date())
        #expect(CheckoutDecision(encoded: confirmed.encoded) == confirmed)
        for bad in ["co_abc", "co_abc|in_progress|1|", "co_abc|confirmed|soon|", ""] { #expect(CheckoutDecision(encoded: bad) == nil, "\(bad)") }
    }

    /// A stream that read "in progress" a moment before the decision came must still get it at once.
    @Test func aDecisionJustBeforeTheWaiterIsNotLost() async {
        let notifier = CheckoutNotifier()
        let decision = CheckoutDecision(orderID: "co_race", status: .confirmed, failureReason: nil, decidedAt: Date())
        notifier.resolve(decision)
        // Without the notifier's memory this wait would end empty at its timeout.
        let got = await notifier.wait(for: "co_race", timeout: .seconds(5))
        #expect(got == decision)
        // A waiter for another order still waits for its own.
        #expect(await notifier.wait(for: "co_other", timeout: .milliseconds(50)) == nil)
    }
}
