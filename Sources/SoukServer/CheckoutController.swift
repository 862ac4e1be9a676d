import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SoukCore

/// Store credit, coupons and checkouts over the JSON API: a checkout is answered at once; its result
/// is pushed over SSE, answered to long polls, and shown on a self-updating page.
struct CheckoutController: Sendable {
    let services: SoukServices
    var checkouts: Checkouts { services.checkouts }

    func addRoutes(to group: RouterGroup<SoukRequestContext>) {
        group.post("checkouts", use: checkout)
        group.post("buy", use: buy)
        group.get("checkouts/:id", use: show)
        group.get("orders/:id/events", use: events)
        group.post("orders/:id/payment", use: pay)
        let vendor = group.group().add(middleware: RequireVendorMiddleware())
        vendor.post("wallets/:buyer/credit", use: credit)
        vendor.get("wallets/:buyer", use: wallet)
        vendor.post("coupons", use: createCoupon)
        vendor.get("coupons", use: listCoupons)
        vendor.get("checkouts", use: list)
        vendor.post("orders/:id/cancel", use: cancelPaid)
    }

    // MARK: Checkouts

    struct CheckoutInput: Decodable {
        struct Item: Decodable {
            let productId: Int64
            let quantity: Int
        }
        let buyerId: String?
        let items: [Item]
        let coupon: String?
    }

    struct OrderBody: Encodable {
        struct Line: Encodable {
            let productId: Int64?
            let name: String
            let unitPriceMinor: Int64
            let quantity: Int
        }
        let orderId: String
        let status: String
        let message: String
        let buyerId: String
        let items: [Line]
        let subtotalMinor: Int64
        let discountMinor: Int64
        let totalMinor: Int64
        let currency: String
        let coupon: String?
        let deadline: Date
        let createdAt: Date
        let updatedAt: Date

        init(_ order: CheckoutOrder) {
            orderId = order.id
            status = order.status.rawValue
            message = order.status.message
            buyerId = order.buyerID
            items = order.lines.map { Line(productId: $0.productID, name: $0.name, unitPriceMinor: $0.unitPriceMinor, quantity: $0.quantity) }
            subtotalMinor = order.subtotalMinor
            discountMinor = order.discountMinor
            totalMinor = order.totalMinor
            currency = order.currency
            coupon = order.couponCode
            deadline = order.deadline
            createdAt = order.createdAt
            updatedAt = order.updatedAt
        }
    }

    struct AcceptedBody: Encodable {
        let orderId: String
        let status: String
        let message: String
    }

    /// The buyer is the signed-in customer; `buyer_id`, when given, must name that customer.
    @Sendable func checkout(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let customer = try context.requireCustomer()
        let input = try await JSONResponse.decode(CheckoutInput.self, from: request, context: context)
        if let named = input.buyerId, named != customer.customerID {
            throw SoukError.forbidden("You can buy only as yourself: buyer_id names another customer.")
        }
        let checkoutRequest = try CheckoutRequest(
            buyerID: customer.customerID, items: input.items.map { ($0.productId, $0.quantity) }, couponCode: input.coupon,
            idempotencyKey: request.headers[.idempotencyKey])
        return try await accept(checkoutRequest, request: request, context: context)
    }

    /// The source text's request, exactly: `{"user", "stockid", "quantity"}`.
    struct BuyInput: Decodable {
        let user: String
        let stockid: Int64
        let quantity: Int
    }

    /// `user` names the signed-in customer, by id or email; anybody else is 403.
    @Sendable func buy(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let customer = try context.requireCustomer()
        let input = try await JSONResponse.decode(BuyInput.self, from: request, context: context)
        if input.user != customer.customerID {
            let named = input.user.contains("@") ? try await services.customerAccounts.customer(named: customer.customerID) : nil
            guard let named, named.email == input.user.trimmingCharacters(in: .whitespaces).lowercased() else {
                throw SoukError.forbidden("You can buy only as yourself: user names another customer.")
            }
        }
        let checkoutRequest = try CheckoutRequest(
            buyerID: customer.customerID, items: [(input.stockid, input.quantity)], couponCode: nil, idempotencyKey: request.headers[.idempotencyKey])
        return try await accept(checkoutRequest, request: request, context: context)
    }

    func accept(_ checkoutRequest: CheckoutRequest, request: Request, context: SoukRequestContext) async throws -> Response {
        try await services.rateGuard.checkCheckout(buyer: checkoutRequest.buyerID, request: request, context: context)
        let order = try await checkouts.checkout(checkoutRequest)
        if let cache = services.storefront.cache { try? await cache.invalidate(vendorID: order.vendorID) }
        context.logger.info("checkout accepted", metadata: ["souk.order_id": "\(order.id)"])
        return try JSONResponse.make(
            AcceptedBody(orderId: order.id, status: order.status.rawValue, message: order.status.message), status: .accepted,
            headers: [.location: "/api/v1/orders/\(order.id)"])
    }

    // MARK: Paying for flash-sale orders

    struct PaymentInput: Decodable {
        struct Shipping: Decodable {
            let name: String?
            let phone: String?
            let address: String?
        }
        struct Card: Decodable {
            let number: String?
            let expMonth: Int?
            let expYear: Int?
            let cvc: String?
        }
        let method: String?
        let shipping: Shipping?
        let card: Card?
    }

    struct PaymentBody: Encodable {
        let orderId: String
        let status: String
        let checkoutId: String
        let totalMinor: Int64
        let currency: String
        let message: String
    }

    /// The holding customer pays for a flash-sale order: 202 once the payment's saga has started
    /// (its answer arrives on `/api/v1/orders/{checkout_id}`, as a checkout's); anyone else's order
    /// is 404.
    @Sendable func pay(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let customer = try context.requireCustomer()
        guard let orderID = context.parameters.get("id"), AdmittedOrder.isWellFormedID(orderID) else {
            throw SoukError.notFound("Order")
        }
        let input = try await JSONResponse.decode(PaymentInput.self, from: request, context: context)
        let payment = try FlashSalePaymentRequest(
            orderID: orderID, buyerID: customer.customerID, method: input.method,
            name: input.shipping?.name ?? "", phone: input.shipping?.phone ?? "", address: input.shipping?.address ?? "",
            card: input.card.map { .init(number: $0.number, expiryMonth: $0.expMonth, expiryYear: $0.expYear, securityCode: $0.cvc) })
        try await services.rateGuard.checkCheckout(buyer: customer.customerID, request: request, context: context)
        let checkout = try await checkouts.pay(payment)
        context.logger.info("flash-sale payment started", metadata: ["souk.order_id": "\(orderID)", "souk.checkout_id": "\(checkout.id)"])
        return try JSONResponse.make(
            PaymentBody(orderId: orderID, status: FlashSaleOrderStatus.paying.rawValue, checkoutId: checkout.id, totalMinor: checkout.totalMinor,
                        currency: checkout.currency, message: "The payment is being verified; its answer comes on the checkout."),
            status: .accepted, headers: [.location: "/api/v1/orders/\(checkout.id)"])
    }

    struct RefundBody: Encodable {
        struct Refund: Encodable {
            let amountMinor: Int64
            let currency: String
            let method: String
        }
        let orderId: String
        let status: String
        let paymentStatus: String
        let refund: Refund
        let message: String
    }

    /// The vendor cancels a paid flash-sale order: refunded once (to the store credit at once, or
    /// on the card through the provider) and its unit back in the product's stock.
    @Sendable func cancelPaid(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        guard let orderID = context.parameters.get("id"), AdmittedOrder.isWellFormedID(orderID) else { throw SoukError.notFound("Order") }
        let refund = try await checkouts.store.cancelPaidFlashSaleOrder(orderID: orderID, vendorID: vendor.id, now: Date())
        // The unit is back on sale in the store.
        if let cache = services.storefront.cache { try? await cache.invalidate(vendorID: vendor.id) }
        context.logger.info("flash-sale order refunded", metadata: ["souk.order_id": "\(orderID)", "method": "\(refund.method.rawValue)"])
        let message = refund.method == .card
            ? "Cancelled: the card's charge is refunded through the payment provider."
            : "Cancelled: the amount is back in the customer's store credit."
        return try JSONResponse.make(RefundBody(
            orderId: orderID, status: FlashSaleOrderStatus.cancelled.rawValue, paymentStatus: PaymentStatus.refunded.rawValue,
            refund: .init(amountMinor: refund.amountMinor, currency: refund.currency, method: refund.method.rawValue), message: message))
    }

    struct CheckoutList: Encodable {
        let checkouts: [OrderBody]
        let nextCursor: String?
    }

    /// The vendor's checkouts (orders paid with store credit), newest first.
    @Sendable func list(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let paging = try Paging(request, defaultLimit: 20, maximumLimit: 100) { CheckoutPosition(cursor: $0) != nil }
        let orders = try await checkouts.store.checkouts(vendorID: vendor.id, after: paging.text.flatMap(CheckoutPosition.init(cursor:)), limit: paging.limit + 1)
        let page = orders.prefix(paging.limit)
        let next = orders.count > paging.limit ? page.last.map { CheckoutPosition($0).cursor } : nil
        return try JSONResponse.make(CheckoutList(checkouts: page.map(OrderBody.init), nextCursor: next))
    }

    /// The order as it is, or (with `?wait=N`, up to 60 s) as soon as it is final.
    @Sendable func show(_ request: Request, context: SoukRequestContext) async throws -> Response {
        guard context.customer != nil || context.vendor != nil else { throw SoukError.unauthorized }
        guard let id = context.parameters.get("id"), id.count <= 40 else { throw SoukError.notFound("Order") }
        var wait = Duration.zero
        if let raw = request.uri.queryParameters["wait"] {
            guard let seconds = Int(raw), (0...60).contains(seconds) else {
                throw SoukError.validationFailed([FieldError(field: "wait", message: "must be 0 to 60 seconds")])
            }
            wait = .seconds(seconds)
        }
        guard let known = try await checkouts.order(id: id), known.isVisible(to: context),
              let order = try await checkouts.order(id: id, waitingUpTo: wait)
        else { throw SoukError.notFound("Order") }
        return try JSONResponse.make(OrderBody(order))
    }

    /// Server-sent events: the order now, then again the moment it is final; a heartbeat every 15 s.
    @Sendable func events(_ request: Request, context: SoukRequestContext) async throws -> Response {
        guard context.customer != nil || context.vendor != nil else { throw SoukError.unauthorized }
        guard let id = context.parameters.get("id"), id.hasPrefix("co_"), let first = try await checkouts.order(id: id), first.isVisible(to: context) else {
            throw SoukError.notFound("Order")
        }
        let checkouts = checkouts
        let body = ResponseBody { writer in
            func send(_ order: CheckoutOrder) async throws {
                var buffer = ByteBuffer(string: "event: order\ndata: ")
                buffer.writeBytes(try JSONResponse.encoder.encode(OrderBody(order)))
                buffer.writeString("\n\n")
                try await writer.write(buffer)
            }
            try await send(first)
            var order = first
            let started = ContinuousClock.now
            while order.status == .inProgress, ContinuousClock.now - started < .seconds(600) {
                let known = order
                guard let next = try await ServerSentEvents.untilShutdown({ try await checkouts.order(after: known, waitingUpTo: .seconds(15)) }) else { break }
                if next.status == .inProgress {
                    try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                } else {
                    try await send(next)
                }
                order = next
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: ServerSentEvents.headers, body: body)
    }

    // MARK: Wallets

    struct CreditInput: Decodable { let amountMinor: Int64 }

    struct WalletBody: Encodable {
        let buyerId: String
        let balanceMinor: Int64
        let heldMinor: Int64
        let capturedMinor: Int64

        init(_ wallet: Wallet) {
            buyerId = wallet.buyerID
            balanceMinor = wallet.balanceMinor
            heldMinor = wallet.heldMinor
            capturedMinor = wallet.capturedMinor
        }
    }

    @Sendable func credit(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let buyer = try await customerID(context)
        let input = try await JSONResponse.decode(CreditInput.self, from: request, context: context)
        guard (1...ProductLimits.price.upperBound).contains(input.amountMinor) else {
            throw SoukError.validationFailed([FieldError(field: "amount_minor", message: "must be between 1 and \(ProductLimits.price.upperBound)")])
        }
        return try JSONResponse.make(WalletBody(try await checkouts.store.credit(buyerID: buyer, amountMinor: input.amountMinor, by: vendor.id)))
    }

    @Sendable func wallet(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let buyer = try await customerID(context)
        let wallet = try await checkouts.store.wallet(vendorID: vendor.id, buyerID: buyer) ?? Wallet(buyerID: buyer, balanceMinor: 0, heldMinor: 0, capturedMinor: 0)
        return try JSONResponse.make(WalletBody(wallet))
    }

    /// The customer a wallet path names, by id or email; 404 for nobody.
    private func customerID(_ context: SoukRequestContext) async throws -> String {
        guard let reference = context.parameters.decoded("buyer"), reference.utf8.count <= 254,
              let customer = try await services.customerAccounts.customer(named: reference)
        else { throw SoukError.notFound("Customer") }
        return customer.id
    }

    // MARK: Coupons

    struct CouponInput: Decodable {
        let code: String?
        let kind: String?
        let value: Int64?
        let minOrderMinor: Int64?
        let maxUses: Int?
        let expiresAt: String?
    }

    struct CouponBody: Encodable {
        let id: Int64
        let code: String
        let kind: String
        let value: Int64
        let minOrderMinor: Int64
        let maxUses: Int
        let uses: Int
        let expiresAt: Date?

        init(_ coupon: Coupon) {
            id = coupon.id
            code = coupon.code
            kind = coupon.kind.rawValue
            value = coupon.value
            minOrderMinor = coupon.minimumOrderMinor
            maxUses = coupon.maxUses
            uses = coupon.uses
            expiresAt = coupon.expiresAt
        }
    }

    @Sendable func createCoupon(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let input = try await JSONResponse.decode(CouponInput.self, from: request, context: context)
        let draft = try CouponDraft(
            code: input.code, kind: input.kind, value: input.value, minimumOrderMinor: input.minOrderMinor, maxUses: input.maxUses,
            expiresAt: try FlashSaleController.date(input.expiresAt, field: "expires_at"))
        return try JSONResponse.make(CouponBody(try await checkouts.store.createCoupon(vendorID: vendor.id, draft)), status: .created)
    }

    struct CouponList: Encodable { let coupons: [CouponBody] }

    @Sendable func listCoupons(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        return try JSONResponse.make(CouponList(coupons: try await checkouts.store.coupons(vendorID: vendor.id).map(CouponBody.init)))
    }
}

extension CheckoutOrder {
    /// Whether the request's customer placed this order, or its vendor is asking.
    func isVisible(to context: SoukRequestContext) -> Bool {
        context.customer?.customerID == buyerID || context.vendor?.id == vendorID
    }
}
