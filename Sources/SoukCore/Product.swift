import Foundation

/// Where a product is in its life: `processing` while background work (thumbnails) is pending.
public enum ProductStatus: String, Sendable, Codable {
    case active
    case processing
}

/// Something a vendor sells. `stock` is the count still for sale; it never goes below zero.
public struct Product: Hashable, Sendable {
    public let id: Int64
    public let vendorID: Int64
    public let name: String
    public let description: String
    public let price: Money
    public let stock: Int
    public let available: Bool
    public let status: ProductStatus
    public let createdAt: Date
    public let updatedAt: Date
    /// The price-feed item whose price this product takes as ticks arrive, if any.
    public let priceFeedItem: String?
    /// The content hash naming the product's uploaded image, if any.
    public let imageKey: String?
    /// The thumbnail sizes made from that image so far (all of ``ImageLimits/thumbnailSizes`` once done).
    public let thumbnailSizes: [Int]

    public init(
        id: Int64, vendorID: Int64, name: String, description: String, price: Money, stock: Int,
        available: Bool, status: ProductStatus, createdAt: Date, updatedAt: Date, priceFeedItem: String? = nil,
        imageKey: String? = nil, thumbnailSizes: [Int] = []
    ) {
        self.priceFeedItem = priceFeedItem
        self.imageKey = imageKey
        self.thumbnailSizes = thumbnailSizes
        self.id = id
        self.vendorID = vendorID
        self.name = name
        self.description = description
        self.price = price
        self.stock = stock
        self.available = available
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Bounds that keep every product value meaningful and every order total inside Int64.
public enum ProductLimits {
    public static let price: ClosedRange<Int64> = 0...100_000_000_000
    public static let stock: ClosedRange<Int> = 0...1_000_000_000
    public static let nameLength = 200
    public static let descriptionLength = 5_000
}

/// A change to a product; nil fields stay as they are. A new product is a change with every
/// required field present (see ``ProductChange/newProduct(name:description:priceMinor:currency:stock:available:)``).
public struct ProductChange: Sendable, Equatable {
    public var name: String?
    public var description: String?
    public var priceMinor: Int64?
    public var currency: Currency?
    public var stock: Int?
    public var available: Bool?
    /// A feed item to follow, or "" to stop following.
    public var priceFeedItem: String?

    public init() {}

    /// Validates raw client values; every failing field is reported at once.
    public init(
        name: String?, description: String?, priceMinor: Int64?, currency: String?, stock: Int?,
        available: Bool?, priceFeedItem: String? = nil
    ) throws(SoukError) {
        var errors: [FieldError] = []
        if let priceFeedItem {
            let trimmed = priceFeedItem.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty, !PriceItem.isValid(trimmed) {
                errors.append(.init(field: "price_feed_item", message: "must be 1–64 letters, digits or . _ - : (such as SIM-0001)"))
            }
            self.priceFeedItem = trimmed
        }
        if let name {
            let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
            if let problem = Validate.text(trimmed, min: 1, max: ProductLimits.nameLength) {
                errors.append(.init(field: "name", message: problem))
            }
            self.name = trimmed
        }
        if let description {
            let trimmed = description.trimmingCharacters(in: .whitespacesAndNewlines)
            if let problem = Validate.text(trimmed, min: 0, max: ProductLimits.descriptionLength) {
                errors.append(.init(field: "description", message: problem))
            }
            self.description = trimmed
        }
        if let priceMinor {
            if let problem = Validate.range(priceMinor, ProductLimits.price) {
                errors.append(.init(field: "price_minor", message: problem))
            }
            self.priceMinor = priceMinor
        }
        if let currency {
            if let known = Currency(code: currency) {
                self.currency = known
            } else {
                errors.append(.init(field: "currency", message: "must be an ISO 4217 code Souk knows, such as USD, EUR or INR"))
            }
        }
        if let stock {
            if let problem = Validate.range(stock, ProductLimits.stock) {
                errors.append(.init(field: "stock", message: problem))
            }
            self.stock = stock
        }
        self.available = available
        guard errors.isEmpty else { throw .validationFailed(errors) }
    }

    /// A change that creates a product: name, price, currency and stock are required.
    public static func newProduct(
        name: String?, description: String?, priceMinor: Int64?, currency: String?, stock: Int?,
        available: Bool?, priceFeedItem: String? = nil
    ) throws(SoukError) -> ProductChange {
        var missing: [FieldError] = []
        if name == nil { missing.append(.init(field: "name", message: "is required")) }
        if priceMinor == nil { missing.append(.init(field: "price_minor", message: "is required")) }
        if currency == nil { missing.append(.init(field: "currency", message: "is required")) }
        if stock == nil { missing.append(.init(field: "stock", message: "is required")) }
        var change: ProductChange
        do {
            change = try ProductChange(
                name: name, description: description ?? "", priceMinor: priceMinor, currency: currency,
                stock: stock, available: available ?? true, priceFeedItem: priceFeedItem
            )
        } catch {
            guard case .validationFailed(let fields) = error else { throw error }
            throw .validationFailed(missing + fields)
        }
        guard missing.isEmpty else { throw .validationFailed(missing) }
        change.description = change.description ?? ""
        return change
    }

    public var isEmpty: Bool {
        name == nil && description == nil && priceMinor == nil && currency == nil && stock == nil && available == nil && priceFeedItem == nil
    }
}
