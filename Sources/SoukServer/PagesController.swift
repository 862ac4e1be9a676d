import Foundation
import Hummingbird
import NIOCore
import SoukCore

/// The HTML side: sign-up and login, the vendor dashboard, and the public store page with its order form.
/// Every form error is shown on the form, with what the person typed kept.
struct PagesController: Sendable {
    let services: SoukServices
    var pages: PageRenderer { services.pages }
    var storage: any SoukStorage { services.storage }

    func addRoutes(to router: RouterGroup<SoukRequestContext>) {
        router.get("/", use: home)
        router.get("signup", use: signupForm)
        router.post("signup", use: signUp)
        router.get("login", use: loginForm)
        router.post("login", use: logIn)
        router.post("logout", use: logOut)
        router.get("s/:username", use: store)
        router.post("s/:username/orders", use: placeOrder)
        router.get("s/:username/orders/:reference", use: orderPlaced)
        router.post("s/:username/flash-sales/:id", use: buyFlashSale)
        router.get("checkouts/:id", use: checkoutPage)
        router.get("search", use: searchPage)

        let dashboard = router.group("dashboard").add(middleware: RequireVendorPageMiddleware())
        dashboard.get("", use: products)
        dashboard.get("products/new", use: newProductForm)
        dashboard.post("products", use: createProduct)
        dashboard.get("products/:id/edit", use: editProductForm)
        dashboard.post("products/:id", use: updateProduct)
        dashboard.post("products/:id/toggle", use: toggleProduct)
        dashboard.post("products/:id/delete", use: deleteProduct)
        dashboard.post("products/:id/image", use: uploadImage)
        dashboard.post("products/:id/image/retry", use: retryImage)
        dashboard.get("orders", use: orders)
        dashboard.get("orders.csv", use: ordersCSV)
        dashboard.post("orders/:id/status", use: updateOrderStatus)
        dashboard.post("orders/:id/cancel", use: cancelPaidFlashSaleOrder)
        dashboard.get("flash-sales", use: flashSalesPage)
        dashboard.post("flash-sales", use: createFlashSale)
        dashboard.get("flash-sales/:id", use: flashSalePage)
        dashboard.post("flash-sales/:id/cancel", use: cancelFlashSale)
    }

    // MARK: Accounts

    @Sendable func home(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let demo = try await storage.vendor(username: DemoData.username)
        return pages.page("home", title: "Welcome", ["demo": demo?.username as Any], context: context)
    }

    @Sendable func signupForm(_ request: Request, context: SoukRequestContext) async throws -> Response {
        pages.page("signup", title: "Open a store", context: context)
    }

    @Sendable func signUp(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let form = try await Form.read(request, context: context)
        let values: [String: Any] = ["username": form["username"] ?? "", "store_name": form["store_name"] ?? ""]
        do {
            try await services.rateGuard.check([(.signupPerAddress, services.rateGuard.clientAddress(request, context))])
            let signup = try VendorSignup(username: form["username"] ?? "", password: form["password"] ?? "", storeName: form["store_name"] ?? "")
            let vendor = try await services.accounts.signUp(signup)
            return try await startSession(for: vendor, request: request, redirectTo: "/dashboard")
        } catch let error as SoukError {
            return formError("signup", title: "Open a store", error, values: values, context: context)
        }
    }

    @Sendable func loginForm(_ request: Request, context: SoukRequestContext) async throws -> Response {
        if context.vendor != nil { return .redirect(to: "/dashboard", type: .found) }
        return pages.page("login", title: "Log in", context: context)
    }

    @Sendable func logIn(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let form = try await Form.read(request, context: context)
        let found: Vendor?
        do {
            found = try await services.rateGuard.login(username: form["username"] ?? "", request: request, context: context, authenticate: {
                try await services.accounts.authenticate(username: form["username"] ?? "", password: form["password"] ?? "")
            })
        } catch let error as SoukError {
            return formError("login", title: "Log in", error, values: ["username": form["username"] ?? ""], context: context)
        }
        guard let vendor = found else {
            return pages.page("login", title: "Log in", ["username": form["username"] ?? "", "formError": "That username and password do not match."], context: context, status: .unauthorized)
        }
        return try await startSession(for: vendor, request: request, redirectTo: "/dashboard")
    }

    @Sendable func logOut(_ request: Request, context: SoukRequestContext) async throws -> Response {
        _ = try await Form.read(request, context: context)
        if let hash = context.sessionTokenHash { try await services.sessionStore.deleteSession(tokenHash: hash) }
        var response = Response.redirect(to: "/", type: .found)
        response.setCookie(services.cookies.cookie(name: SessionTokens.cookieName, value: "", maxAge: 0, request: request))
        return response
    }

    private func startSession(for vendor: Vendor, request: Request, redirectTo location: String) async throws -> Response {
        let token = try await services.sessions.open(for: vendor)
        var response = Response.redirect(to: location, type: .found)
        let maxAge = Int(services.sessions.lifetime.components.seconds)
        response.setCookie(services.cookies.cookie(name: SessionTokens.cookieName, value: token, maxAge: maxAge, request: request))
        return response
    }

    // MARK: Products

    @Sendable func products(_ request: Request, context: SoukRequestContext) async throws -> Response {
        try await productsPage(context: context)
    }

    /// The dashboard's product list; with `error`, the refusal of a button on it, shown above it.
    private func productsPage(context: SoukRequestContext, error: SoukError? = nil) async throws -> Response {
        let vendor = try context.requireVendor()
        let products = try await storage.products(vendorID: vendor.id, availableOnly: false)
        let sparklines = await sparklines(for: products)
        let imageErrors = await imageErrors(for: products)
        var values: [String: Any] = [
            "products": products.map { product -> [String: Any] in
                var values = Self.productValues(product, sparkline: sparklines[product.id])
                if let error = imageErrors[product.id] { values["image_error"] = error }
                return values
            },
            "has_products": !products.isEmpty,
        ]
        if let error { values["formError"] = error.message }
        return pages.page("products", title: "Products", values, context: context, status: error.map(ErrorMiddleware.status(of:)) ?? .ok)
    }

    @Sendable func newProductForm(_ request: Request, context: SoukRequestContext) async throws -> Response {
        pages.page("product_form", title: "Add a product", ["action": "/dashboard/products", "currency": "USD", "stock": 1, "available": true], context: context)
    }

    @Sendable func createProduct(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let form = try await Form.read(request, context: context)
        do {
            let input = try Self.productInput(form)
            let change = try ProductChange.newProduct(name: input.name, description: input.description, priceMinor: input.price, currency: input.currency, stock: input.stock, available: input.available, priceFeedItem: input.priceFeedItem)
            try await services.requireQuoted(change)
            _ = try await storage.createProduct(vendorID: vendor.id, change)
            return .redirect(to: "/dashboard", type: .found)
        } catch let error as SoukError {
            return formError("product_form", title: "Add a product", error, values: Self.formValues(form, action: "/dashboard/products"), context: context)
        }
    }

    @Sendable func editProductForm(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let product = try await ownProduct(context)
        var values = Self.productValues(product)
        values["action"] = "/dashboard/products/\(product.id)"
        values["price"] = Self.plainAmount(product.price)
        values["currency"] = product.price.currency.code
        return pages.page("product_form", title: "Edit \(product.name)", values, context: context)
    }

    @Sendable func updateProduct(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let product = try await ownProduct(context)
        let form = try await Form.read(request, context: context)
        do {
            let input = try Self.productInput(form)
            let change = try ProductChange(name: input.name ?? "", description: input.description ?? "", priceMinor: input.price, currency: input.currency, stock: input.stock, available: input.available, priceFeedItem: input.priceFeedItem ?? "")
            try await services.requireQuoted(change, current: product.priceFeedItem)
            guard change.priceMinor != nil, change.stock != nil else {
                throw SoukError.validationFailed(
                    (change.priceMinor == nil ? [FieldError(field: "price", message: "is required")] : [])
                        + (change.stock == nil ? [FieldError(field: "stock", message: "is required")] : []))
            }
            guard try await storage.updateProduct(id: product.id, vendorID: vendor.id, change) != nil else { throw SoukError.notFound("Product") }
            return .redirect(to: "/dashboard", type: .found)
        } catch let error as SoukError where error.code == "validation_failed" {
            return formError("product_form", title: "Edit \(product.name)", error, values: Self.formValues(form, action: "/dashboard/products/\(product.id)"), context: context)
        }
    }

    /// The product form's image upload (multipart): the same checks and job as the API.
    @Sendable func uploadImage(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let product = try await ownProduct(context)
        let upload = try await MultipartForm.read(request, context: context, limit: ImageLimits.maxBytes + 64 * 1024)
        do {
            guard let image = upload.files["image"], !image.isEmpty else {
                throw SoukError.validationFailed([FieldError(field: "image", message: "choose a JPEG, PNG or WebP file")])
            }
            _ = try await services.attachImage(image, productID: product.id, vendorID: vendor.id, requestID: context.requestID)
            return .redirect(to: "/dashboard", type: .found)
        } catch let error as SoukError {
            var values = Self.productValues(product)
            values["action"] = "/dashboard/products/\(product.id)"
            values["price"] = Self.plainAmount(product.price)
            values["currency"] = product.price.currency.code
            values["imageError"] = error.message
            return pages.page("product_form", title: "Edit \(product.name)", values, context: context, status: ErrorMiddleware.status(of: error))
        }
    }

    /// Puts a product's dead thumbnail job back in the queue.
    @Sendable func retryImage(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let product = try await ownProduct(context)
        _ = try await Form.read(request, context: context)
        if let key = product.imageKey, let jobs = services.jobs {
            let prefix = ThumbnailJobs.prefix(productID: product.id, imageKey: key)
            for job in try await jobs.deadJobs(limit: 1_000) where job.id.hasPrefix(prefix) { _ = try await jobs.retry(id: job.id) }
        }
        return .redirect(to: "/dashboard", type: .found)
    }

    @Sendable func toggleProduct(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let product = try await ownProduct(context)
        _ = try await Form.read(request, context: context)
        var change = ProductChange()
        change.available = !product.available
        do {
            _ = try await storage.updateProduct(id: product.id, vendorID: vendor.id, change)
        } catch let error as SoukError {
            return try await productsPage(context: context, error: error)
        }
        return .redirect(to: "/dashboard", type: .found)
    }

    @Sendable func deleteProduct(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let product = try await ownProduct(context)
        _ = try await Form.read(request, context: context)
        do {
            _ = try await storage.deleteProduct(id: product.id, vendorID: vendor.id)
        } catch let error as SoukError {
            return try await productsPage(context: context, error: error)
        }
        return .redirect(to: "/dashboard", type: .found)
    }

    private func ownProduct(_ context: SoukRequestContext) async throws -> Product {
        let vendor = try context.requireVendor()
        guard let product = try await storage.product(id: try APIController.id(context, of: "Product"), vendorID: vendor.id) else { throw SoukError.notFound("Product") }
        return product
    }

    struct ProductFormInput {
        var name: String?
        var description: String?
        var price: Int64?
        var currency: String?
        var stock: Int?
        var available: Bool
        var priceFeedItem: String?
    }

    static func productInput(_ form: Form) throws(SoukError) -> ProductFormInput {
        var errors: [FieldError] = []
        let currencyCode = (form["currency"] ?? "").trimmingCharacters(in: .whitespaces).uppercased()
        let price = form.price("price", currency: Currency(code: currencyCode), errors: &errors)
        let stock = form.integer("stock", errors: &errors)
        if let stock, stock > Int64(ProductLimits.stock.upperBound) || stock < 0 {
            errors.append(FieldError(field: "stock", message: "must be between 0 and \(ProductLimits.stock.upperBound)"))
        }
        guard errors.isEmpty else { throw .validationFailed(errors) }
        return ProductFormInput(
            name: form["name"], description: form["description"], price: price, currency: currencyCode.isEmpty ? nil : currencyCode,
            stock: stock.map(Int.init), available: form["available"] != nil, priceFeedItem: form["price_feed_item"]
        )
    }

    private static func formValues(_ form: Form, action: String) -> [String: Any] {
        ["action": action, "name": form["name"] ?? "", "description": form["description"] ?? "", "price": form["price"] ?? "",
         "currency": form["currency"] ?? "", "stock": form["stock"] ?? "", "available": form["available"] != nil,
         "price_feed_item": form["price_feed_item"] ?? ""]
    }

    static func productValues(_ product: Product, sparkline: String? = nil) -> [String: Any] {
        var values: [String: Any] = [
            "id": product.id, "name": product.name, "description": product.description, "price": product.price.formatted,
            "stock": product.stock, "available": product.available, "in_stock": product.stock > 0,
        ]
        if let item = product.priceFeedItem { values["price_feed_item"] = item }
        if let key = product.imageKey, product.thumbnailSizes.contains(200) {
            values["thumbnail"] = MediaNames.url(MediaNames.thumbnail(key, size: 200))
        }
        if product.status == .processing { values["processing"] = true }
        if let sparkline { values["sparkline"] = sparkline }
        return values
    }

    /// The reasons this vendor's thumbnail jobs died, by product: only its own products are looked at.
    func imageErrors(for products: [Product]) async -> [Int64: String] {
        guard let jobs = services.jobs, products.contains(where: { $0.status == .processing }),
              let dead = try? await jobs.deadJobs(limit: 1_000)
        else { return [:] }
        var errors: [Int64: String] = [:]
        for product in products where product.status == .processing {
            guard let key = product.imageKey else { continue }
            let prefix = ThumbnailJobs.prefix(productID: product.id, imageKey: key)
            if let job = dead.first(where: { $0.id.hasPrefix(prefix) }) { errors[product.id] = job.reason }
        }
        return errors
    }

    /// How much price history a product's sparkline shows.
    static let sparklineWindow: Int64 = 6 * 3_600_000

    /// The sparklines of the products that follow a feed item, by product id. A price list that
    /// cannot be read leaves the product without one rather than failing the page.
    func sparklines(for products: [Product]) async -> [Int64: String] {
        guard let prices = services.prices else { return [:] }
        var result: [Int64: String] = [:]
        let now = FeedSchedule.now()
        for product in products {
            guard let item = product.priceFeedItem,
                  let ticks = try? await prices.ticks(item: item, from: now - Self.sparklineWindow, to: now, limit: 360),
                  let svg = Sparkline.svg(ticks.map(\.priceMinor), label: "\(item) over the last hours")
            else { continue }
            result[product.id] = svg
        }
        return result
    }

    /// "12.50" for a form field (no currency code).
    static func plainAmount(_ money: Money) -> String {
        String(money.formatted.split(separator: " ").first ?? "")
    }

    // MARK: Search

    /// `/search?q=&vendor=`: the results page of the search box (not cached: every search is fresh).
    @Sendable func searchPage(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let parameters = request.uri.queryParameters
        var values: [String: Any] = ["q": parameters.get("q") ?? ""]
        if let vendor = parameters.get("vendor"), !vendor.isEmpty { values["username"] = vendor }
        guard parameters.get("q") != nil, let search = services.search else { return pages.page("search", title: "Search", values, context: context) }
        do {
            let query = try SearchController.query(parameters)
            let hits = try await search.search(query)
            values["searched"] = true
            values["results"] = hits.prefix(query.limit).map { hit -> [String: Any] in
                var row = Self.productValues(hit.product)
                row["vendor"] = hit.vendorUsername
                return row
            }
            values["has_results"] = !hits.isEmpty
            if hits.count > query.limit {
                var components = URLComponents()
                components.path = "/search"
                components.queryItems = [URLQueryItem(name: "q", value: query.text), URLQueryItem(name: "offset", value: String(query.offset + query.limit))]
                    + (query.vendor.map { [URLQueryItem(name: "vendor", value: $0)] } ?? [])
                values["next"] = components.string
            }
            return pages.page("search", title: "Search: \(query.text)", values, context: context)
        } catch let error as SoukError {
            values["formError"] = error.message
            return pages.page("search", title: "Search", values, context: context, status: ErrorMiddleware.status(of: error))
        }
    }

    // MARK: Orders (vendor)

    /// Every order of the store in one list (store link, checkout, flash sale), filtered as the API
    /// filters it; a bad filter is shown on the page, not thrown.
    @Sendable func orders(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let parameters = request.uri.queryParameters
        var values: [String: Any] = [
            "q": parameters["q"].map(String.init) ?? "",
            "sources": [("", "All sources"), ("store", "Store link"), ("checkout", "Checkout"), ("flash_sale", "Flash sale")].map { value, label in
                ["value": value, "label": label, "selected": parameters["source"].map(String.init) == value] as [String: Any]
            },
            "statuses": ([""] + OrderFilter.statuses.sorted()).map { value in
                ["value": value, "label": value.isEmpty ? "Any status" : value.replacingOccurrences(of: "_", with: " "), "selected": parameters["status"].map(String.init) == value] as [String: Any]
            },
        ]
        let query: (filter: OrderFilter, after: OrderListPosition?, limit: Int)
        do {
            query = try OrderListAPI.query(request, owner: .vendor(vendor.id))
        } catch {
            values["formError"] = error.message
            values["orders"] = [[String: Any]]()
            return pages.page("orders", title: "Orders", values, context: context, status: .unprocessableContent)
        }
        let (orders, next) = try await OrderListAPI.page(storage, query.filter, after: query.after, limit: 20)
        var filters: [String] = []
        for name: Substring in ["source", "status", "q"] {
            if let value = parameters[name], !value.isEmpty {
                filters.append("\(name)=\(String(value).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")")
            }
        }
        let formatter = ISO8601DateFormatter()
        values["filters"] = filters.joined(separator: "&")
        values["filtered"] = !filters.isEmpty
        values["has_orders"] = !orders.isEmpty
        values["older"] = next.map { (["cursor=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"] + filters).joined(separator: "&") } ?? NSNull()
        values["orders"] = orders.map { order -> [String: Any] in
            let store = order.source == .store ? OrderStatus(rawValue: order.status) : nil
            return [
                "id": order.id, "number": order.number as Any, "source": Self.sourceLabels[order.source] ?? order.source.rawValue,
                "checkout": order.source == .checkout,
                "customer_name": order.customerName ?? "", "customer_contact": order.customerContact ?? "", "customer_address": order.customerAddress ?? "", "has_address": order.customerAddress != nil,
                "account": order.customerID != nil,
                "lines": order.lines.map { ["quantity": $0.quantity, "name": $0.name] },
                "total": order.total.formatted, "status": order.status.replacingOccurrences(of: "_", with: " "), "payment": order.paymentStatus.rawValue.replacingOccurrences(of: "_", with: " "),
                "placed_at": Self.minuteFormat.format(order.createdAt), "placed_iso": formatter.string(from: order.createdAt),
                "refundable": order.source == .flashSale && order.status == FlashSaleOrderStatus.paid.rawValue,
                "next": (store?.nextStates ?? []).map { next -> [String: Any] in
                    ["status": next.rawValue, "label": next == .cancelled ? "Cancel" : "Mark \(next.rawValue)", "style": next == .cancelled ? "danger" : ""]
                },
            ]
        }
        return pages.page("orders", title: "Orders", values, context: context)
    }

    /// "2026-12-05 14:03 UTC": a time people read at a glance.
    static let minuteFormat = Date.VerbatimFormatStyle(
        format: "\(year: .defaultDigits)-\(month: .twoDigits)-\(day: .twoDigits) \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits) UTC",
        timeZone: TimeZone(identifier: "UTC")!, calendar: Calendar(identifier: .gregorian))

    static let sourceLabels: [OrderSource: String] = [.store: "store link", .checkout: "checkout", .flashSale: "flash sale"]

    /// The orders list as a spreadsheet, for the dashboard's session (a link cannot send a bearer token).
    @Sendable func ordersCSV(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let (filter, _, _) = try OrderListAPI.query(request, owner: .vendor(vendor.id))
        return OrderListAPI.csvResponse(try await OrderListAPI.csv(storage, filter))
    }

    @Sendable func updateOrderStatus(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let id = try APIController.id(context, of: "Order")
        let form = try await Form.read(request, context: context)
        guard let status = OrderStatus(rawValue: form["status"] ?? "") else {
            throw SoukError.validationFailed([FieldError(field: "status", message: "is not an order status")])
        }
        guard try await storage.updateOrderStatus(id: id, vendorID: vendor.id, to: status) != nil else { throw SoukError.notFound("Order") }
        return .redirect(to: "/dashboard/orders", type: .found)
    }

    /// "Cancel and refund" on a paid flash-sale order: refunded once, the unit back in stock.
    @Sendable func cancelPaidFlashSaleOrder(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        _ = try await Form.read(request, context: context)
        guard let id = context.parameters.get("id"), AdmittedOrder.isWellFormedID(id) else { throw SoukError.notFound("Order") }
        _ = try await services.checkouts.store.cancelPaidFlashSaleOrder(orderID: id, vendorID: vendor.id, now: Date())
        if let cache = services.storefront.cache { try? await cache.invalidate(vendorID: vendor.id) }
        return .redirect(to: "/dashboard/orders", type: .found)
    }

    static func orderValues(_ order: Order) -> [String: Any] {
        let formatter = ISO8601DateFormatter()
        return [
            "id": order.id, "reference": order.reference, "status": order.status.rawValue, "total": order.total.formatted,
            "customer_name": order.customer.name, "customer_phone": order.customer.phone, "customer_address": order.customer.address,
            "placed_at": formatter.string(from: order.createdAt),
            "lines": order.lines.map { line -> [String: Any] in
                ["name": line.name, "quantity": line.quantity, "total": Money(minor: line.totalMinor, currency: order.total.currency).formatted]
            },
            "next": order.status.nextStates.map { next -> [String: Any] in
                ["status": next.rawValue, "label": next == .cancelled ? "Cancel" : "Mark \(next.rawValue)", "style": next == .cancelled ? "danger" : ""]
            },
        ]
    }

    // MARK: Store (public)

    /// The store page. Visitors who are not logged in get it from the page cache; a logged-in
    /// vendor's header differs, so theirs is rendered fresh.
    @Sendable func store(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try await services.publicVendor(context)
        services.views.count(vendorID: vendor.id)
        guard context.vendor == nil else { return try await storePage(vendor, context: context) }
        let page = try await services.storefront.page(for: PageKey(vendorID: vendor.id, variant: "html"), logger: context.logger) {
            var anonymous = context
            anonymous.csrfToken = StorefrontCache.csrfMarker
            return Array(try await storeHTML(vendor, context: anonymous).html.utf8)
        }
        return services.storefront.response(page, request: request, contentType: "text/html; charset=utf-8", csrfToken: context.csrfToken)
    }

    private func storePage(_ vendor: Vendor, form: Form? = nil, error: SoukError? = nil, context: SoukRequestContext) async throws -> Response {
        let (html, status) = try await storeHTML(vendor, form: form, error: error, context: context)
        var response = Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: html)))
        response.setRetryAfter(error?.retryAfterSeconds)
        return response
    }

    private func storeHTML(_ vendor: Vendor, form: Form? = nil, error: SoukError? = nil, context: SoukRequestContext) async throws -> (html: String, status: HTTPResponse.Status) {
        let products = try await storage.products(vendorID: vendor.id, availableOnly: true)
        let sparklines = await sparklines(for: products)
        let formatter = ISO8601DateFormatter()
        let sales = try await services.flashSales.upcoming(vendorID: vendor.id).map { sale -> [String: Any] in
            ["id": sale.id, "product_name": sale.productName, "price": sale.price.formatted, "list_price": Self.listPrice(of: sale), "quantity": sale.quantity,
             "limit": sale.perBuyerLimit, "verified_only": sale.verifiedOnly, "starts_at": formatter.string(from: sale.startsAt), "ends_at": formatter.string(from: sale.endsAt),
             "pay_within": Self.duration(seconds: sale.holdSeconds)]
        }
        var values: [String: Any] = [
            "sales": sales,
            "username": vendor.username, "store_name": vendor.storeName, "has_products": !products.isEmpty,
            "products": products.map { product -> [String: Any] in
                var values = Self.productValues(product, sparkline: sparklines[product.id])
                values["quantity"] = form?["qty_\(product.id)"] ?? "0"
                return values
            },
        ]
        var status = HTTPResponse.Status.ok
        if let form {
            values["customer"] = ["name": form["name"] ?? "", "phone": form["phone"] ?? "", "address": form["address"] ?? ""]
        }
        if let error {
            status = ErrorMiddleware.status(of: error)
            if case .validationFailed(let fields) = error {
                values["errors"] = PageRenderer.errorMap(fields)
                values["formError"] = "Please correct the fields marked below."
            } else {
                values["formError"] = error.message
            }
        }
        return (pages.render("store", title: vendor.storeName, values, context: context), status)
    }

    @Sendable func placeOrder(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try await services.publicVendor(context)
        let form = try await Form.read(request, context: context)
        do {
            var items: [(productID: Int64, quantity: Int)] = []
            var errors: [FieldError] = []
            for (name, value) in form.fields where name.hasPrefix("qty_") {
                let raw = value.trimmingCharacters(in: .whitespaces)
                guard !raw.isEmpty, raw != "0" else { continue }
                guard let id = Int64(name.dropFirst(4)), let quantity = Int(raw), quantity > 0 else {
                    errors.append(FieldError(field: "items", message: "quantities must be whole numbers"))
                    continue
                }
                items.append((id, quantity))
            }
            guard errors.isEmpty else { throw SoukError.validationFailed(errors) }
            if items.isEmpty { throw SoukError.validationFailed([FieldError(field: "items", message: "choose a quantity for at least one product")]) }
            var orderRequest = try OrderRequest(name: form["name"] ?? "", phone: form["phone"] ?? "", address: form["address"] ?? "", items: items)
            orderRequest.customerID = context.customer?.customerID
            // The page's script names each load's order request: a double submit is one order.
            try orderRequest.setIdempotencyKey(form["idempotency_key"].flatMap { $0.isEmpty ? nil : $0 })
            try await services.rateGuard.check([(.orderPerAddress, services.rateGuard.clientAddress(request, context))])
            let order = try await storage.placeOrder(vendorID: vendor.id, orderRequest)
            context.logger.info("order placed", metadata: ["souk.order_id": "\(order.id)", "souk.vendor_id": "\(vendor.id)"])
            return .redirect(to: "/s/\(vendor.username)/orders/\(order.reference)", type: .found)
        } catch let error as SoukError {
            return try await storePage(vendor, form: form, error: error, context: context)
        }
    }

    @Sendable func orderPlaced(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try await services.publicVendor(context)
        guard let reference = context.parameters.get("reference"), reference.count <= 16,
              let order = try await storage.order(reference: reference.uppercased(), vendorID: vendor.id)
        else { throw SoukError.notFound("Order") }
        var values = Self.orderValues(order)
        values["store_name"] = vendor.storeName
        values["username"] = vendor.username
        return pages.page("order_placed", title: "Order \(order.reference)", values, context: context)
    }

    // MARK: Checkouts

    /// The buyer's order page: the verdict appears by itself when it is decided. Only the customer
    /// who placed it (or the store's vendor) sees it.
    @Sendable func checkoutPage(_ request: Request, context: SoukRequestContext) async throws -> Response {
        guard context.customer != nil || context.vendor != nil else {
            return .redirect(to: "/account/login?next=\(CustomerPagesController.next(request.uri.path))", type: .found)
        }
        guard let id = context.parameters.get("id"), id.hasPrefix("co_"), id.count <= 40,
              let order = try await services.checkouts.order(id: id), order.isVisible(to: context), let currency = Currency(code: order.currency)
        else { throw SoukError.notFound("Order") }
        let money = { (minor: Int64) in Money(minor: minor, currency: currency).formatted }
        return pages.page("checkout", title: "Your order", [
            "id": order.id, "status": order.status.rawValue, "message": order.status.message, "total": money(order.totalMinor),
            "discount": order.discountMinor > 0 ? money(order.discountMinor) : NSNull(), "coupon": order.couponCode ?? "",
            "lines": order.lines.map { ["name": $0.name, "quantity": $0.quantity, "total": money($0.totalMinor)] as [String: Any] },
        ], context: context)
    }

    // MARK: Flash sales

    @Sendable func buyFlashSale(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try await services.publicVendor(context)
        _ = try await Form.read(request, context: context)  // the CSRF check
        guard let saleID = context.parameters.get("id", as: Int64.self), let sale = try await services.flashSales.sale(id: saleID), sale.vendorID == vendor.id else {
            throw SoukError.notFound("Flash sale")
        }
        guard let buyer = context.customer else {
            return services.pages.page("account_login", title: "Sign in", [
                "formError": "Sign in (or create an account) to buy in the flash sale.", "next": "/s/\(vendor.username)",
            ], context: context, status: .unauthorized)
        }
        do {
            let limits = services.rateGuard.purchaseChecks(buyer: buyer.customerID, address: services.rateGuard.clientAddress(request, context))
            let result = try await services.flashSales.purchase(saleID: sale.id, buyerID: buyer.customerID, verified: buyer.verified, requestKey: nil, limits: limits)
            return pages.page("flash_sale_admitted", title: "You got it", [
                "order_id": result.order.orderID, "repeated": result.repeated, "product_name": result.sale.productName,
                "price": result.sale.price.formatted, "pay_before": Self.minuteFormat.format(result.order.holdExpiresAt(in: result.sale)),
                "pay_before_iso": JSONResponse.timestamp(result.order.holdExpiresAt(in: result.sale)),
                "store_name": vendor.storeName, "username": vendor.username,
            ], context: context, status: .accepted)
        } catch let error as SoukError where error.code != "not_found" {
            return try await storePage(vendor, error: error, context: context)
        }
    }

    @Sendable func flashSalesPage(_ request: Request, context: SoukRequestContext) async throws -> Response {
        try await flashSalesForm(context: context)
    }

    private func flashSalesForm(_ form: Form? = nil, error: SoukError? = nil, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let formatter = ISO8601DateFormatter()
        let sales = try await services.flashSales.store.flashSales(vendorID: vendor.id)
        let products = try await storage.products(vendorID: vendor.id, availableOnly: false).filter { $0.stock > 0 }
        var values: [String: Any] = [
            "has_sales": !sales.isEmpty,
            "sales": sales.map { ["id": $0.id, "product_name": $0.productName, "price": $0.price.formatted, "list_price": Self.listPrice(of: $0),
                                  "quantity": $0.quantity, "sold": $0.sold,
                                  "starts_at": formatter.string(from: $0.startsAt), "ends_at": formatter.string(from: $0.endsAt)] as [String: Any] },
            "products": products.map { ["id": $0.id, "name": $0.name, "stock": $0.stock, "price": $0.price.formatted, "selected": form?["product_id"] == String($0.id)] as [String: Any] },
            "quantity": form?["quantity"] ?? "10", "sale_price": form?["sale_price"] ?? "", "starts_in": form?["starts_in"] ?? "0", "duration": form?["duration"] ?? "60",
            "limit": form?["per_buyer_limit"] ?? "1", "verified_only": form?["verified_only"] == "yes",
            "hold_minutes": form?["hold_minutes"] ?? String(FlashSaleDraft.defaultHoldSeconds / 60),
        ]
        var status = HTTPResponse.Status.ok
        if let error {
            status = ErrorMiddleware.status(of: error)
            if case .validationFailed(let fields) = error { values["errors"] = PageRenderer.errorMap(fields) } else { values["formError"] = error.message }
        }
        return pages.page("flash_sales", title: "Flash sales", values, context: context, status: status)
    }

    @Sendable func createFlashSale(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let form = try await Form.read(request, context: context)
        do {
            var errors: [FieldError] = []
            let productID = form.integer("product_id", errors: &errors)
            let quantity = form.integer("quantity", errors: &errors)
            let startsIn = form.integer("starts_in", errors: &errors) ?? 0
            let duration = form.integer("duration", label: "ends_at", errors: &errors) ?? 0
            let limit = form.integer("per_buyer_limit", errors: &errors)
            let holdMinutes = form.integer("hold_minutes", label: "hold_seconds", errors: &errors)
            // The sale price is written in the chosen product's currency.
            var product: Product?
            if let productID { product = try await storage.product(id: productID, vendorID: vendor.id) }
            let salePrice = form.price("sale_price", currency: product?.price.currency, errors: &errors)
            guard errors.isEmpty, (0...525_600).contains(startsIn), (1...44_640).contains(duration) else {
                throw SoukError.validationFailed(errors.isEmpty ? [FieldError(field: "ends_at", message: "must start within a year and last 1 minute to 31 days")] : errors)
            }
            let startsAt = Date().addingTimeInterval(TimeInterval(startsIn * 60))
            let draft = try FlashSaleDraft(
                productID: productID, quantity: quantity.map { Int(clamping: $0) }, startsAt: startsAt,
                endsAt: startsAt.addingTimeInterval(TimeInterval(duration * 60)), perBuyerLimit: limit.map { Int(clamping: $0) },
                verifiedOnly: form["verified_only"] == "yes", salePriceMinor: salePrice,
                holdSeconds: holdMinutes.map { Int(clamping: $0.multipliedReportingOverflow(by: 60).overflow ? Int64.max : $0 * 60) })
            let sale = try await services.flashSales.create(vendorID: vendor.id, draft)
            return .redirect(to: "/dashboard/flash-sales/\(sale.id)", type: .found)
        } catch let error as SoukError {
            return try await flashSalesForm(form, error: error, context: context)
        }
    }

    /// "10 minutes", "45 seconds", "1 hour": how long a winner has to pay.
    static func duration(seconds: Int) -> String {
        func unit(_ count: Int, _ name: String) -> String { "\(count) \(name)\(count == 1 ? "" : "s")" }
        if seconds % 3_600 == 0 { return unit(seconds / 3_600, "hour") }
        if seconds % 60 == 0 { return unit(seconds / 60, "minute") }
        return unit(seconds, "second")
    }

    /// The list price to show struck through beside a sale's price, when the sale sells below it.
    static func listPrice(of sale: FlashSale) -> Any {
        sale.listPrice.minor > sale.price.minor ? sale.listPrice.formatted : NSNull()
    }

    @Sendable func flashSalePage(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        // Read fresh (not the remembered terms): the vendor may have just cancelled it.
        guard let id = context.parameters.get("id", as: Int64.self), let sale = try await services.flashSales.store.flashSale(id: id), sale.vendorID == vendor.id else {
            throw SoukError.notFound("Flash sale")
        }
        let stats = try await services.flashSales.stats(sale)
        let formatter = ISO8601DateFormatter()
        let status = sale.status(now: Date(), remaining: stats.remaining)
        return pages.page("flash_sale", title: "Flash sale \(sale.productName)", [
            "id": sale.id, "product_name": sale.productName, "quantity": sale.quantity, "admitted": stats.admitted,
            "persisted": stats.persisted, "pending": stats.pending, "remaining": stats.remaining,
            "held": stats.held, "paid": stats.paid, "expired": stats.expired, "pay_within": Self.duration(seconds: sale.holdSeconds),
            "status": status.rawValue, "cancellable": status != .ended,
            "starts_at": formatter.string(from: sale.startsAt), "ends_at": formatter.string(from: sale.endsAt),
        ], context: context)
    }

    @Sendable func cancelFlashSale(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        _ = try await Form.read(request, context: context)
        guard let id = context.parameters.get("id", as: Int64.self) else { throw SoukError.notFound("Flash sale") }
        _ = try await services.flashSales.cancel(saleID: id, vendorID: vendor.id)
        return .redirect(to: "/dashboard/flash-sales/\(id)", type: .found)
    }

    private func formError(_ template: String, title: String, _ error: SoukError, values: [String: Any], context: SoukRequestContext) -> Response {
        var values = values
        if case .validationFailed(let fields) = error {
            values["errors"] = PageRenderer.errorMap(fields)
        } else {
            values["formError"] = error.message
        }
        var response = pages.page(template, title: title, values, context: context, status: ErrorMiddleware.status(of: error))
        response.setRetryAfter(error.retryAfterSeconds)
        return response
    }
}
