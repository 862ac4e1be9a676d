import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import RESP
import SoukCore
import SoukSQL
@testable import SoukServer

/// The readers of everything Souk takes from outside, one libFuzzer entry point for all of them;
/// `SOUK_FUZZ_TARGET` picks which one the bytes go to. A reader may refuse any input with an
/// error; it must never trap, and what reaches a client must be a ``SoukError`` (a clear 4xx),
/// never another error (a 500): the harness stops on either.
enum FuzzTarget: String, CaseIterable {
    /// RESP replies from a Redis server (or something pretending to be one).
    case resp
    /// `application/x-www-form-urlencoded` bodies and the amounts and counts typed into forms.
    case form
    /// `multipart/form-data` bodies (the image upload form).
    case multipart
    /// Every JSON request body of the API, decoded and turned into its domain request.
    case json
    /// The fast lanes' hand-written readers: the purchase body, a sale's path, a store's path.
    case purchase
    /// Query strings (search filters, price ranges), dates, durations and rate-limit settings.
    case query

    static let current: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["SOUK_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("set SOUK_FUZZ_TARGET to one of: \(allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        return target
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    switch FuzzTarget.current {
    case .resp: fuzzRESP(bytes)
    case .form: fuzzForm(bytes)
    case .multipart: fuzzMultipart(bytes)
    case .json: fuzzJSON(bytes)
    case .purchase: fuzzPurchase(bytes)
    case .query: fuzzQuery(bytes)
    }
    return 0
}

/// Runs `body`; any error that is not a ``SoukError`` would be a 500, so it stops the fuzzer.
func clientError(_ what: String, _ body: () throws -> Void) {
    do {
        try body()
    } catch is SoukError {
    } catch {
        fatalError("\(what): a client input caused \(type(of: error)) \(error), which is not a SoukError (a 500)")
    }
}

func fuzzRESP(_ bytes: [UInt8]) {
    var buffer = ByteBuffer(bytes: bytes)
    func visit(_ value: RESPValue, depth: Int = 0) {
        precondition(depth <= RESPToken.maximumDepth + 1, "nesting deeper than the decoder allows")
        _ = value.string
        _ = value.int
        for element in value.elements ?? [] { visit(element, depth: depth + 1) }
    }
    while true {
        do {
            guard let token = try RESPToken.read(from: &buffer) else { return }
            visit(token.value)
        } catch {
            return  // a protocol error: the connection is closed, nothing more is read
        }
    }
}

func fuzzForm(_ bytes: [UInt8]) {
    guard let text = String(validating: bytes, as: UTF8.self) else { return }
    clientError("form") {
        let form = try Form.parse(text)
        var errors: [FieldError] = []
        for name in form.fields.keys {
            for code in ["USD", "JPY", "KWD", "EUR"] {
                _ = form.price(name, currency: Currency(code: code), errors: &errors)
            }
            _ = form.integer(name, errors: &errors)
        }
        _ = try PagesController.productInput(form)
    }
}

func fuzzMultipart(_ bytes: [UInt8]) {
    clientError("multipart") {
        let parsed = try MultipartForm.parse(bytes, boundary: "souk-fuzz-boundary")
        _ = parsed.files.values.map(\.count)
    }
}

func fuzzJSON(_ bytes: [UInt8]) {
    guard let selector = bytes.first else { return }
    let body = ByteBuffer(bytes: bytes.dropFirst())
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONResponse.decode(T.self, from: body) }
    clientError("json \(selector % 12)") {
        switch selector % 12 {
        case 0:
            let input = try decode(API.ProductInput.self)
            _ = try? input.newProduct()
            _ = try input.change()
        case 1: _ = try decode(API.OrderInput.self).request()
        case 2:
            let input = try decode(CheckoutController.CheckoutInput.self)
            _ = try CheckoutRequest(buyerID: input.buyerId ?? "cu_fuzz", items: input.items.map { ($0.productId, $0.quantity) }, couponCode: input.coupon, idempotencyKey: "k")
        case 3:
            let input = try decode(CheckoutController.BuyInput.self)
            _ = try CheckoutRequest(buyerID: input.user, items: [(input.stockid, input.quantity)], couponCode: nil, idempotencyKey: nil)
        case 4:
            let input = try decode(FlashSaleController.CreateInput.self)
            let draft = try FlashSaleDraft(
                productID: input.productId, quantity: input.quantity, startsAt: try FlashSaleController.date(input.startsAt, field: "starts_at"),
                endsAt: try FlashSaleController.date(input.endsAt, field: "ends_at"), perBuyerLimit: input.perBuyerLimit)
            // What the store binds: dates become microseconds there.
            let _: SQL = "\(draft.productID) \(draft.quantity) \(draft.startsAt) \(draft.endsAt) \(draft.perBuyerLimit)"
        case 5:
            let input = try decode(CheckoutController.CouponInput.self)
            let draft = try CouponDraft(
                code: input.code, kind: input.kind, value: input.value, minimumOrderMinor: input.minOrderMinor, maxUses: input.maxUses,
                expiresAt: try FlashSaleController.date(input.expiresAt, field: "expires_at"))
            let _: SQL = "\(draft.code) \(draft.value) \(draft.expiresAt ?? Date())"
        case 6: _ = try FlashSaleController.PurchaseInput.buyerID(in: body).map { try BuyerID.validated($0) }
        case 7: _ = try decode(CheckoutController.CreditInput.self)
        case 8:
            let input = try decode(APIController.SignupInput.self)
            _ = try VendorSignup(username: input.username, password: input.password, storeName: input.storeName)
        case 10:
            let input = try decode(CheckoutController.PaymentInput.self)
            let request = try FlashSalePaymentRequest(
                orderID: "0123456789ABCDEF", buyerID: "cu_fuzz", method: input.method, name: input.shipping?.name ?? "", phone: input.shipping?.phone ?? "",
                address: input.shipping?.address ?? "",
                card: input.card.map { .init(number: $0.number, expiryMonth: $0.expMonth, expiryYear: $0.expYear, securityCode: $0.cvc) })
            let _: SQL = "\(request.shipping.name) \(request.shipping.phone) \(request.shipping.address) \(request.card?.lastFour.count ?? 0)"
        case 11:
            // A provider event: its signature header is the first line, the body the rest.
            let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
            let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            let event = Array((parts.count > 1 ? parts[1] : "").utf8)
            _ = PaymentEventSignature(secret: "whsec_fuzzing_secret_0000").isValid(String(parts.first ?? ""), body: event, now: Date())
            _ = try PaymentEventsController.event(from: event)
        default: _ = try decode(APIController.StatusInput.self)
        }
    }
}

func fuzzPurchase(_ bytes: [UInt8]) {
    let body = ByteBuffer(bytes: bytes)
    if let plain = FlashSaleController.PurchaseInput.plain(body) {
        // The hand-written reader must agree with the decoder on what it accepts.
        guard let decoded = try? JSONResponse.decode(FlashSaleController.PurchaseInput.self, from: body) else {
            fatalError("the plain reader read \(plain) from a body the decoder refuses")
        }
        precondition(decoded.buyerId == plain, "the plain reader read \(plain), the decoder \(decoded.buyerId ?? "nothing")")
    }
    let path = String(decoding: bytes, as: UTF8.self)
    _ = SoldOutLane.saleID(in: path)
    _ = StorePageLane.username(in: path)
    _ = SessionMiddleware.cookie("souk_csrf", inHeader: path)
    _ = CSRFMiddleware.isWellFormed(path)
}

func fuzzQuery(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    clientError("query") {
        _ = try SearchController.query(URI("/search?" + text).queryParameters)
    }
    for value in text.split(separator: "&").prefix(8).map(String.init) {
        _ = PriceRows.timestamp(value)
        _ = try? ClientDates.iso8601(value, field: "at")
        _ = RateLimitPolicy.parse(value)
        _ = Duration.parsing(value)
        _ = SoukConfiguration.duration(value)
    }
}
