import Foundation
import Hummingbird
import SoukCore

/// The JSON API v1: vendor sign-up and sessions, the vendor's products and orders, and the public
/// store with its order endpoint.
struct APIController: Sendable {
    let services: SoukServices

    func addRoutes(to group: RouterGroup<SoukRequestContext>) {
        group.post("vendors", use: signUp)
        group.post("sessions", use: logIn)
        group.get("stores/:username", use: store)
        group.post("stores/:username/orders", use: placeOrder)
        // Store orders (numeric ids, the vendor's) and checkout orders ("co_…", the buyer's key) share the path.
        group.get("orders/:id") { request, context in
            if context.parameters.get("id")?.hasPrefix("co_") == true {
                return try await CheckoutController(services: services).show(request, context: context)
            }
            guard context.vendor != nil else { throw SoukError.unauthorized }
            return try await getOrder(request, context: context)
        }

        let vendor = group.group().add(middleware: RequireVendorMiddleware())
        vendor.delete("sessions", use: logOut)
        vendor.get("vendors/me", use: me)
        vendor.get("products", use: listProducts)
        vendor.post("products", use: createProduct)
        vendor.get("products/:id", use: getProduct)
        vendor.patch("products/:id", use: updateProduct)
        vendor.delete("products/:id", use: deleteProduct)
        vendor.get("orders", use: listOrders)
        vendor.get("orders/export.csv", use: exportOrders)
        vendor.patch("orders/:id", use: updateOrder)
    }

    // MARK: Vendors and sessions

    struct SignupInput: Decodable {
        let username: String
        let password: String
        let storeName: String
    }

    struct VendorBody: Encodable {
        let id: Int64
        let username: String
        let storeName: String
        let storeUrl: String
        let createdAt: Date

        init(_ vendor: Vendor) {
            id = vendor.id
            username = vendor.username
            storeName = vendor.storeName
            storeUrl = "/s/\(vendor.username)"
            createdAt = vendor.createdAt
        }
    }

    @Sendable func signUp(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let input = try await JSONResponse.decode(SignupInput.self, from: request, context: context)
        try await services.rateGuard.check([(.signupPerAddress, services.rateGuard.clientAddress(request, context))])
        let vendor = try await services.accounts.signUp(VendorSignup(username: input.username, password: input.password, storeName: input.storeName))
        return try JSONResponse.make(VendorBody(vendor), status: .created, headers: [.location: "/api/v1/vendors/me"])
    }

    struct LoginInput: Decodable {
        let username: String
        let password: String
    }

    struct TokenBody: Encodable {
        let token: String
        let expiresIn: Int64
    }

    @Sendable func logIn(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let input = try await JSONResponse.decode(LoginInput.self, from: request, context: context)
        guard let vendor = try await services.rateGuard.login(username: input.username, request: request, context: context, authenticate: {
            try await services.accounts.authenticate(username: input.username, password: input.password)
        }) else { throw SoukError.unauthorized }
        let token = try await services.sessions.open(for: vendor)
        return try JSONResponse.make(TokenBody(token: token, expiresIn: services.sessions.lifetime.components.seconds), status: .created)
    }

    @Sendable func logOut(_ request: Request, context: SoukRequestContext) async throws -> Response {
        if let hash = context.sessionTokenHash { try await services.sessionStore.deleteSession(tokenHash: hash) }
        return Response(status: .noContent)
    }

    @Sendable func me(_ request: Request, context: SoukRequestContext) async throws -> Response {
        try JSONResponse.make(VendorBody(try context.requireVendor()))
    }

    // MARK: Products

    struct ProductList: Encodable { let products: [API.ProductBody] }

    @Sendable func listProducts(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        return try JSONResponse.make(ProductList(products: try await services.storage.products(vendorID: vendor.id, availableOnly: false).map(API.ProductBody.init)))
    }

    @Sendable func createProduct(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let change = try await JSONResponse.decode(API.ProductInput.self, from: request, context: context).newProduct()
        try await services.requireQuoted(change)
        let product = try await services.storage.createProduct(vendorID: vendor.id, change)
        return try JSONResponse.make(API.ProductBody(product), status: .created, headers: [.location: "/api/v1/products/\(product.id)"])
    }

    @Sendable func getProduct(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        guard let product = try await services.storage.product(id: try Self.id(context, of: "Product"), vendorID: vendor.id) else { throw SoukError.notFound("Product") }
        return try JSONResponse.make(API.ProductBody(product))
    }

    @Sendable func updateProduct(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let id = try Self.id(context, of: "Product")
        let change = try await JSONResponse.decode(API.ProductInput.self, from: request, context: context).change()
        if change.priceFeedItem?.isEmpty == false {
            try await services.requireQuoted(change, current: try await services.storage.product(id: id, vendorID: vendor.id)?.priceFeedItem)
        }
        guard let product = try await services.storage.updateProduct(id: id, vendorID: vendor.id, change) else { throw SoukError.notFound("Product") }
        return try JSONResponse.make(API.ProductBody(product))
    }

    @Sendable func deleteProduct(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        guard try await services.storage.deleteProduct(id: try Self.id(context, of: "Product"), vendorID: vendor.id) else { throw SoukError.notFound("Product") }
        return Response(status: .noContent)
    }

    // MARK: Store (public)

    struct StoreBody: Encodable {
        let username: String
        let storeName: String
        let products: [API.ProductBody]
    }

    @Sendable func store(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try await services.publicVendor(context)
        let page = try await services.storefront.page(for: PageKey(vendorID: vendor.id, variant: "json"), logger: context.logger) {
            let products = try await services.storage.products(vendorID: vendor.id, availableOnly: true)
            let body = StoreBody(username: vendor.username, storeName: vendor.storeName, products: products.map(API.ProductBody.init))
            return Array(try JSONResponse.encoder.encode(body))
        }
        return services.storefront.response(page, request: request, contentType: "application/json; charset=utf-8", csrfToken: nil)
    }

    @Sendable func placeOrder(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try await services.publicVendor(context)
        var orderRequest = try await JSONResponse.decode(API.OrderInput.self, from: request, context: context).request()
        orderRequest.customerID = context.customer?.customerID  // a guest's order names nobody
        try orderRequest.setIdempotencyKey(request.headers[.idempotencyKey])
        try await services.rateGuard.check([(.orderPerAddress, services.rateGuard.clientAddress(request, context))])
        let order = try await services.storage.placeOrder(vendorID: vendor.id, orderRequest)
        context.logger.info("order placed", metadata: ["souk.order_id": "\(order.id)", "souk.vendor_id": "\(vendor.id)"])
        return try JSONResponse.make(API.OrderBody(order), status: .created)
    }

    // MARK: Orders (vendor)

    /// Every order of the store, whatever its source, newest first; `?source=&status=&q=` narrow it.
    @Sendable func listOrders(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let (filter, after, limit) = try OrderListAPI.query(request, owner: .vendor(vendor.id))
        let (orders, next) = try await OrderListAPI.page(services.storage, filter, after: after, limit: limit)
        return try JSONResponse.make(OrderListAPI.Page(orders: orders.map { OrderListAPI.Body($0) }, nextCursor: next))
    }

    /// The same list, every page of it, as a spreadsheet.
    @Sendable func exportOrders(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let (filter, _, _) = try OrderListAPI.query(request, owner: .vendor(vendor.id))
        return OrderListAPI.csvResponse(try await OrderListAPI.csv(services.storage, filter))
    }

    @Sendable func getOrder(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        guard let order = try await services.storage.order(id: try Self.id(context, of: "Order"), vendorID: vendor.id) else { throw SoukError.notFound("Order") }
        return try JSONResponse.make(API.OrderBody(order))
    }

    struct StatusInput: Decodable { let status: String }

    @Sendable func updateOrder(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let id = try Self.id(context, of: "Order")
        let input = try await JSONResponse.decode(StatusInput.self, from: request, context: context)
        guard let status = OrderStatus(rawValue: input.status) else {
            throw SoukError.validationFailed([FieldError(field: "status", message: "must be one of " + OrderStatus.allCases.map(\.rawValue).joined(separator: ", "))])
        }
        guard let order = try await services.storage.updateOrderStatus(id: id, vendorID: vendor.id, to: status) else { throw SoukError.notFound("Order") }
        return try JSONResponse.make(API.OrderBody(order))
    }

    /// A path id that is not a positive integer names nothing: 404, like an id of another vendor.
    static func id(_ context: SoukRequestContext, of what: String) throws -> Int64 {
        guard let id = context.parameters.get("id", as: Int64.self), id > 0 else { throw SoukError.notFound(what) }
        return id
    }
}
