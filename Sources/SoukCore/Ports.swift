import Foundation

/// Vendors and their credentials.
public protocol VendorStore: Sendable {
    /// Creates a vendor; nil when the username is already taken (decided by the database, not by a prior read).
    func createVendor(username: String, storeName: String, passwordHash: String) async throws -> Vendor?
    func vendor(id: Int64) async throws -> Vendor?
    func vendor(username: String) async throws -> Vendor?
    func credentials(username: String) async throws -> (vendor: Vendor, passwordHash: String)?
}

/// Login sessions, keyed by a hash of the token so a leaked table grants nothing.
public protocol SessionStore: Sendable {
    func createSession(tokenHash: String, vendorID: Int64, expiresAt: Date) async throws
    /// The vendor owning an unexpired session.
    func vendor(sessionTokenHash: String, now: Date) async throws -> Vendor?
    func deleteSession(tokenHash: String) async throws
}

/// A vendor's catalogue. Every call is scoped by vendor: another vendor's product is "not found".
public protocol ProductStore: Sendable {
    func createProduct(vendorID: Int64, _ change: ProductChange) async throws -> Product
    /// Newest first.
    func products(vendorID: Int64, availableOnly: Bool) async throws -> [Product]
    func product(id: Int64, vendorID: Int64) async throws -> Product?
    /// Nil when the vendor has no such product.
    func updateProduct(id: Int64, vendorID: Int64, _ change: ProductChange) async throws -> Product?
    func deleteProduct(id: Int64, vendorID: Int64) async throws -> Bool
}

/// A product's image and the thumbnails made from it.
public protocol ProductImageStore: Sendable {
    /// Gives the product a new image: its thumbnails are to be made, so it is `processing` until then.
    func setImage(productID: Int64, vendorID: Int64, imageKey: String) async throws -> Product?
    /// Records the thumbnails of `imageKey` and makes the product `active`; nil (and nothing
    /// changed) when the product is gone or has another image by now. Returns the vendor's id.
    func thumbnailsMade(productID: Int64, imageKey: String, sizes: [Int]) async throws -> Int64?
    /// Products still `processing` whose last change is older than `before`: their job may have been lost.
    func productsAwaitingThumbnails(before: Date, limit: Int) async throws -> [(productID: Int64, imageKey: String)]
}

/// Orders at one vendor's store.
public protocol OrderStore: Sendable {
    /// Atomically takes the stock of every item and records the order, or writes nothing and throws
    /// ``SoukError/insufficientStock(productID:name:requested:available:)`` (or another ``SoukError``).
    func placeOrder(vendorID: Int64, _ request: OrderRequest) async throws -> Order
    /// Newest first; `before` is the id of the last order of the previous page.
    func orders(vendorID: Int64, before: Int64?, limit: Int) async throws -> [Order]
    func order(id: Int64, vendorID: Int64) async throws -> Order?
    func order(reference: String, vendorID: Int64) async throws -> Order?
    /// Moves an order along ``OrderStatus/canBecome(_:)``, returning stock on cancel, in one transaction.
    /// Nil when the vendor has no such order; throws ``SoukError/invalidTransition(from:to:)``.
    func updateOrderStatus(id: Int64, vendorID: Int64, to status: OrderStatus) async throws -> Order?
}

/// Everything the store flows persist; one backend implements all of it.
public protocol SoukStorage: VendorStore, SessionStore, ProductStore, OrderStore, CustomerStore, OrderListing, OutboxStore {}

/// Hashes passwords; the real one (bcrypt) is slow on purpose and must not block the caller's thread.
public protocol PasswordHasher: Sendable {
    func hash(_ password: String) async throws -> String
    func verify(_ password: String, hash: String) async throws -> Bool
}
