import Foundation
import SoukCore

extension SQLStorage: ProductImageStore {
    static let productColumns: SQL = " id, vendor_id, name, description, price_minor, currency, stock, available, status, created_at, updated_at, price_feed_item, image_key, thumbnail_sizes "

    public func createProduct(vendorID: Int64, _ change: ProductChange) async throws -> Product {
        let now = Date()
        var sql: SQL = """
            INSERT INTO products (vendor_id, name, description, price_minor, currency, stock, available, status, created_at, updated_at, price_feed_item)
            VALUES (\(vendorID), \(change.name ?? ""), \(change.description ?? ""), \(change.priceMinor ?? 0),
                    \(change.currency?.code ?? "USD"), \(change.stock ?? 0), \(change.available ?? true),
                    \(ProductStatus.active.rawValue), \(now), \(now), \(change.priceFeedItem.flatMap { $0.isEmpty ? nil : $0 }))
            RETURNING
            """
        sql.append(Self.productColumns)
        return try Self.product(try await database.write(sql)[0])
    }

    public func products(vendorID: Int64, availableOnly: Bool) async throws -> [Product] {
        var sql: SQL = "SELECT "
        sql.append(Self.productColumns)
        // `available = TRUE OR NOT $2` keeps one statement for both lists.
        sql.append("FROM products WHERE vendor_id = \(vendorID) AND (available = \(true) OR \(!availableOnly)) ORDER BY id DESC")
        return try await database.read(sql).map(Self.product)
    }

    public func product(id: Int64, vendorID: Int64) async throws -> Product? {
        var sql: SQL = "SELECT "
        sql.append(Self.productColumns)
        sql.append(" FROM products WHERE id = \(id) AND vendor_id = \(vendorID)")
        return try await database.readFirst(sql).map(Self.product)
    }

    public func updateProduct(id: Int64, vendorID: Int64, _ change: ProductChange) async throws -> Product? {
        // One statement: each column keeps its value unless the change names a new one.
        var sql: SQL = """
            UPDATE products SET
                name = COALESCE(CAST(\(change.name) AS TEXT), name),
                description = COALESCE(CAST(\(change.description) AS TEXT), description),
                price_minor = COALESCE(CAST(\(change.priceMinor) AS BIGINT), price_minor),
                currency = COALESCE(CAST(\(change.currency?.code) AS TEXT), currency),
                stock = COALESCE(CAST(\(change.stock.map(Int64.init)) AS BIGINT), stock),
                available = COALESCE(CAST(\(change.available) AS BOOLEAN), available),
                price_feed_item = CASE WHEN CAST(\(change.priceFeedItem) AS TEXT) IS NULL THEN price_feed_item
                                       ELSE NULLIF(CAST(\(change.priceFeedItem) AS TEXT), '') END,
                price_feed_at = CASE WHEN CAST(\(change.priceFeedItem) AS TEXT) IS NULL THEN price_feed_at ELSE NULL END,
                updated_at = \(Date())
            WHERE id = \(id) AND vendor_id = \(vendorID)
            """
        let now = Date()
        if change.available == false {
            sql.append(" AND NOT")
            sql.append(Self.inOpenFlashSale(now: now))
        }
        sql.append(" RETURNING")
        sql.append(Self.productColumns)
        if let product = try await database.write(sql).first.map(Self.product) { return product }
        if change.available == false { try await refuseIfInOpenFlashSale(id: id, vendorID: vendorID, now: now) }
        return nil
    }

    public func deleteProduct(id: Int64, vendorID: Int64) async throws -> Bool {
        let now = Date()
        var sql: SQL = "DELETE FROM products WHERE id = \(id) AND vendor_id = \(vendorID) AND NOT"
        sql.append(Self.inOpenFlashSale(now: now))
        sql.append(" RETURNING id")
        if !(try await database.write(sql).isEmpty) { return true }
        try await refuseIfInOpenFlashSale(id: id, vendorID: vendorID, now: now)
        return false
    }

    /// True for a product (the row of `products`) that a sale not yet ended or cancelled offers:
    /// deleting or hiding it would leave buyers admitted to something the store no longer sells.
    static func inOpenFlashSale(now: Date) -> SQL {
        " EXISTS (SELECT 1 FROM flash_sales WHERE flash_sales.product_id = products.id AND flash_sales.closed_at IS NULL AND flash_sales.ends_at > \(now))"
    }

    /// After a change matched no row: throws ``SoukError/flashSaleOpen(productName:)`` when an open
    /// sale was the reason (rather than a product that is not the vendor's).
    private func refuseIfInOpenFlashSale(id: Int64, vendorID: Int64, now: Date) async throws {
        var sql: SQL = "SELECT name FROM products WHERE id = \(id) AND vendor_id = \(vendorID) AND"
        sql.append(Self.inOpenFlashSale(now: now))
        if let row = try await database.readFirst(sql) { throw SoukError.flashSaleOpen(productName: try row.string("name")) }
    }

    static func product(_ row: SQLRow) throws -> Product {
        Product(
            id: try row.int("id"),
            vendorID: try row.int("vendor_id"),
            name: try row.string("name"),
            description: try row.string("description"),
            price: Money(minor: try row.int("price_minor"), currency: try currency(row.string("currency"))),
            stock: Int(try row.int("stock")),
            available: try row.bool("available"),
            status: ProductStatus(rawValue: try row.string("status")) ?? .active,
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"),
            priceFeedItem: try row.optionalString("price_feed_item"),
            imageKey: try row.optionalString("image_key"),
            thumbnailSizes: (try row.optionalString("thumbnail_sizes") ?? "").split(separator: ",").compactMap { Int($0) }
        )
    }

    public func setImage(productID: Int64, vendorID: Int64, imageKey: String) async throws -> Product? {
        var sql: SQL = """
            UPDATE products SET image_key = \(imageKey), thumbnail_sizes = NULL, status = \(ProductStatus.processing.rawValue), updated_at = \(Date())
            WHERE id = \(productID) AND vendor_id = \(vendorID)
            RETURNING
            """
        sql.append(Self.productColumns)
        return try await database.write(sql).first.map(Self.product)
    }

    public func thumbnailsMade(productID: Int64, imageKey: String, sizes: [Int]) async throws -> Int64? {
        try await database.write("""
            UPDATE products SET thumbnail_sizes = \(sizes.map(String.init).joined(separator: ",")), status = \(ProductStatus.active.rawValue), updated_at = \(Date())
            WHERE id = \(productID) AND image_key = \(imageKey)
            RETURNING vendor_id
            """).first.map { try $0.int("vendor_id") }
    }

    public func productsAwaitingThumbnails(before: Date, limit: Int) async throws -> [(productID: Int64, imageKey: String)] {
        try await database.read("""
            SELECT id, image_key FROM products
            WHERE status = \(ProductStatus.processing.rawValue) AND image_key IS NOT NULL AND updated_at < \(before)
            ORDER BY updated_at LIMIT \(limit)
            """).map { (try $0.int("id"), try $0.string("image_key")) }
    }

    static func currency(_ code: String) throws -> Currency {
        guard let currency = Currency(code: code) else {
            throw SQLDatabaseError.typeMismatch(column: "currency", expected: "a known currency, found \(code)")
        }
        return currency
    }
}
