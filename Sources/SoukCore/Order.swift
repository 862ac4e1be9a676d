import Foundation

/// The life of a store order. Cancelling returns the stock; nothing leaves a final state.
public enum OrderStatus: String, Sendable, CaseIterable, Codable {
    case placed, confirmed, shipped, delivered, cancelled

    /// The moves a vendor may make: forward one step at a time, or cancel before shipping.
    public func canBecome(_ next: OrderStatus) -> Bool {
        switch (self, next) {
        case (.placed, .confirmed), (.confirmed, .shipped), (.shipped, .delivered): true
        case (.placed, .cancelled), (.confirmed, .cancelled): true
        default: false
        }
    }

    /// The states reachable from this one, in the order a dashboard offers them.
    public var nextStates: [OrderStatus] { OrderStatus.allCases.filter { canBecome($0) } }

    public var isFinal: Bool { nextStates.isEmpty }
}

/// Who placed an order and where it goes: the name, phone and address on the order (a guest's, or
/// a signed-in customer's as they gave them).
public struct ShippingContact: Hashable, Sendable {
    public let name: String
    public let phone: String
    public let address: String

    public init(name: String, phone: String, address: String) {
        self.name = name
        self.phone = phone
        self.address = address
    }

    /// The details as a person typed them, without the spaces around each.
    public init(trimmingName name: String, phone: String, address: String) {
        self.init(name: name.trimmingCharacters(in: .whitespacesAndNewlines), phone: phone.trimmingCharacters(in: .whitespacesAndNewlines),
                  address: address.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// What is wrong with the details, on fields named `<prefix>.name`, `.phone` and `.address`.
    public func problems(prefix: String) -> [FieldError] {
        var errors: [FieldError] = []
        if let problem = Validate.text(name, min: 1, max: 200) { errors.append(.init(field: "\(prefix).name", message: problem)) }
        let phoneCharacters = Set("0123456789+-() .")
        if !(5...32).contains(phone.count) || !phone.allSatisfy({ phoneCharacters.contains($0) }) || phone.filter(\.isNumber).count < 5 {
            errors.append(.init(field: "\(prefix).phone", message: "must be a phone number of 5 to 32 characters: digits, spaces, + - ( ) ."))
        }
        if let problem = Validate.text(address, min: 1, max: 1_000) { errors.append(.init(field: "\(prefix).address", message: problem)) }
        return errors
    }
}

/// One line of an order, priced when the order was placed (later price changes do not touch it).
public struct OrderLine: Hashable, Sendable {
    /// Nil once the product has been deleted; the line keeps its name and price.
    public let productID: Int64?
    public let name: String
    public let unitPriceMinor: Int64
    public let quantity: Int

    public init(productID: Int64?, name: String, unitPriceMinor: Int64, quantity: Int) {
        self.productID = productID
        self.name = name
        self.unitPriceMinor = unitPriceMinor
        self.quantity = quantity
    }

    public var totalMinor: Int64 { unitPriceMinor * Int64(quantity) }
}

/// A customer's order at one vendor's store.
public struct Order: Hashable, Sendable {
    public let id: Int64
    public let vendorID: Int64
    /// Short, unguessable reference the customer keeps; it also names the confirmation page.
    public let reference: String
    public let status: OrderStatus
    public let customer: ShippingContact
    public let lines: [OrderLine]
    public let total: Money
    public let createdAt: Date
    public let updatedAt: Date

    public init(
        id: Int64, vendorID: Int64, reference: String, status: OrderStatus, customer: ShippingContact,
        lines: [OrderLine], total: Money, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.vendorID = vendorID
        self.reference = reference
        self.status = status
        self.customer = customer
        self.lines = lines
        self.total = total
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A validated request to buy: one customer, at least one item, each product once.
public struct OrderRequest: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public let productID: Int64
        public let quantity: Int
    }

    public static let maxItems = 100
    public static let maxQuantity = 10_000

    public let customer: ShippingContact
    /// Sorted by product id so that concurrent orders lock rows in the same order.
    public let items: [Item]
    /// The customer account placing the order, when signed in; guests have none.
    public var customerID: String?
    /// The client's `Idempotency-Key`: the same key again is the same order, placed once.
    public private(set) var idempotencyKey: String?

    /// Binds the request to the client's key (1 to 64 visible ASCII characters), or refuses it.
    public mutating func setIdempotencyKey(_ raw: String?) throws(SoukError) {
        idempotencyKey = try IdempotencyKey.validated(raw)
    }

    /// What this request asks for, canonical: a key is bound to it, so the same key with another
    /// request is refused.
    public var fingerprint: String {
        items.map { "\($0.productID)x\($0.quantity)" }.joined(separator: ",") + ";" + [customer.name, customer.phone, customer.address, customerID ?? ""].joined(separator: "\u{1F}")
    }

    public init(name: String, phone: String, address: String, items: [(productID: Int64, quantity: Int)]) throws(SoukError) {
        var errors: [FieldError] = []
        let contact = ShippingContact(trimmingName: name, phone: phone, address: address)
        errors += contact.problems(prefix: "customer")
        var quantities: [Int64: Int] = [:]
        if items.isEmpty {
            errors.append(.init(field: "items", message: "must hold at least one item"))
        } else if items.count > Self.maxItems {
            errors.append(.init(field: "items", message: "must hold at most \(Self.maxItems) items"))
        }
        for (index, item) in items.enumerated() {
            if item.productID <= 0 {
                errors.append(.init(field: "items[\(index)].product_id", message: "must be a product id"))
            }
            if !(1...Self.maxQuantity).contains(item.quantity) {
                errors.append(.init(field: "items[\(index)].quantity", message: "must be between 1 and \(Self.maxQuantity)"))
            } else {
                // Only quantities in range are added up: at most maxItems × maxQuantity, no overflow.
                quantities[item.productID, default: 0] += item.quantity
            }
        }
        if quantities.values.contains(where: { $0 > Self.maxQuantity }) {
            errors.append(.init(field: "items", message: "must ask for at most \(Self.maxQuantity) of one product"))
        }
        guard errors.isEmpty else { throw .validationFailed(errors) }
        self.customer = contact
        self.items = quantities.sorted { $0.key < $1.key }.map { Item(productID: $0.key, quantity: $0.value) }
    }
}

/// Order references: 10 characters of Crockford base32 (50 random bits), easy to read out loud.
public enum OrderReference {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    public static func random() -> String { random(length: 10) }

    /// `length` random characters (5 bits each).
    public static func random(length: Int) -> String { random(length: length, count: 1)[0] }

    /// `count` strings of `length` random characters, from one read of the kernel's generator
    /// (a flash sale names a whole batch of orders at once).
    public static func random(length: Int, count: Int) -> [String] {
        var bytes = [UInt8](repeating: 0, count: length * count)
        RandomBytes.fill(&bytes)
        return (0..<count).map { index in
            String(decoding: bytes[(index * length)..<((index + 1) * length)].map { alphabetBytes[Int($0 & 31)] }, as: UTF8.self)
        }
    }

    static let alphabetBytes = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
}

/// Bytes from the C library's cryptographic generator (glibc's `arc4random_buf`: the kernel's
/// `getrandom`), as many as asked for in one call.
enum RandomBytes {
    static func fill(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            arc4random_buf(base, buffer.count)
        }
    }
}

/// A client's `Idempotency-Key`: a retry after a lost answer names the same request.
public enum IdempotencyKey {
    /// Nil for no key; 422 for one that is not 1 to 64 visible ASCII characters.
    public static func validated(_ raw: String?) throws(SoukError) -> String? {
        guard let raw else { return nil }
        guard !raw.isEmpty, raw.count <= 64, raw.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0.asciiValue.map { $0 >= 0x21 && $0 < 0x7F } == true }) else {
            throw .validationFailed([FieldError(field: "Idempotency-Key", message: "must be 1 to 64 visible ASCII characters")])
        }
        return raw
    }
}
