import Foundation
import Hummingbird
import HummingbirdTesting
import SoukCore
import SoukServer
import SoukTesting
import Testing

/// A flash-sale win becomes a paid, addressed order: the holding customer pays with store credit
/// through the checkout saga, and only they can.
@Suite("Flash-sale payments")
struct FlashSalePaymentTests {
    struct Sale {
        let vendor: String
        let id: Int64
        let buyer: (id: String, token: String)
        let order: String
    }

    /// A sale of `quantity` units at 149.00 (the product lists at 199.00), and one unit bought by a customer.
    static func saleWithAWin(_ app: TestApp, quantity: Int = 2) async throws -> Sale {
        let vendor = try await app.vendorToken("amina")
        let phone = try await app.product(token: vendor, name: "Phone", price: 19_900, stock: 10)
        let created = try await app.json(.post, "/api/v1/flash-sales", #"""
            {"product_id":\#(phone),"quantity":\#(quantity),"sale_price_minor":14900,"starts_at":"\#(FlashSaleAPITests.iso(-5))","ends_at":"\#(FlashSaleAPITests.iso(3_600))"}
            """#, token: vendor)
        let id = try #require((created.json["id"] as? NSNumber)?.int64Value, "\(created.body)")
        let buyer = try await app.customer("alice@example.com", name: "Alice")
        let won = try await app.json(.post, "/api/v1/flash-sales/\(id)/purchases", "{}", token: buyer.token)
        return Sale(vendor: vendor, id: id, buyer: buyer, order: try #require(won.json["order_id"] as? String, "\(won.body)"))
    }

    static let shipping = #""shipping":{"name":"Alice Buyer","phone":"+49 30 1234567","address":"Torstr. 1, Berlin"}"#
    static let payment = #"{"method":"credit",\#(shipping)}"#

    static func wallet(_ app: TestApp, _ sale: Sale) async throws -> (balance: Int, held: Int, captured: Int) {
        let json = try await app.json(.get, "/api/v1/wallets/\(sale.buyer.id)", token: sale.vendor).json
        func int(_ key: String) -> Int { (json[key] as? NSNumber)?.intValue ?? -1 }
        return (int("balance_minor"), int("held_minor"), int("captured_minor"))
    }

    /// The revenue an analytics answer reports, all currencies together.
    static func revenue(_ analytics: [String: Any]) -> Int {
        (analytics["revenue"] as? [[String: Any]] ?? []).reduce(0) { $0 + (($1["amount_minor"] as? NSNumber)?.intValue ?? 0) }
    }

    static func listed(_ app: TestApp, _ order: String, token: String, as path: String) async throws -> [String: Any]? {
        let list = try await app.json(.get, path, token: token).json["orders"] as? [[String: Any]] ?? []
        return list.first { $0["id"] as? String == order }
    }

    @Test(arguments: TestBackend.allCases)
    func theHolderPaysWithCreditAndTheOrderIsPaidAndAddressed(backend: TestBackend) async throws {
        try await TestApp.run(backend: backend) { app in
            let sale = try await Self.saleWithAWin(app)
            let path = "/api/v1/orders/\(sale.order)/payment"

            // Anyone else is told the order does not exist; a guest must log in.
            let bob = try await app.customer("bob@example.com")
            #expect(try await app.json(.post, path, Self.payment, token: bob.token).status == .notFound)
            #expect(try await app.json(.post, path, Self.payment).status == .unauthorized)
            #expect(try await app.json(.post, "/api/v1/orders/0123456789ABCDEF/payment", Self.payment, token: sale.buyer.token).status == .notFound, "well formed, but nobody's")
            #expect(try await app.json(.post, "/api/v1/orders/not-an-order/payment", Self.payment, token: sale.buyer.token).status == .notFound)

            // Bad details are named field by field; a card needs its number, expiry and code.
            let bad = try await app.json(.post, path, #"{"method":"credit","shipping":{"name":"","phone":"12","address":"x"}}"#, token: sale.buyer.token)
            #expect(bad.status == .unprocessableContent && Set(bad.errorFields) == ["shipping.name", "shipping.phone"], "\(bad.body)")
            let card = try await app.json(.post, path, #"{"method":"card",\#(Self.shipping)}"#, token: sale.buyer.token)
            #expect(card.status == .unprocessableContent && Set(card.errorFields) == ["card.number", "card.exp_month", "card.exp_year", "card.cvc"], "\(card.body)")

            // Without credit: 402, nothing written, the order still held.
            let poor = try await app.json(.post, path, Self.payment, token: sale.buyer.token)
            #expect(poor.status.code == 402 && poor.errorCode == "insufficient_credit", "\(poor.body)")
            #expect(try await Self.listed(app, sale.order, token: sale.buyer.token, as: "/api/v1/customers/me/orders")?["status"] as? String == "held")

            #expect(try await app.json(.post, "/api/v1/wallets/\(sale.buyer.id)/credit", #"{"amount_minor":20000}"#, token: sale.vendor).status == .ok)
            let paying = try await app.json(.post, path, Self.payment, token: sale.buyer.token)
            #expect(paying.status == .accepted && paying.json["status"] as? String == "paying" && (paying.json["total_minor"] as? NSNumber)?.intValue == 14_900, "\(paying.body)")
            let checkout = try #require(paying.json["checkout_id"] as? String)
            #expect(paying.headers[.location] == "/api/v1/orders/\(checkout)")
            #expect(try await Self.wallet(app, sale) == (5_100, 14_900, 0), "the sale price is held, once")
            let twice = try await app.json(.post, path, Self.payment, token: sale.buyer.token)
            #expect(twice.status == .conflict && twice.errorCode == "payment_in_progress")
            let mine = try #require(try await Self.listed(app, sale.order, token: sale.buyer.token, as: "/api/v1/customers/me/orders"))
            #expect(mine["status"] as? String == "paying" && mine["payment_status"] as? String == "held")
            let everything = try await app.json(.get, "/api/v1/customers/me/orders", token: sale.buyer.token).json["orders"] as? [[String: Any]] ?? []
            #expect(!everything.contains { $0["id"] as? String == checkout }, "the payment is listed as the flash-sale order, not twice")

            // The saga confirms: captured once, the order paid, counted on the sale.
            #expect(try await app.storage.confirm(id: checkout, now: Date()))
            #expect(try await Self.wallet(app, sale) == (5_100, 0, 14_900))
            let again = try await app.json(.post, path, Self.payment, token: sale.buyer.token)
            #expect(again.status == .conflict && again.errorCode == "already_paid")
            let stats = try await app.json(.get, "/api/v1/flash-sales/\(sale.id)/stats", token: sale.vendor).json
            func count(_ key: String) -> Int? { (stats[key] as? NSNumber)?.intValue }
            #expect(count("paid") == 1 && count("held") == 0 && count("remaining") == 1 && count("quantity") == 2, "\(stats)")
            let shipped = try #require(try await Self.listed(app, sale.order, token: sale.vendor, as: "/api/v1/orders?source=flash_sale"))
            #expect(shipped["status"] as? String == "paid" && shipped["payment_status"] as? String == "paid", "\(shipped)")
            let customer = shipped["customer"] as? [String: Any] ?? [:]
            #expect(customer["name"] as? String == "Alice Buyer" && customer["address"] as? String == "Torstr. 1, Berlin", "\(shipped)")
        }
    }

    /// By card: the number is checked (Luhn, expiry, code) before anything is stored; a good card
    /// starts the payment without any store credit, and what is stored is the provider's token.
    @Test(arguments: TestBackend.allCases)
    func theHolderPaysByCardWithoutStoreCredit(backend: TestBackend) async throws {
        try await TestApp.run(backend: backend) { app in
            let sale = try await Self.saleWithAWin(app)
            let path = "/api/v1/orders/\(sale.order)/payment"
            func card(_ number: String, month: Int = 12, year: Int = 2040, cvc: String = "123") -> String {
                #"{"method":"card",\#(Self.shipping),"card":{"number":"\#(number)","exp_month":\#(month),"exp_year":\#(year),"cvc":"\#(cvc)"}}"#
            }
            let typo = try await app.json(.post, path, card("4242 4242 4242 4241"), token: sale.buyer.token)
            #expect(typo.status == .unprocessableContent && typo.errorFields == ["card.number"], "\(typo.body)")
            let expired = try await app.json(.post, path, card("4242424242424242", month: 13, year: 2019, cvc: "12"), token: sale.buyer.token)
            #expect(Set(expired.errorFields) == ["card.exp_month", "card.exp_year", "card.cvc"], "\(expired.body)")
            let huge = try await app.json(.post, path, #"{"method":"card",\#(Self.shipping),"card":{"number":"4242424242424242","exp_month":99999999999999999999,"exp_year":2040,"cvc":"123"}}"#, token: sale.buyer.token)
            #expect(huge.status == .unprocessableContent || huge.status == .badRequest, "\(huge.body)")

            let paying = try await app.json(.post, path, card("4242 4242 4242 4242"), token: sale.buyer.token)
            #expect(paying.status == .accepted && paying.json["status"] as? String == "paying", "\(paying.body)")
            #expect(!paying.body.contains("4242424242424242"))
            let checkout = try #require(paying.json["checkout_id"] as? String)
            let stored = try #require(try await app.storage.checkout(id: checkout))
            #expect(stored.cardToken?.hasPrefix("pm_sim_approved_4242_") == true && stored.totalMinor == 14_900)
            #expect(try await Self.wallet(app, sale) == (0, 0, 0), "no store credit held or taken")
        }
    }

    /// The provider's events: signed with the shared secret over the time and the body, recorded
    /// once by id; a missing, wrong or old signature is refused and records nothing.
    @Test(arguments: TestBackend.allCases)
    func providerEventsMustBeSignedAndAreTakenOnce(backend: TestBackend) async throws {
        try await TestApp.run(backend: backend) { app in
            let signature = PaymentEventSignature(secret: TestApp.paymentEventSecret)
            let body = #"{"id":"evt_123","type":"payment_intent.amount_capturable_updated","data":{"object":{"id":"pi_1","metadata":{"checkout_id":"co_abc"}}}}"#
            func deliver(_ body: String, signed header: String?) async throws -> TestApp.Reply {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let header { headers[PaymentEventSignature.header] = header }
                return try await app.send(.post, "/api/v1/payments/events", body: ByteBuffer(string: body), headers: headers)
            }
            let unsigned = try await deliver(body, signed: nil)
            #expect(unsigned.status == .forbidden && unsigned.errorCode == "forbidden", "\(unsigned.body)")
            let wrongSecret = PaymentEventSignature(secret: "someone-else-entirely").sign(Array(body.utf8), at: Date())
            #expect(try await deliver(body, signed: wrongSecret).status == .forbidden)
            let old = signature.sign(Array(body.utf8), at: Date().addingTimeInterval(-PaymentEventSignature.tolerance - 5))
            #expect(try await deliver(body, signed: old).status == .forbidden, "a captured event cannot be replayed later")
            let otherBody = signature.sign(Array(#"{"id":"evt_999","type":"x"}"#.utf8), at: Date())
            #expect(try await deliver(body, signed: otherBody).status == .forbidden, "the signature covers the body")
            let recorded = try await app.database.read("SELECT id FROM payment_events")
            #expect(recorded.isEmpty)

            let good = try await deliver(body, signed: signature.sign(Array(body.utf8), at: Date()))
            #expect(good.status == .ok && good.json["duplicate"] as? Bool == false, "\(good.body)")
            let again = try await deliver(body, signed: signature.sign(Array(body.utf8), at: Date()))
            #expect(again.status == .ok && again.json["duplicate"] as? Bool == true, "delivered twice, taken once")
            let garbage = "not json"
            let broken = try await deliver(garbage, signed: signature.sign(Array(garbage.utf8), at: Date()))
            #expect(broken.status == .badRequest && broken.errorCode == "malformed_request", "\(broken.body)")
            #expect(try await app.database.read("SELECT id FROM payment_events").count == 1)
        }
    }

    /// Invariant: a paid order is refunded at most once. The vendor cancels it — many times at
    /// once — and exactly one cancellation refunds: the credit back in the balance, the unit back
    /// in the product's stock, the sale's balance kept (`quantity = remaining + held + paid + refunded`).
    @Test(arguments: TestBackend.allCases)
    func aPaidOrderCancelledByTheVendorIsRefundedOnce(backend: TestBackend) async throws {
        try await TestApp.run(backend: backend) { app in
            let sale = try await Self.saleWithAWin(app)
            #expect(try await app.json(.post, "/api/v1/wallets/\(sale.buyer.id)/credit", #"{"amount_minor":20000}"#, token: sale.vendor).status == .ok)
            let cancel = "/api/v1/orders/\(sale.order)/cancel"
            let early = try await app.json(.post, cancel, "{}", token: sale.vendor)
            #expect(early.status == .conflict && early.errorCode == "not_refundable", "a held order is not refunded: \(early.body)")
            let paying = try await app.json(.post, "/api/v1/orders/\(sale.order)/payment", Self.payment, token: sale.buyer.token)
            #expect(try await app.storage.confirm(id: try #require(paying.json["checkout_id"] as? String), now: Date()))
            let productID = try #require(try await app.storage.flashSale(id: sale.id)?.productID)
            let stockBefore = try #require(try await app.stock(of: productID, token: sale.vendor))
            #expect(try await Self.wallet(app, sale) == (5_100, 0, 14_900))
            // Analytics: one order, its money taken (the payment's checkout is not a second order).
            let sold = try await app.json(.get, "/api/v1/analytics", token: sale.vendor).json
            #expect((sold["orders"] as? NSNumber)?.intValue == 1 && Self.revenue(sold) == 14_900, "\(sold)")

            let other = try await app.vendorToken("other")
            #expect(try await app.json(.post, cancel, "{}", token: other).status == .notFound, "another vendor's order is not found")
            #expect(try await app.json(.post, cancel, "{}", token: sale.buyer.token).status == .unauthorized, "a customer cannot cancel")
            let answers = try await withThrowingTaskGroup(of: TestApp.Reply.self) { group in
                for _ in 0..<8 { group.addTask { try await app.json(.post, cancel, "{}", token: sale.vendor) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == .ok }.count == 1, "\(answers.map(\.body))")
            #expect(answers.filter { $0.errorCode == "not_refundable" }.count == 7)
            let refunded = try #require(answers.first { $0.status == .ok })
            #expect(refunded.json["status"] as? String == "cancelled" && (refunded.json["refund"] as? [String: Any])?["method"] as? String == "credit")
            #expect(try await Self.wallet(app, sale) == (20_000, 0, 0), "refunded once, to the store credit")
            #expect(try await app.stock(of: productID, token: sale.vendor) == stockBefore + 1, "the unit is back in the product's stock")
            let stats = try await app.json(.get, "/api/v1/flash-sales/\(sale.id)/stats", token: sale.vendor).json
            func count(_ key: String) -> Int { (stats[key] as? NSNumber)?.intValue ?? -1 }
            #expect(count("refunded") == 1 && count("paid") == 0 && count("held") == 0 && count("remaining") == 1, "\(stats)")
            #expect(count("quantity") == count("remaining") + count("held") + count("paid") + count("refunded"))
            let mine = try #require(try await Self.listed(app, sale.order, token: sale.buyer.token, as: "/api/v1/customers/me/orders"))
            #expect(mine["status"] as? String == "cancelled" && mine["payment_status"] as? String == "refunded", "\(mine)")
            let after = try await app.json(.get, "/api/v1/analytics", token: sale.vendor).json
            #expect((after["orders"] as? NSNumber)?.intValue == 0 && Self.revenue(after) == 0, "a refunded order is no sale: \(after)")
            let again = try await app.json(.post, "/api/v1/orders/\(sale.order)/payment", Self.payment, token: sale.buyer.token)
            #expect(again.status == .conflict && again.errorCode == "order_cancelled", "\(again.body)")
        }
    }

    /// The dashboard's orders list offers "Cancel and refund" on a paid flash-sale order (asking
    /// first), and only there.
    @Test func theVendorRefundsFromTheOrdersPage() async throws {
        try await TestApp.run { app in
            let sale = try await Self.saleWithAWin(app)
            #expect(try await app.json(.post, "/api/v1/wallets/\(sale.buyer.id)/credit", #"{"amount_minor":20000}"#, token: sale.vendor).status == .ok)
            let browser = Browser(app)
            _ = try await browser.get("/login")
            _ = try await browser.post("/login", [("username", "amina"), ("password", "password123")])
            #expect(!(try await browser.get("/dashboard/orders").body.contains("Cancel and refund")), "a held order is not refundable")
            let paying = try await app.json(.post, "/api/v1/orders/\(sale.order)/payment", Self.payment, token: sale.buyer.token)
            #expect(try await app.storage.confirm(id: try #require(paying.json["checkout_id"] as? String), now: Date()))
            let page = try await browser.get("/dashboard/orders")
            #expect(page.body.contains(#"action="/dashboard/orders/\#(sale.order)/cancel" data-confirm="Cancel order \#(sale.order) and refund"#), "\(page.body)")
            let done = try await browser.post("/dashboard/orders/\(sale.order)/cancel", [])
            #expect(done.status == .found && done.headers[.location] == "/dashboard/orders")
            #expect(try await Self.wallet(app, sale) == (20_000, 0, 0))
            let after = try await browser.get("/dashboard/orders")
            #expect(!after.body.contains("Cancel and refund") && after.body.contains("refunded"))
            #expect(try await browser.post("/dashboard/orders/\(sale.order)/cancel", [], csrf: "forged").status == .forbidden)
        }
    }

    /// A payment the verifier refuses releases the credit and leaves the unit held for the buyer,
    /// who can pay again.
    @Test(arguments: TestBackend.allCases)
    func aFailedPaymentKeepsTheHold(backend: TestBackend) async throws {
        try await TestApp.run(backend: backend) { app in
            let sale = try await Self.saleWithAWin(app)
            #expect(try await app.json(.post, "/api/v1/wallets/\(sale.buyer.id)/credit", #"{"amount_minor":14900}"#, token: sale.vendor).status == .ok)
            let first = try await app.json(.post, "/api/v1/orders/\(sale.order)/payment", Self.payment, token: sale.buyer.token)
            let checkout = try #require(first.json["checkout_id"] as? String, "\(first.body)")
            #expect(try await app.storage.fail(id: checkout, reason: "verification failed", now: Date()))
            #expect(try await Self.wallet(app, sale) == (14_900, 0, 0), "the credit is released")
            #expect(try await Self.listed(app, sale.order, token: sale.buyer.token, as: "/api/v1/customers/me/orders")?["status"] as? String == "held")
            #expect(try await app.stock(of: try #require(try await app.storage.flashSale(id: sale.id)?.productID), token: sale.vendor) == 8,
                    "the unit stays with the sale, not back in the product's stock")

            let second = try await app.json(.post, "/api/v1/orders/\(sale.order)/payment", Self.payment, token: sale.buyer.token)
            #expect(second.status == .accepted, "\(second.body)")
            let retried = try #require(second.json["checkout_id"] as? String)
            // On PostgreSQL the group confirmation (the saga runner's) marks it paid as well.
            let result = try await app.storage.confirm([VerifiedSaga(id: retried, answeredAt: Date())])
            #expect(result.confirmed == [retried])
            #expect(try await app.storage.flashSale(id: sale.id)?.paid == 1)
            #expect(try await Self.wallet(app, sale) == (0, 0, 14_900))
        }
    }

    /// Many payments for one order at once: exactly one starts, the credit is held once.
    @Test(arguments: TestBackend.allCases)
    func concurrentPaymentsForOneOrderStartOne(backend: TestBackend) async throws {
        try await TestApp.run(backend: backend) { app in
            let sale = try await Self.saleWithAWin(app)
            #expect(try await app.json(.post, "/api/v1/wallets/\(sale.buyer.id)/credit", #"{"amount_minor":100000}"#, token: sale.vendor).status == .ok)
            let answers = try await withThrowingTaskGroup(of: TestApp.Reply.self) { group in
                for _ in 0..<8 { group.addTask { try await app.json(.post, "/api/v1/orders/\(sale.order)/payment", Self.payment, token: sale.buyer.token) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == .accepted }.count == 1, "\(answers.map(\.body))")
            #expect(answers.filter { $0.errorCode == "payment_in_progress" }.count == 7, "\(answers.map(\.body))")
            #expect(try await Self.wallet(app, sale) == (85_100, 14_900, 0))
        }
    }

    /// The same as a person does it: win on the store page, follow "Pay", get the errors on the
    /// form with what was typed kept, pay, land on the live checkout page.
    @Test func theWinnerPaysFromTheStorePagesForm() async throws {
        try await TestApp.run { app in
            let vendor = try await app.vendorToken("amina")
            let lamp = try await app.product(token: vendor, name: "Lantern", price: 4_500, stock: 5)
            let created = try await app.json(.post, "/api/v1/flash-sales", #"""
                {"product_id":\#(lamp),"quantity":1,"sale_price_minor":3990,"starts_at":"\#(FlashSaleAPITests.iso(-5))","ends_at":"\#(FlashSaleAPITests.iso(3_600))"}
                """#, token: vendor)
            let saleID = try #require((created.json["id"] as? NSNumber)?.int64Value)
            let shopper = Browser(app)
            _ = try await shopper.get("/account/signup")
            _ = try await shopper.post("/account/signup", [("name", "Nadia"), ("email", "nadia@example.com"), ("password", "password123")])
            let won = try await shopper.post("/s/amina/flash-sales/\(saleID)", [])
            let order = try #require(won.body.firstMatch(of: /[0-9A-Z]{16}/).map { String($0.output) })
            #expect(won.body.contains(#"href="/account/orders/\#(order)/pay""#))
            let account = try await shopper.get("/account")
            #expect(account.body.contains("Pay now") && account.body.contains("/account/orders/\(order)/pay"))

            let form = try await shopper.get("/account/orders/\(order)/pay")
            #expect(form.status == .ok && form.body.contains("39.90") && form.body.contains(#"value="Nadia""#), "the name is filled in")
            let bad = try await shopper.post("/account/orders/\(order)/pay", [("name", "Nadia B"), ("phone", "12"), ("address", "Rue 5, Rabat")])
            #expect(bad.status == .unprocessableContent && bad.body.contains("Phone must be a phone number") && bad.body.contains("Rue 5, Rabat") && bad.body.contains(#"value="Nadia B""#))
            #expect(form.body.contains(#"value="card" checked"#), "without credit, the card is offered first")
            let typo = try await shopper.post("/account/orders/\(order)/pay", [
                ("name", "Nadia B"), ("phone", "+212 5 37 00 00 00"), ("address", "Rue 5, Rabat"), ("method", "card"),
                ("card_number", "4242 4242 4242 4241"), ("card_exp_month", "99999999999999999999"), ("card_exp_year", "2040"), ("card_cvc", "12"),
            ])
            #expect(typo.status == .unprocessableContent && typo.body.contains("Card number is not a valid card number") && typo.body.contains("Month must be")
                    && typo.body.contains("Security code must be"), "every card error on the form")
            #expect(!typo.body.contains("4242 4242 4242 4241") && typo.body.contains(#"value="card" checked"#), "the number is never echoed")
            let poor = try await shopper.post("/account/orders/\(order)/pay", [("name", "Nadia B"), ("phone", "+212 5 37 00 00 00"), ("address", "Rue 5, Rabat"), ("method", "credit")])
            #expect(poor.status.code == 402 && poor.body.contains("Not enough credit"), "\(poor.status)")
            let nadia = try #require(try await app.storage.customer(email: "nadia@example.com"))
            #expect(try await app.json(.post, "/api/v1/wallets/\(nadia.id)/credit", #"{"amount_minor":5000}"#, token: vendor).status == .ok)
            let paid = try await shopper.post("/account/orders/\(order)/pay", [("name", "Nadia B"), ("phone", "+212 5 37 00 00 00"), ("address", "Rue 5, Rabat")])
            let location = try #require(paid.headers[.location])
            #expect(paid.status == .seeOther && location.hasPrefix("/checkouts/co_"))
            let live = try await shopper.get(location)
            #expect(live.status == .ok && live.body.contains("Lantern") && live.body.contains("data-live-order"))
            let after = try await shopper.get("/account")
            #expect(!after.body.contains("Pay now") && after.body.contains("paying"))
            #expect(try await Browser(app).get("/account/orders/\(order)/pay").status == .found, "a guest is sent to sign in")
            let stranger = Browser(app)
            _ = try await stranger.get("/account/signup")
            _ = try await stranger.post("/account/signup", [("name", "Other"), ("email", "other@example.com"), ("password", "password123")])
            #expect(try await stranger.get("/account/orders/\(order)/pay").status == .notFound)
        }
    }
}
