import Foundation
import Hummingbird
import Logging
import NIOCore
import SoukCore

/// Turns every error into a clear answer: JSON `{"error":{"code","message"}}` under `/api`, an HTML
/// page elsewhere. Errors we did not foresee are logged with the request id and answered with a plain 500.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = SoukRequestContext
    let pages: PageRenderer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Self.problem(for: error)
            if problem.status == .internalServerError {
                context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            } else if problem.status == .serviceUnavailable {
                context.logger.warning("a backend is unavailable", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            }
            var response = request.uri.path.hasPrefix("/api/") ? JSONResponse.error(problem) : pages.errorPage(problem, context: context)
            response.setRetryAfter(problem.retryAfterSeconds)
            return response
        }
    }

    /// What a client is told about an error: status, stable code, message and failing fields.
    struct Problem: Sendable {
        let status: HTTPResponse.Status
        let code: String
        let message: String
        var fields: [FieldError] = []
        var retryAfterSeconds: Int?
    }

    static func problem(for error: any Error) -> Problem {
        switch error {
        case let error as SoukError:
            var problem = Problem(status: status(of: error), code: error.code, message: error.message)
            if case .validationFailed(let fields) = error { problem.fields = fields }
            problem.retryAfterSeconds = error.retryAfterSeconds
            return problem
        case let error as any TemporaryFailure where error.isTemporary:
            return Problem(status: .serviceUnavailable, code: "unavailable",
                           message: "A service Souk needs is unavailable for a moment; try again.", retryAfterSeconds: 1)
        case is NIOTooManyBytesError:
            return Problem(status: .contentTooLarge, code: "payload_too_large", message: "The request body is too large.")
        case let error as HTTPError:
            switch error.status {
            case .notFound: return Problem(status: .notFound, code: "not_found", message: "There is nothing at this address.")
            case .methodNotAllowed: return Problem(status: .methodNotAllowed, code: "method_not_allowed", message: "This address does not take that method.")
            case .contentTooLarge: return Problem(status: .contentTooLarge, code: "payload_too_large", message: "The request body is too large.")
            case let status where (400..<500).contains(status.code):
                return Problem(status: status, code: "bad_request", message: error.body ?? status.reasonPhrase)
            default: break
            }
        default: break
        }
        return Problem(status: .internalServerError, code: "internal_error", message: "Something went wrong on our side; it has been logged.")
    }

    /// Every domain error has exactly one status; adding a case without one does not compile.
    static func status(of error: SoukError) -> HTTPResponse.Status {
        switch error {
        case .validationFailed, .unknownProduct, .mixedCurrency: .unprocessableContent
        case .malformedRequest: .badRequest
        case .payloadTooLarge: .contentTooLarge
        case .unauthorized: .unauthorized
        case .forbidden, .verificationRequired: .forbidden
        case .notFound: .notFound
        case .usernameTaken, .emailTaken, .productUnavailable, .insufficientStock, .invalidTransition, .flashSaleOpen, .paymentInProgress, .alreadyPaid, .holdExpired, .notRefundable, .orderCancelled: .conflict
        case .soldOut, .limitReached, .saleNotStarted, .saleEnded: .conflict
        case .insufficientCredit: HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required")
        case .invalidCoupon, .invalidImage, .idempotencyKeyReused, .invalidCode: .unprocessableContent
        case .unsupportedImageType: .unsupportedMediaType
        case .previousAnswer(let status, _, _): HTTPResponse.Status(code: status)
        case .rateLimited: .tooManyRequests
        }
    }
}

extension Response {
    /// `Retry-After` for answers that ask the client to wait (429).
    mutating func setRetryAfter(_ seconds: Int?) {
        if let seconds { headers[.retryAfter] = String(seconds) }
    }
}
