import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SoukCore

/// Flash sales over the JSON API: vendors create and watch them (including a live SSE stream of
/// counters); anyone reads a sale and buyers attempt purchases.
struct FlashSaleController: Sendable {
    let services: SoukServices
    var flashSales: FlashSales { services.flashSales }

    func addRoutes(to group: RouterGroup<SoukRequestContext>) {
        group.get("flash-sales/:id", use: show)
        group.post("flash-sales/:id/purchases", use: purchase)
        let vendor = group.group().add(middleware: RequireVendorMiddleware())
        vendor.post("flash-sales", use: create)
        vendor.get("flash-sales", use: list)
        vendor.get("flash-sales/:id/orders", use: orders)
        vendor.get("flash-sales/:id/stats", use: stats)
        vendor.get("flash-sales/:id/events", use: events)
        vendor.post("flash-sales/:id/cancel", use: cancel)
    }

    struct CreateInput: Decodable {
        let productId: Int64?
        let quantity: Int?
        let startsAt: String?
        let endsAt: String?
        let perBuyerLimit: Int?
        let verifiedOnly: Bool?
        let salePriceMinor: Int64?
        let holdSeconds: Int?
    }

    struct SaleBody: Encodable {
        struct ProductBody: Encodable {
            let id: Int64?
            let name: String
            let priceMinor: Int64
            let currency: String
        }
        let id: Int64
        /// The product as it was when the sale was created: its price is the list price.
        let product: ProductBody
        /// What a buyer pays for a unit.
        let salePriceMinor: Int64
        let quantity: Int
        let remaining: Int
        let perBuyerLimit: Int
        let verifiedOnly: Bool
        /// How long a winner has to pay before the unit goes back to the sale.
        let holdSeconds: Int
        let startsAt: Date
        let endsAt: Date
        let status: String

        init(_ sale: FlashSale, remaining: Int, now: Date = Date()) {
            id = sale.id
            product = ProductBody(id: sale.productID, name: sale.productName, priceMinor: sale.listPrice.minor, currency: sale.price.currency.code)
            salePriceMinor = sale.price.minor
            quantity = sale.quantity
            self.remaining = remaining
            perBuyerLimit = sale.perBuyerLimit
            verifiedOnly = sale.verifiedOnly
            holdSeconds = sale.holdSeconds
            startsAt = sale.startsAt
            endsAt = sale.endsAt
            status = sale.status(now: now, remaining: remaining).rawValue
        }
    }

    @Sendable func create(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let input = try await JSONResponse.decode(CreateInput.self, from: request, context: context)
        let draft = try FlashSaleDraft(
            productID: input.productId, quantity: input.quantity, startsAt: try Self.date(input.startsAt, field: "starts_at"),
            endsAt: try Self.date(input.endsAt, field: "ends_at"), perBuyerLimit: input.perBuyerLimit, verifiedOnly: input.verifiedOnly,
            salePriceMinor: input.salePriceMinor, holdSeconds: input.holdSeconds)
        let sale = try await flashSales.create(vendorID: vendor.id, draft)
        context.logger.info("flash sale created", metadata: ["souk.sale_id": "\(sale.id)"])
        return try JSONResponse.make(SaleBody(sale, remaining: sale.quantity), status: .created, headers: [.location: "/api/v1/flash-sales/\(sale.id)"])
    }

    /// Ends the sale now: no more admissions on any instance; admitted orders stay; unsold units
    /// return to the product's stock when the sale closes (within a reconciler round).
    @Sendable func cancel(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let sale = try await ownSale(context)
        let ended = try await flashSales.cancel(saleID: sale.id, vendorID: sale.vendorID)
        context.logger.info("flash sale cancelled", metadata: ["souk.sale_id": "\(sale.id)"])
        let admitted = try await flashSales.gate.admittedCount(ended)
        return try JSONResponse.make(SaleBody(ended, remaining: max(0, ended.quantity - admitted)))
    }

    struct SaleList: Encodable { let flashSales: [SaleBody] }

    @Sendable func list(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        var bodies: [SaleBody] = []
        for sale in try await flashSales.store.flashSales(vendorID: vendor.id) {
            bodies.append(SaleBody(sale, remaining: sale.quantity - (try await flashSales.gate.admittedCount(sale))))
        }
        return try JSONResponse.make(SaleList(flashSales: bodies))
    }

    @Sendable func show(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let sale = try await publicSale(context)
        let admitted = try await flashSales.gate.admittedCount(sale)
        return try JSONResponse.make(SaleBody(sale, remaining: max(0, sale.quantity - admitted)))
    }

    struct PurchaseInput: Decodable {
        let buyerId: String?

        /// The buyer of a purchase: the signed-in customer, for the router and every lane alike. A
        /// body may still name the buyer (`{"buyer_id": …}`, as the flash-sale source system's
        /// clients do), but only as that customer: 401 without one, 403 naming anybody else.
        static func buyer(_ customer: CustomerIdentity?, body: ByteBuffer) throws -> CustomerIdentity {
            guard let customer else { throw SoukError.unauthorized }
            if let named = try buyerID(in: body), named != customer.customerID {
                throw SoukError.forbidden("You can buy only as yourself: buyer_id names another customer.")
            }
            return customer
        }

        /// The buyer named by a purchase's body, if any (an empty body names nobody); a body of
        /// another shape gets the decoder's errors.
        static func buyerID(in body: ByteBuffer) throws -> String? {
            if body.readableBytes == 0 || isEmptyObject(body) { return nil }
            return try plain(body) ?? JSONResponse.decode(PurchaseInput.self, from: body).buyerId
        }

        /// `{}` with any spaces: the body of a signed-in customer's purchase, read without a decoder.
        static func isEmptyObject(_ body: ByteBuffer) -> Bool {
            body.withUnsafeReadableBytes { bytes in
                var braces = 0  // 1 after "{", 2 after "{}"
                for byte in bytes {
                    switch byte {
                    case 0x20, 0x09, 0x0A, 0x0D: continue
                    case UInt8(ascii: "{") where braces == 0: braces = 1
                    case UInt8(ascii: "}") where braces == 1: braces = 2
                    default: return false
                    }
                }
                return braces == 2
            }
        }

        /// The buyer of the body every client sends, `{"buyer_id":"…"}` (spaces allowed, no escapes),
        /// read without a JSONDecoder, which took a fifth of a sold-out answer's time. Anything else is
        /// nil and goes to the decoder.
        static func plain(_ body: ByteBuffer) -> String? {
            body.withUnsafeReadableBytes { bytes -> String? in
                var index = 0
                func skipSpaces() { while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 } }
                func expect(_ text: StaticString) -> Bool {
                    let wanted = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
                    guard bytes.count - index >= wanted.count, bytes[index..<(index + wanted.count)].elementsEqual(wanted) else { return false }
                    index += wanted.count
                    return true
                }
                skipSpaces()
                guard expect("{") else { return nil }
                skipSpaces()
                guard expect("\"buyer_id\"") else { return nil }
                skipSpaces()
                guard expect(":") else { return nil }
                skipSpaces()
                guard expect("\"") else { return nil }
                let start = index
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    guard bytes[index] >= 0x20, bytes[index] != UInt8(ascii: "\\") else { return nil }
                    index += 1
                }
                let end = index
                guard expect("\"") else { return nil }
                skipSpaces()
                guard expect("}") else { return nil }
                skipSpaces()
                guard index == bytes.count else { return nil }
                return String(validating: bytes[start..<end], as: UTF8.self)
            }
        }
    }

    /// 202 with the order id once admitted (the order is persisted shortly after); 409 with the reason otherwise.
    @Sendable func purchase(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let buyer = try PurchaseInput.buyer(context.customer, body: try await JSONResponse.readBody(request, context: context))
        guard let saleID = context.parameters.get("id", as: Int64.self) else { throw SoukError.notFound("Flash sale") }
        let limits = services.rateGuard.purchaseChecks(buyer: buyer.customerID, address: services.rateGuard.clientAddress(request, context))
        if !flashSales.knowsTerms(of: saleID) {
            // Reading a sale this process has not read (or one that does not exist) costs the
            // database a query: such attempts also count under the limits across every sale, so a
            // stranger cannot make reads without limit by naming sale after sale.
            try await services.rateGuard.check(limits)
        }
        let result = try await flashSales.purchase(saleID: saleID, buyerID: buyer.customerID, verified: buyer.verified, requestKey: request.headers[.idempotencyKey], limits: limits)
        return Response(status: .accepted, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: Self.admitted(result.order, in: result.sale)))
    }

    /// The hottest answer of all, written directly: order ids hold only [A-Za-z0-9_.@+-] and
    /// currencies three letters, nothing to escape. The unit is held for the buyer until
    /// `hold_expires_at` (the admission plus the sale's hold), at `price_minor`.
    static func admitted(_ order: HeldOrder, in sale: FlashSale) -> ByteBuffer {
        let expires = JSONResponse.timestamp(order.holdExpiresAt(in: sale))
        return ByteBuffer(string: #"""
            {"order_id":"\#(order.orderID)","sale_id":\#(sale.id),"status":"held","hold_expires_at":"\#(expires)","price_minor":\#(sale.price.minor),"currency":"\#(sale.price.currency.code)"}
            """#)
    }

    struct OrderBody: Encodable {
        let orderId: String
        let buyerId: String
        let quantity: Int
        let createdAt: Date
        let admittedAt: Date
    }

    struct OrderList: Encodable {
        let orders: [OrderBody]
        let nextCursor: String?
    }

    @Sendable func orders(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let sale = try await ownSale(context)
        let paging = try Paging(request, defaultLimit: 100, maximumLimit: 1_000)
        let orders = try await flashSales.store.flashSaleOrders(saleID: sale.id, after: paging.cursor, limit: paging.limit + 1)
        let (page, next) = paging.page(orders) { $0.sequence }
        return try JSONResponse.make(OrderList(
            orders: page.map { OrderBody(orderId: $0.orderID, buyerId: $0.buyerID, quantity: $0.quantity, createdAt: $0.createdAt, admittedAt: $0.admittedAt) },
            nextCursor: next))
    }

    struct StatsBody: Encodable {
        let quantity: Int
        let admitted: Int
        let persisted: Int
        let pending: Int
        let remaining: Int
        let held: Int
        let paid: Int
        let expired: Int
        let refunded: Int
        let status: String

        init(_ stats: FlashSaleStats, sale: FlashSale) {
            quantity = stats.quantity
            admitted = stats.admitted
            persisted = stats.persisted
            pending = stats.pending
            remaining = stats.remaining
            held = stats.held
            paid = stats.paid
            expired = stats.expired
            refunded = stats.refunded
            status = sale.status(now: Date(), remaining: stats.remaining).rawValue
        }
    }

    @Sendable func stats(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let sale = try await ownSale(context)
        return try JSONResponse.make(StatsBody(try await flashSales.stats(sale), sale: sale))
    }

    /// Server-sent events: the sale's counters twice a second, for the vendor's live page.
    @Sendable func events(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let sale = try await ownSale(context)
        let flashSales = flashSales
        return ServerSentEvents.repeating(every: .milliseconds(500), event: "stats", sessionIsOpen: services.sessionIsOpen(context)) {
            String(decoding: try JSONResponse.encoder.encode(StatsBody(try await flashSales.stats(sale), sale: sale)), as: UTF8.self)
        }
    }

    func publicSale(_ context: SoukRequestContext) async throws -> FlashSale {
        guard let id = context.parameters.get("id", as: Int64.self), let sale = try await flashSales.sale(id: id) else {
            throw SoukError.notFound("Flash sale")
        }
        return sale
    }

    /// The caller's own sale; another vendor's is "not found".
    func ownSale(_ context: SoukRequestContext) async throws -> FlashSale {
        let vendor = try context.requireVendor()
        let sale = try await publicSale(context)
        guard sale.vendorID == vendor.id else { throw SoukError.notFound("Flash sale") }
        return sale
    }

    static func date(_ raw: String?, field: String) throws(SoukError) -> Date? {
        try ClientDates.iso8601(raw, field: field)
    }
}

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
}
