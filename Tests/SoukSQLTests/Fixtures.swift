import Foundation
import SoukCore
import SoukSQL
import SoukTesting

/// Small builders shared by the storage tests.
enum Fixture {
    static func vendor(_ storage: SQLStorage, _ username: String = "v\(UInt32.random(in: 0 ... .max))") async throws -> Vendor {
        try await storage.createVendor(username: username, storeName: "Store of \(username)", passwordHash: "not-a-real-hash")!
    }

    static func product(
        _ storage: SQLStorage, vendor: Vendor, name: String = "Tea", price: Int64 = 250, currency: String = "USD",
        stock: Int = 10, available: Bool = true
    ) async throws -> Product {
        try await storage.createProduct(vendorID: vendor.id, .newProduct(
            name: name, description: "A product", priceMinor: price, currency: currency, stock: stock, available: available))
    }

    static func order(_ items: [(Int64, Int)]) throws -> OrderRequest {
        try OrderRequest(name: "Amina", phone: "+212 600 000 000", address: "1 Rue de la Kasbah", items: items.map { (productID: $0.0, quantity: $0.1) })
    }

    static func count(_ database: any SQLDatabase, _ table: String) async throws -> Int {
        Int(try await database.read(SQL(stringLiteral: "SELECT COUNT(*) AS n FROM \(table)"))[0].int("n"))
    }
}
