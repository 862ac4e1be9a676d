import Foundation

/// One field that failed validation, reported to API clients and shown beside the form field.
public struct FieldError: Hashable, Sendable, Codable {
    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// A failure of a backend Souk needs (Redis, the database) that passes by itself: the connection
/// dropped, the server is unreachable, a reply is late. Clients are told to try again (503 with
/// `Retry-After`), not that Souk is broken; every write Souk offers is safe to retry (idempotent
/// purchases and checkouts, version-checked pages).
public protocol TemporaryFailure: Error {
    var isTemporary: Bool { get }
}

/// Every failure a client can cause, each with a stable snake_case code.
///
/// The HTTP layer maps each case exhaustively to a status; nothing here knows about HTTP.
public enum SoukError: Error, Equatable, Sendable {
    case validationFailed([FieldError])
    case malformedRequest(String)
    case payloadTooLarge(limit: Int)
    case unauthorized
    case forbidden(String)
    case notFound(String)
    case usernameTaken(String)
    /// A customer account with this email exists already.
    case emailTaken(String)
    case unknownProduct(productID: Int64)
    case productUnavailable(productID: Int64, name: String)
    case insufficientStock(productID: Int64, name: String, requested: Int, available: Int)
    case mixedCurrency
    case invalidTransition(from: OrderStatus, to: OrderStatus)
    case soldOut
    case limitReached(limit: Int)
    case saleNotStarted(startsAt: Date)
    case saleEnded
    case insufficientCredit
    case invalidCoupon(String)
    /// An upload that is not a JPEG, PNG or WebP image (by its content, not its name).
    case unsupportedImageType
    /// An image that cannot be decoded, or is too large in pixels.
    case invalidImage(String)
    /// The stored denial of an earlier request with the same idempotency key, given again as it was.
    case previousAnswer(status: Int, code: String, message: String)
    /// Too many attempts from this address, for this account or by this buyer; try again later.
    case rateLimited(retryAfterSeconds: Int)
    /// The product is in a flash sale that is open or scheduled: it cannot be deleted or hidden
    /// until the sale ends or is cancelled.
    case flashSaleOpen(productName: String)
    /// An idempotency key sent again with a different request: a client bug, never the same purchase.
    case idempotencyKeyReused
    /// The sale admits customers with a verified email only.
    case verificationRequired
    /// An email verification code that is wrong, expired or used up.
    case invalidCode(String)
    /// A flash-sale order's payment is being verified; the answer comes on the order.
    case paymentInProgress
    /// A flash-sale order that is paid already.
    case alreadyPaid
    /// A flash-sale order whose hold expired before it was paid: its unit went back to the sale.
    case holdExpired
    /// Only a paid flash-sale order can be cancelled and refunded (one held or being paid expires
    /// or fails by itself; one cancelled is refunded already).
    case notRefundable(status: String)
    /// A flash-sale order the vendor cancelled (and refunded): it cannot be paid again.
    case orderCancelled

    /// Seconds the client should wait before trying again (`Retry-After`), when that is known.
    public var retryAfterSeconds: Int? {
        if case .rateLimited(let seconds) = self { return seconds }
        return nil
    }

    public var code: String {
        switch self {
        case .validationFailed: "validation_failed"
        case .malformedRequest: "malformed_request"
        case .payloadTooLarge: "payload_too_large"
        case .unauthorized: "unauthorized"
        case .forbidden: "forbidden"
        case .notFound: "not_found"
        case .usernameTaken: "username_taken"
        case .emailTaken: "email_taken"
        case .unknownProduct: "unknown_product"
        case .productUnavailable: "product_unavailable"
        case .insufficientStock: "insufficient_stock"
        case .mixedCurrency: "mixed_currency"
        case .invalidTransition: "invalid_transition"
        case .soldOut: "sold_out"
        case .limitReached: "limit_reached"
        case .saleNotStarted: "not_started"
        case .saleEnded: "ended"
        case .insufficientCredit: "insufficient_credit"
        case .invalidCoupon: "invalid_coupon"
        case .unsupportedImageType: "unsupported_media_type"
        case .invalidImage: "invalid_image"
        case .previousAnswer(_, let code, _): code
        case .rateLimited: "rate_limited"
        case .flashSaleOpen: "flash_sale_open"
        case .idempotencyKeyReused: "idempotency_key_reused"
        case .verificationRequired: "verification_required"
        case .invalidCode: "invalid_code"
        case .paymentInProgress: "payment_in_progress"
        case .alreadyPaid: "already_paid"
        case .holdExpired: "hold_expired"
        case .notRefundable: "not_refundable"
        case .orderCancelled: "order_cancelled"
        }
    }

    public var message: String {
        switch self {
        case .validationFailed(let fields):
            "Some fields are invalid: " + fields.map { "\($0.field) \($0.message)" }.joined(separator: "; ")
        case .malformedRequest(let why): "The request could not be read: \(why)"
        case .payloadTooLarge(let limit): "The request body is larger than \(limit) bytes."
        case .unauthorized: "Log in first: the credentials or session are missing, wrong or expired."
        case .forbidden(let why): why
        case .notFound(let what): "\(what) was not found."
        case .usernameTaken(let name): "The username \"\(name)\" is already taken."
        case .emailTaken(let email): "An account for \(email) exists already: log in instead."
        case .unknownProduct(let id): "Product \(id) is not sold by this store."
        case .productUnavailable(_, let name): "\(name) is not available right now."
        case .insufficientStock(_, let name, let requested, let available):
            "Only \(available) of \(name) left; you asked for \(requested)."
        case .mixedCurrency: "All items of one order must be priced in the same currency."
        case .invalidTransition(let from, let to): "An order that is \(from.rawValue) cannot become \(to.rawValue)."
        case .soldOut: "Sold out: every unit of this sale has been taken."
        case .limitReached(let limit): "You have already bought the most this sale allows (\(limit))."
        case .saleNotStarted(let startsAt): "The sale has not started yet; it starts at \(ISO8601DateFormatter().string(from: startsAt))."
        case .saleEnded: "The sale has ended."
        case .insufficientCredit: "Deny: Not enough credit"
        case .invalidCoupon(let why): "The coupon cannot be used: \(why)."
        case .unsupportedImageType: "Images must be JPEG, PNG or WebP."
        case .invalidImage(let why): "The image cannot be used: \(why)."
        case .previousAnswer(_, _, let message): message
        case .rateLimited(let seconds): "Too many attempts: try again in \(seconds) second\(seconds == 1 ? "" : "s")."
        case .flashSaleOpen(let name): "\(name) is in a flash sale that is open or scheduled; cancel the sale first."
        case .idempotencyKeyReused: "This Idempotency-Key was already used for a different request; use a new key for a new request."
        case .verificationRequired: "This sale is for customers with a verified email: verify yours with the code we email you, then try again."
        case .invalidCode(let why): why
        case .paymentInProgress: "A payment for this order is being verified; its answer comes on the order."
        case .alreadyPaid: "This order is paid already."
        case .holdExpired: "The time to pay for this order ran out: its unit went back to the sale."
        case .notRefundable(let status): "Only a paid order can be cancelled and refunded; this one is \(status)."
        case .orderCancelled: "The shop cancelled this order and refunded it; it cannot be paid again."
        }
    }
}
