import Foundation
import SoukCore
import SoukSQL
import SoukTesting
import Testing

/// The storage behaviour suite: every test runs against SQLite and a real PostgreSQL.
@Suite("Storage conformance")
struct StorageConformanceTests {
    // MARK: Vendors and sessions

    @Test(arguments: TestBackend.allCases)
    func usernamesAreUnique(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let first = try await storage.createVendor(username: "amina", storeName: "Amina's", passwordHash: "h1")
            #expect(first?.username == "amina")
            #expect(try await storage.createVendor(username: "amina", storeName: "Other", passwordHash: "h2") == nil)
            let credentials = try #require(try await storage.credentials(username: "amina"))
            #expect(credentials.passwordHash == "h1")
            #expect(credentials.vendor == first)
            #expect(try await storage.vendor(username: "nobody") == nil)
            #expect(try await storage.vendor(id: first!.id) == first)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func customerEmailsAreUniqueOneByOneAndInBulk(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let ann = Customer(id: Customer.newID(), email: "ann@example.com", name: "Ann", createdAt: now)
            #expect(try await storage.createCustomer(ann, passwordHash: "h1") == ann)
            #expect(try await storage.createCustomer(Customer(id: Customer.newID(), email: "ann@example.com", name: "Other", createdAt: now), passwordHash: "h2") == nil)
            // 1,201 rows go in three statements; the one whose email is taken is left out, the rest are made.
            let many = (0..<1_200).map { Customer(id: Customer.newID(), email: "c\($0)@example.com", name: "C \($0)", createdAt: now) }
                + [Customer(id: Customer.newID(), email: "ann@example.com", name: "Ann again", createdAt: now)]
            let made = try await storage.createCustomers(many, passwordHash: "!")
            #expect(made.count == 1_200 && Set(made.map(\.id)) == Set(many.prefix(1_200).map(\.id)))
            #expect(try await storage.customer(email: "c1199@example.com") == many[1_199])
            #expect(try await storage.customer(id: ann.id) == ann)
            #expect(try await storage.customerCredentials(email: "ann@example.com")?.passwordHash == "h1")
            #expect(try await storage.customer(email: "nobody@example.com") == nil)
        }
    }

    /// Admitted orders delivered again (a worker died before acknowledging) are recorded and counted
    /// once, alone or mixed with new ones in a batch.
    @Test(arguments: TestBackend.allCases)
    func admittedOrdersAreRecordedOnceWhateverIsRedelivered(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let phone = try await Fixture.product(storage, vendor: vendor, name: "Phone", price: 100, stock: 100)
            let now = Date()
            let sale = try await storage.createFlashSale(vendorID: vendor.id, FlashSaleDraft(
                productID: phone.id, quantity: 50, startsAt: now.addingTimeInterval(-60), endsAt: now.addingTimeInterval(3_600), perBuyerLimit: 1, now: now.addingTimeInterval(-120)), now: now)
            let orders = AdmittedOrder.newOrderIDs(30).enumerated().map { index, id in
                AdmittedOrder(orderID: id, saleID: sale.id, buyerID: "b\(index)", n: 1, requestKey: "1", admittedAt: now)
            }
            #expect(try await storage.persistAdmitted(Array(orders[0..<10])) == 10)
            #expect(try await storage.persistAdmitted(Array(orders[0..<10])) == 0, "a batch delivered again")
            #expect(try await storage.persistAdmitted(Array(orders[5..<30])) == 20, "old and new together: the new ones")
            #expect(try await storage.flashSale(id: sale.id)?.sold == 30)
            #expect(Set(try await storage.allAdmittedOrders(saleID: sale.id).map(\.orderID)) == Set(orders.map(\.orderID)))
        }
    }

    @Test(arguments: TestBackend.allCases)
    func sessionsExpireAndEnd(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let now = Date()
            try await storage.createSession(tokenHash: "live", vendorID: vendor.id, expiresAt: now.addingTimeInterval(60))
            try await storage.createSession(tokenHash: "old", vendorID: vendor.id, expiresAt: now.addingTimeInterval(-1))
            #expect(try await storage.vendor(sessionTokenHash: "live", now: now) == vendor)
            #expect(try await storage.vendor(sessionTokenHash: "old", now: now) == nil)
            #expect(try await storage.vendor(sessionTokenHash: "live", now: now.addingTimeInterval(61)) == nil)
            try await storage.deleteSession(tokenHash: "live")
            #expect(try await storage.vendor(sessionTokenHash: "live", now: now) == nil)
        }
    }

    // MARK: Products

    @Test(arguments: TestBackend.allCases)
    func productsAreCreatedUpdatedAndDeletedByTheirVendorOnly(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let alice = try await Fixture.vendor(storage, "alice")
            let bob = try await Fixture.vendor(storage, "bob")
            let tea = try await Fixture.product(storage, vendor: alice, name: "Tea", price: 1250, currency: "EUR", stock: 7)
            #expect(tea.price == Money(minor: 1250, currency: Currency(code: "EUR")!))
            #expect(tea.stock == 7 && tea.available && tea.status == .active)

            // Bob sees nothing of Alice's.
            #expect(try await storage.product(id: tea.id, vendorID: bob.id) == nil)
            var rename = ProductChange()
            rename.name = "Stolen"
            #expect(try await storage.updateProduct(id: tea.id, vendorID: bob.id, rename) == nil)
            #expect(try await storage.deleteProduct(id: tea.id, vendorID: bob.id) == false)
            #expect(try await storage.products(vendorID: bob.id, availableOnly: false).isEmpty)
            #expect(try await storage.product(id: tea.id, vendorID: alice.id)?.name == "Tea")

            // A partial change touches only the named fields.
            var change = ProductChange()
            change.available = false
            change.priceMinor = 999
            let updated = try #require(try await storage.updateProduct(id: tea.id, vendorID: alice.id, change))
            #expect(updated.name == "Tea" && updated.price.minor == 999 && !updated.available && updated.stock == 7)
            #expect(try await storage.products(vendorID: alice.id, availableOnly: true).isEmpty)
            #expect(try await storage.products(vendorID: alice.id, availableOnly: false).map(\.id) == [tea.id])

            #expect(try await storage.deleteProduct(id: tea.id, vendorID: alice.id))
            #expect(try await storage.product(id: tea.id, vendorID: alice.id) == nil)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func theDatabaseRefusesNegativeStock(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let product = try await Fixture.product(storage, vendor: vendor, stock: 1)
            await #expect(throws: (any Error).self) {
                try await database.transaction { try await $0.query("UPDATE products SET stock = -1 WHERE id = \(product.id)") }
            }
            #expect(try await storage.product(id: product.id, vendorID: vendor.id)?.stock == 1)
        }
    }

    // MARK: Orders

    @Test(arguments: TestBackend.allCases)
    func placingAnOrderTakesStockAndRecordsPricedLines(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let tea = try await Fixture.product(storage, vendor: vendor, name: "Tea", price: 250, stock: 10)
            let jam = try await Fixture.product(storage, vendor: vendor, name: "Jam", price: 400, stock: 3)
            // The same product twice is merged into one line.
            let order = try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(jam.id, 1), (tea.id, 2), (jam.id, 2)]))
            #expect(order.status == .placed)
            #expect(order.total.minor == 2 * 250 + 3 * 400)
            #expect(order.lines.map(\.name) == ["Tea", "Jam"])
            #expect(order.reference.count == 10)
            #expect(try await storage.product(id: tea.id, vendorID: vendor.id)?.stock == 8)
            #expect(try await storage.product(id: jam.id, vendorID: vendor.id)?.stock == 0)
            #expect(try await storage.order(id: order.id, vendorID: vendor.id) == order)
            #expect(try await storage.order(reference: order.reference, vendorID: vendor.id) == order)

            // Later price changes do not rewrite the order.
            var change = ProductChange()
            change.priceMinor = 9_999
            _ = try await storage.updateProduct(id: tea.id, vendorID: vendor.id, change)
            #expect(try await storage.order(id: order.id, vendorID: vendor.id)?.total.minor == 1_700)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func aRefusedOrderWritesNothing(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let other = try await Fixture.vendor(storage)
            let tea = try await Fixture.product(storage, vendor: vendor, name: "Tea", stock: 5)
            let jam = try await Fixture.product(storage, vendor: vendor, name: "Jam", stock: 1)
            let hidden = try await Fixture.product(storage, vendor: vendor, name: "Hidden", stock: 5, available: false)
            let euro = try await Fixture.product(storage, vendor: vendor, name: "Euro", currency: "EUR", stock: 5)
            let foreign = try await Fixture.product(storage, vendor: other, name: "Foreign", stock: 5)

            // Tea would be taken first (lower id); Jam's shortage must undo it.
            await #expect(throws: SoukError.insufficientStock(productID: jam.id, name: "Jam", requested: 2, available: 1)) {
                try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(tea.id, 3), (jam.id, 2)]))
            }
            await #expect(throws: SoukError.productUnavailable(productID: hidden.id, name: "Hidden")) {
                try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(tea.id, 1), (hidden.id, 1)]))
            }
            await #expect(throws: SoukError.unknownProduct(productID: foreign.id)) {
                try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(tea.id, 1), (foreign.id, 1)]))
            }
            await #expect(throws: SoukError.unknownProduct(productID: 987_654)) {
                try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(987_654, 1)]))
            }
            await #expect(throws: SoukError.mixedCurrency) {
                try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(tea.id, 1), (euro.id, 1)]))
            }
            for product in [tea, jam, hidden, euro] {
                #expect(try await storage.product(id: product.id, vendorID: vendor.id)?.stock == product.stock)
            }
            #expect(try await storage.product(id: foreign.id, vendorID: other.id)?.stock == 5)
            #expect(try await Fixture.count(database, "orders") == 0)
            #expect(try await Fixture.count(database, "order_items") == 0)
        }
    }

    /// Invariant 3 under concurrency: 50 buyers race for 10 units; exactly 10 win, stock ends at 0.
    @Test(arguments: TestBackend.allCases)
    func concurrentOrdersNeverOversell(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let product = try await Fixture.product(storage, vendor: vendor, stock: 10)
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        do {
                            _ = try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(product.id, 1)]))
                            return true
                        } catch SoukError.insufficientStock {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 10)
            #expect(outcomes.filter { !$0 }.count == 40)
            #expect(try await storage.product(id: product.id, vendorID: vendor.id)?.stock == 0)
            #expect(try await Fixture.count(database, "orders") == 10)
        }
    }

    /// A store order retried with its Idempotency-Key (the answer was lost) is placed once, even when
    /// the retries race; the same key with another request is refused; a refused order keeps no key.
    @Test(arguments: TestBackend.allCases)
    func aKeyedStoreOrderIsPlacedOnceHoweverOftenItIsSent(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let other = try await Fixture.vendor(storage)
            let product = try await Fixture.product(storage, vendor: vendor, stock: 10)
            func keyed(_ items: [(Int64, Int)], _ key: String) throws -> OrderRequest {
                var request = try Fixture.order(items)
                try request.setIdempotencyKey(key)
                return request
            }
            let orders = try await withThrowingTaskGroup(of: Order.self) { group in
                for _ in 0..<12 { group.addTask { try await storage.placeOrder(vendorID: vendor.id, try keyed([(product.id, 2)], "retry-1")) } }
                return try await group.reduce(into: [Order]()) { $0.append($1) }
            }
            #expect(Set(orders.map(\.id)).count == 1 && orders.count == 12, "every retry answers the one order")
            #expect(try await storage.product(id: product.id, vendorID: vendor.id)?.stock == 8, "the stock was taken once")
            #expect(try await Fixture.count(database, "orders") == 1)
            await #expect(throws: SoukError.idempotencyKeyReused) { try await storage.placeOrder(vendorID: vendor.id, try keyed([(product.id, 3)], "retry-1")) }
            // Another store's key space is its own; a refused order leaves its key free.
            let foreign = try await Fixture.product(storage, vendor: other, stock: 1)
            #expect(try await storage.placeOrder(vendorID: other.id, try keyed([(foreign.id, 1)], "retry-1")).vendorID == other.id)
            await #expect(throws: SoukError.self) { try await storage.placeOrder(vendorID: vendor.id, try keyed([(product.id, 50)], "too-many")) }
            #expect(try await storage.placeOrder(vendorID: vendor.id, try keyed([(product.id, 1)], "too-many")).lines.first?.quantity == 1)
            #expect(try await storage.product(id: product.id, vendorID: vendor.id)?.stock == 7)
            var bad = try Fixture.order([(product.id, 1)])
            #expect(throws: SoukError.self) { try bad.setIdempotencyKey("has space") }
            #expect(throws: SoukError.self) { try bad.setIdempotencyKey(String(repeating: "k", count: 65)) }
        }
    }

    /// Concurrent multi-item orders over the same products in opposite orders must not deadlock or oversell.
    @Test(arguments: TestBackend.allCases)
    func concurrentMultiItemOrdersKeepStockExact(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let a = try await Fixture.product(storage, vendor: vendor, name: "A", stock: 30)
            let b = try await Fixture.product(storage, vendor: vendor, name: "B", stock: 30)
            let placed = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        let items = index.isMultiple(of: 2) ? [(a.id, 1), (b.id, 2)] : [(b.id, 2), (a.id, 1)]
                        do {
                            _ = try await storage.placeOrder(vendorID: vendor.id, try Fixture.order(items))
                            return 1
                        } catch SoukError.insufficientStock {
                            return 0
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(placed == 15)  // B (30 units, 2 per order) runs out first
            #expect(try await storage.product(id: a.id, vendorID: vendor.id)?.stock == 30 - placed)
            #expect(try await storage.product(id: b.id, vendorID: vendor.id)?.stock == 30 - 2 * placed)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func ordersArePagedNewestFirstPerVendor(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let other = try await Fixture.vendor(storage)
            let product = try await Fixture.product(storage, vendor: vendor, stock: 100)
            let foreignProduct = try await Fixture.product(storage, vendor: other, stock: 100)
            var ids: [Int64] = []
            for _ in 0..<7 { ids.append(try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(product.id, 1)])).id) }
            _ = try await storage.placeOrder(vendorID: other.id, try Fixture.order([(foreignProduct.id, 1)]))
            let first = try await storage.orders(vendorID: vendor.id, before: nil, limit: 3)
            #expect(first.map(\.id) == Array(ids.reversed().prefix(3)))
            let second = try await storage.orders(vendorID: vendor.id, before: first.last?.id, limit: 3)
            #expect(second.map(\.id) == Array(ids.reversed().dropFirst(3).prefix(3)))
            let last = try await storage.orders(vendorID: vendor.id, before: second.last?.id, limit: 3)
            #expect(last.map(\.id) == [ids[0]])
            #expect(first.allSatisfy { $0.lines.count == 1 })
            #expect(try await storage.order(id: ids[0], vendorID: other.id) == nil)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func ordersMoveAlongTheirLifeAndCancellingReturnsStock(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let other = try await Fixture.vendor(storage)
            let tea = try await Fixture.product(storage, vendor: vendor, name: "Tea", stock: 10)
            let jam = try await Fixture.product(storage, vendor: vendor, name: "Jam", stock: 10)

            let shipped = try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(tea.id, 2)]))
            for status in [OrderStatus.confirmed, .shipped, .delivered] {
                #expect(try await storage.updateOrderStatus(id: shipped.id, vendorID: vendor.id, to: status)?.status == status)
            }
            await #expect(throws: SoukError.invalidTransition(from: .delivered, to: .cancelled)) {
                try await storage.updateOrderStatus(id: shipped.id, vendorID: vendor.id, to: .cancelled)
            }

            let cancelled = try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(tea.id, 3), (jam.id, 4)]))
            #expect(try await storage.updateOrderStatus(id: cancelled.id, vendorID: other.id, to: .cancelled) == nil, "another vendor cannot touch it")
            await #expect(throws: SoukError.invalidTransition(from: .placed, to: .shipped)) {
                try await storage.updateOrderStatus(id: cancelled.id, vendorID: vendor.id, to: .shipped)
            }
            #expect(try await storage.updateOrderStatus(id: cancelled.id, vendorID: vendor.id, to: .cancelled)?.status == .cancelled)
            #expect(try await storage.product(id: tea.id, vendorID: vendor.id)?.stock == 8)
            #expect(try await storage.product(id: jam.id, vendorID: vendor.id)?.stock == 10)
            await #expect(throws: SoukError.invalidTransition(from: .cancelled, to: .cancelled)) {
                try await storage.updateOrderStatus(id: cancelled.id, vendorID: vendor.id, to: .cancelled)
            }
            #expect(try await storage.product(id: tea.id, vendorID: vendor.id)?.stock == 8, "stock comes back once")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func racingCancellationsReturnStockOnce(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let tea = try await Fixture.product(storage, vendor: vendor, stock: 10)
            let order = try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(tea.id, 4)]))
            let wins = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        do {
                            _ = try await storage.updateOrderStatus(id: order.id, vendorID: vendor.id, to: .cancelled)
                            return 1
                        } catch SoukError.invalidTransition {
                            return 0
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(wins == 1)
            #expect(try await storage.product(id: tea.id, vendorID: vendor.id)?.stock == 10)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func deletingAProductKeepsItsOrderLines(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage)
            let tea = try await Fixture.product(storage, vendor: vendor, name: "Tea", price: 300, stock: 10)
            let order = try await storage.placeOrder(vendorID: vendor.id, try Fixture.order([(tea.id, 2)]))
            #expect(try await storage.deleteProduct(id: tea.id, vendorID: vendor.id))
            let kept = try #require(try await storage.order(id: order.id, vendorID: vendor.id))
            #expect(kept.lines == [OrderLine(productID: nil, name: "Tea", unitPriceMinor: 300, quantity: 2)])
            #expect(kept.total.minor == 600)
            // Cancelling still works; there is no stock left to return to.
            #expect(try await storage.updateOrderStatus(id: order.id, vendorID: vendor.id, to: .cancelled)?.status == .cancelled)
        }
    }
}
