import Foundation
import SoukCore

/// The JSON shapes of API v1. Field names become snake_case on the wire.
enum API {
    struct ProductBody: Encodable {
        let id: Int64
        let name: String
        let description: String
        let priceMinor: Int64
        let currency: String
        let stock: Int
        let available: Bool
        let status: String
        let createdAt: Date
        let updatedAt: Date
        let priceFeedItem: String?
        /// Size → URL, once made.
        let thumbnails: [String: String]?

        init(_ product: Product) {
            priceFeedItem = product.priceFeedItem
            thumbnails = product.imageKey.flatMap { key in
                product.thumbnailSizes.isEmpty ? nil
                    : Dictionary(uniqueKeysWithValues: product.thumbnailSizes.map { (String($0), MediaNames.url(MediaNames.thumbnail(key, size: $0))) })
            }
            id = product.id
            name = product.name
            description = product.description
            priceMinor = product.price.minor
            currency = product.price.currency.code
            stock = product.stock
            available = product.available
            status = product.status.rawValue
            createdAt = product.createdAt
            updatedAt = product.updatedAt
        }
    }

    /// Create and update share one input: on create, name, price_minor, currency and stock are required.
    struct ProductInput: Decodable {
        let name: String?
        let description: String?
        let priceMinor: Int64?
        let currency: String?
        let stock: Int?
        let available: Bool?
        /// A feed item to follow; "" or null stops following (on update, absent leaves it as it is).
        let priceFeedItem: String?

        func newProduct() throws(SoukError) -> ProductChange {
            try .newProduct(name: name, description: description, priceMinor: priceMinor, currency: currency, stock: stock, available: available, priceFeedItem: priceFeedItem)
        }

        func change() throws(SoukError) -> ProductChange {
            let change = try ProductChange(name: name, description: description, priceMinor: priceMinor, currency: currency, stock: stock, available: available, priceFeedItem: priceFeedItem)
            guard !change.isEmpty else {
                throw .validationFailed([FieldError(field: "body", message: "must change at least one field")])
            }
            return change
        }
    }

    struct CustomerBody: Codable {
        let name: String
        let phone: String
        let address: String
    }

    struct OrderLineBody: Encodable {
        let productId: Int64?
        let name: String
        let unitPriceMinor: Int64
        let quantity: Int
        let totalMinor: Int64
    }

    struct OrderBody: Encodable {
        let id: Int64
        let reference: String
        let status: String
        let totalMinor: Int64
        let currency: String
        let customer: CustomerBody
        let items: [OrderLineBody]
        let nextStatuses: [String]
        let createdAt: Date
        let updatedAt: Date

        init(_ order: Order) {
            id = order.id
            reference = order.reference
            status = order.status.rawValue
            totalMinor = order.total.minor
            currency = order.total.currency.code
            customer = CustomerBody(name: order.customer.name, phone: order.customer.phone, address: order.customer.address)
            items = order.lines.map {
                OrderLineBody(productId: $0.productID, name: $0.name, unitPriceMinor: $0.unitPriceMinor, quantity: $0.quantity, totalMinor: $0.totalMinor)
            }
            nextStatuses = order.status.nextStates.map(\.rawValue)
            createdAt = order.createdAt
            updatedAt = order.updatedAt
        }
    }

    struct OrderInput: Decodable {
        struct Item: Decodable {
            let productId: Int64
            let quantity: Int
        }
        let customer: CustomerBody
        let items: [Item]

        func request() throws(SoukError) -> OrderRequest {
            try OrderRequest(
                name: customer.name, phone: customer.phone, address: customer.address,
                items: items.map { ($0.productId, $0.quantity) }
            )
        }
    }
}
