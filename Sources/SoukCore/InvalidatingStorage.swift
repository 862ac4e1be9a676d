import Foundation
import Logging

/// Wraps the storage so that every committed change to a vendor's products (including stock taken
/// by an order or returned by a cancellation) invalidates that vendor's cached store pages before
/// the caller hears that the change succeeded.
public struct InvalidatingStorage: SoukStorage, ProductImageStore {
    public let base: any SoukStorage
    let cache: any PageCache
    let logger: Logger

    public init(base: any SoukStorage, cache: any PageCache, logger: Logger) {
        self.base = base
        self.cache = cache
        self.logger = logger
    }

    /// The change is committed already, so a cache that cannot be reached does not fail the request:
    /// it is retried briefly, then logged (pages expire by age in any case).
    func invalidate(_ vendorID: Int64) async {
        for attempt in 1...5 {
            do {
                try await cache.invalidate(vendorID: vendorID)
                return
            } catch {
                if attempt == 5 {
                    logger.error("store page invalidation failed", metadata: ["souk.vendor_id": "\(vendorID)", "error": "\(error)"])
                } else {
                    try? await Task.sleep(for: .milliseconds(50 * attempt))
                }
            }
        }
    }

    // MARK: Changes that touch store pages

    public func createProduct(vendorID: Int64, _ change: ProductChange) async throws -> Product {
        let product = try await base.createProduct(vendorID: vendorID, change)
        await invalidate(vendorID)
        return product
    }

    public func updateProduct(id: Int64, vendorID: Int64, _ change: ProductChange) async throws -> Product? {
        let product = try await base.updateProduct(id: id, vendorID: vendorID, change)
        if product != nil { await invalidate(vendorID) }
        return product
    }

    public func deleteProduct(id: Int64, vendorID: Int64) async throws -> Bool {
        let deleted = try await base.deleteProduct(id: id, vendorID: vendorID)
        if deleted { await invalidate(vendorID) }
        return deleted
    }

    public func setImage(productID: Int64, vendorID: Int64, imageKey: String) async throws -> Product? {
        guard let images = base as? any ProductImageStore else { return nil }
        let product = try await images.setImage(productID: productID, vendorID: vendorID, imageKey: imageKey)
        if product != nil { await invalidate(vendorID) }
        return product
    }

    public func thumbnailsMade(productID: Int64, imageKey: String, sizes: [Int]) async throws -> Int64? {
        guard let images = base as? any ProductImageStore else { return nil }
        let vendor = try await images.thumbnailsMade(productID: productID, imageKey: imageKey, sizes: sizes)
        if let vendor { await invalidate(vendor) }
        return vendor
    }

    public func productsAwaitingThumbnails(before: Date, limit: Int) async throws -> [(productID: Int64, imageKey: String)] {
        try await (base as? any ProductImageStore)?.productsAwaitingThumbnails(before: before, limit: limit) ?? []
    }

    public func placeOrder(vendorID: Int64, _ request: OrderRequest) async throws -> Order {
        let order = try await base.placeOrder(vendorID: vendorID, request)
        await invalidate(vendorID)
        return order
    }

    public func updateOrderStatus(id: Int64, vendorID: Int64, to status: OrderStatus) async throws -> Order? {
        let order = try await base.updateOrderStatus(id: id, vendorID: vendorID, to: status)
        if order != nil, status == .cancelled { await invalidate(vendorID) }
        return order
    }

    // MARK: Everything else passes through

    public func createVendor(username: String, storeName: String, passwordHash: String) async throws -> Vendor? {
        try await base.createVendor(username: username, storeName: storeName, passwordHash: passwordHash)
    }

    public func vendor(id: Int64) async throws -> Vendor? { try await base.vendor(id: id) }
    public func vendor(username: String) async throws -> Vendor? { try await base.vendor(username: username) }
    public func credentials(username: String) async throws -> (vendor: Vendor, passwordHash: String)? { try await base.credentials(username: username) }

    public func createSession(tokenHash: String, vendorID: Int64, expiresAt: Date) async throws {
        try await base.createSession(tokenHash: tokenHash, vendorID: vendorID, expiresAt: expiresAt)
    }

    public func vendor(sessionTokenHash: String, now: Date) async throws -> Vendor? { try await base.vendor(sessionTokenHash: sessionTokenHash, now: now) }
    public func deleteSession(tokenHash: String) async throws { try await base.deleteSession(tokenHash: tokenHash) }

    public func createCustomer(_ customer: Customer, passwordHash: String) async throws -> Customer? {
        try await base.createCustomer(customer, passwordHash: passwordHash)
    }

    public func createCustomers(_ customers: [Customer], passwordHash: String) async throws -> [Customer] {
        try await base.createCustomers(customers, passwordHash: passwordHash)
    }

    public func customer(id: String) async throws -> Customer? { try await base.customer(id: id) }
    public func lastShippingContact(customerID: String) async throws -> ShippingContact? { try await base.lastShippingContact(customerID: customerID) }

    public func orderSummaries(_ filter: OrderFilter, after: OrderListPosition?, limit: Int) async throws -> [OrderSummary] {
        try await base.orderSummaries(filter, after: after, limit: limit)
    }
    public func customer(email: String) async throws -> Customer? { try await base.customer(email: email) }
    public func customerCredentials(email: String) async throws -> (customer: Customer, passwordHash: String)? { try await base.customerCredentials(email: email) }
    public func revokeCustomerSession(id: String, expiresAt: Date) async throws { try await base.revokeCustomerSession(id: id, expiresAt: expiresAt) }
    public func revokedCustomerSessions(now: Date) async throws -> [(id: String, expiresAt: Date)] { try await base.revokedCustomerSessions(now: now) }
    public func customerSigningKey() async throws -> [UInt8] { try await base.customerSigningKey() }
    public func storeVerificationCode(customerID: String, codeHash: String, expiresAt: Date, now: Date) async throws {
        try await base.storeVerificationCode(customerID: customerID, codeHash: codeHash, expiresAt: expiresAt, now: now)
    }
    public func confirmVerificationCode(customerID: String, codeHash: String, maximumAttempts: Int, now: Date) async throws -> VerificationResult {
        try await base.confirmVerificationCode(customerID: customerID, codeHash: codeHash, maximumAttempts: maximumAttempts, now: now)
    }
    public func appendToOutbox(_ mail: Mail, now: Date) async throws { try await base.appendToOutbox(mail, now: now) }
    public func outbox(limit: Int) async throws -> [OutboxMail] { try await base.outbox(limit: limit) }

    public func products(vendorID: Int64, availableOnly: Bool) async throws -> [Product] { try await base.products(vendorID: vendorID, availableOnly: availableOnly) }
    public func product(id: Int64, vendorID: Int64) async throws -> Product? { try await base.product(id: id, vendorID: vendorID) }
    public func orders(vendorID: Int64, before: Int64?, limit: Int) async throws -> [Order] { try await base.orders(vendorID: vendorID, before: before, limit: limit) }
    public func order(id: Int64, vendorID: Int64) async throws -> Order? { try await base.order(id: id, vendorID: vendorID) }
    public func order(reference: String, vendorID: Int64) async throws -> Order? { try await base.order(reference: reference, vendorID: vendorID) }
}
