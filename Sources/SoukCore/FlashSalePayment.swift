import Foundation

/// Where a flash-sale order is on its way to the buyer: its unit is kept for them (`held`), a
/// payment for it is being verified (`paying`), or it is paid and can be shipped (`paid`). A
/// payment that fails puts it back to `held`, so the buyer can pay again until the hold expires
/// (`expired`: the unit went back to the sale).
public enum FlashSaleOrderStatus: String, Sendable, CaseIterable, Codable {
    case held, paying, paid, expired
    /// Paid, then cancelled by the vendor: refunded, its unit back in the product's stock.
    case cancelled
}

/// A paid flash-sale order given back to its buyer by the vendor's cancellation.
public struct FlashSaleRefund: Sendable, Equatable {
    public let orderID: String
    public let amountMinor: Int64
    public let currency: String
    /// Back to the store credit it was paid with at once, or owed back on the card by the provider
    /// (the saga runners release it).
    public let method: PaymentMethod

    public init(orderID: String, amountMinor: Int64, currency: String, method: PaymentMethod) {
        self.orderID = orderID
        self.amountMinor = amountMinor
        self.currency = currency
        self.method = method
    }
}

/// How a buyer pays.
public enum PaymentMethod: String, Sendable, CaseIterable {
    /// The buyer's store credit at the sale's store, held while the payment is verified.
    case credit
    /// A card through the payment provider.
    case card
}

/// A validated request to pay for a flash-sale order: by whom, how, and where it goes.
public struct FlashSalePaymentRequest: Sendable, Equatable {
    public let orderID: String
    public let buyerID: String
    public let method: PaymentMethod
    public let shipping: ShippingContact
    /// The card, for ``PaymentMethod/card`` (and only then).
    public let card: PaymentCard?

    public init(orderID: String, buyerID: String, method: String?, name: String, phone: String, address: String, card: CardInput? = nil, now: Date = Date()) throws(SoukError) {
        var errors: [FieldError] = []
        let shipping = ShippingContact(trimmingName: name, phone: phone, address: address)
        errors += shipping.problems(prefix: "shipping")
        let chosen = method.flatMap(PaymentMethod.init(rawValue:))
        var validCard: PaymentCard?
        switch chosen {
        case .credit: break
        case .card:
            do throws(SoukError) {
                validCard = try PaymentCard(number: card?.number, expiryMonth: card?.expiryMonth, expiryYear: card?.expiryYear, securityCode: card?.securityCode, now: now)
            } catch {
                if case .validationFailed(let problems) = error { errors += problems } else { throw error }
            }
        case nil: errors.append(.init(field: "method", message: "must be credit or card"))
        }
        guard errors.isEmpty, let chosen else { throw .validationFailed(errors) }
        self.orderID = orderID
        self.buyerID = buyerID
        self.method = chosen
        self.shipping = shipping
        self.card = validCard
    }

    /// A card's fields as a client sent them, before they are checked.
    public struct CardInput: Sendable {
        public let number: String?
        public let expiryMonth: Int?
        public let expiryYear: Int?
        public let securityCode: String?

        public init(number: String?, expiryMonth: Int?, expiryYear: Int?, securityCode: String?) {
            self.number = number
            self.expiryMonth = expiryMonth
            self.expiryYear = expiryYear
            self.securityCode = securityCode
        }
    }
}
