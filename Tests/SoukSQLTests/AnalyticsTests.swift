import Foundation
import SoukCore
import SoukSQL
import SoukTesting
import Testing

/// Analytics computed from the orders themselves, on SQLite and PostgreSQL.
@Suite("Analytics")
struct AnalyticsTests {
    @Test(arguments: TestBackend.allCases)
    func ordersRevenueTopProductsViewsAndSalesOfOneVendorOnly(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let vendor = try await Fixture.vendor(storage, "atlas")
            let other = try await Fixture.vendor(storage, "medina")
            let tea = try await Fixture.product(storage, vendor: vendor, name: "Tea", price: 250, stock: 100)
            let dates = try await Fixture.product(storage, vendor: vendor, name: "Dates", price: 1_000, stock: 100)
            let foreign = try await Fixture.product(storage, vendor: other, name: "Foreign", price: 999, stock: 100)

            let delivered = try await storage.placeOrder(vendorID: vendor.id, Fixture.order([(tea.id, 3)]))
            for status in [OrderStatus.confirmed, .shipped, .delivered] { _ = try await storage.updateOrderStatus(id: delivered.id, vendorID: vendor.id, to: status) }
            _ = try await storage.placeOrder(vendorID: vendor.id, Fixture.order([(tea.id, 1), (dates.id, 2)]))
            let cancelled = try await storage.placeOrder(vendorID: vendor.id, Fixture.order([(dates.id, 5)]))
            _ = try await storage.updateOrderStatus(id: cancelled.id, vendorID: vendor.id, to: .cancelled)
            _ = try await storage.placeOrder(vendorID: other.id, Fixture.order([(foreign.id, 7)]))

            // A flash sale of dates with two persisted orders.
            let now = Date()
            let sale = try await storage.createFlashSale(vendorID: vendor.id, FlashSaleDraft(
                productID: dates.id, quantity: 10, startsAt: now.addingTimeInterval(-60), endsAt: now.addingTimeInterval(3_600), perBuyerLimit: 1, now: now.addingTimeInterval(-120)), now: now)
            _ = try await storage.persistAdmitted((1...2).map {
                AdmittedOrder(orderID: "\(sale.id)-b\($0)-1", saleID: sale.id, buyerID: "b\($0)", n: 1, requestKey: "1", admittedAt: now)
            })

            try await storage.recordViews([vendor.id: 8, other.id: 100], minute: Int64(now.timeIntervalSince1970) / 60)
            try await storage.recordViews([vendor.id: 2], minute: Int64(now.timeIntervalSince1970) / 60)

            let asked = Date()
            let snapshot = try await storage.analytics(vendorID: vendor.id, minutes: 60, now: asked)
            #expect(snapshot.perMinute.count == 60 && snapshot.perMinute.last?.minute == Int64(asked.timeIntervalSince1970) / 60)
            #expect(snapshot.orders == 4, "two store orders (not the cancelled one) and two flash-sale orders")
            #expect(snapshot.perMinute.map(\.orders).reduce(0, +) == 4)
            // Money taken only: the delivered order; not the one still to be paid on delivery, nor the unpaid flash-sale orders.
            #expect(snapshot.revenue == [Money(minor: 750, currency: Currency(code: "USD")!)], "\(snapshot.revenue)")
            #expect(snapshot.topProducts == [.init(name: "Dates", units: 4), .init(name: "Tea", units: 4)], "\(snapshot.topProducts)")
            #expect(snapshot.views == 10 && snapshot.conversion == 0.4)
            #expect(snapshot.sales.map(\.sold) == [2] && snapshot.sales.first?.quantity == 10)

            let theirs = try await storage.analytics(vendorID: other.id, minutes: 60, now: Date())
            #expect(theirs.orders == 1 && theirs.views == 100 && theirs.topProducts == [.init(name: "Foreign", units: 7)] && theirs.sales.isEmpty)
            let later = try await storage.analytics(vendorID: vendor.id, minutes: 60, now: Date().addingTimeInterval(2 * 3_600))
            #expect(later.orders == 0 && later.views == 0 && later.conversion == nil, "the window moves on")
        }
    }
}
