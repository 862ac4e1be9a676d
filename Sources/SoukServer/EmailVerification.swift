import Crypto
import Foundation
import SoukCore

/// Proves a customer owns their email: a six-digit code, mailed, valid for 15 minutes and five
/// guesses, stored only as a hash. A sale with `verified_only` admits such customers alone, so a
/// per-customer limit binds a person who would otherwise open an account per invented address.
struct EmailVerification: Sendable {
    let store: any EmailVerificationStore
    let mailer: any Mailer
    /// What the mailer is (for the account page's "where is my code?").
    let usesOutbox: Bool
    static let codeLifetime: Duration = .seconds(15 * 60)
    static let maximumAttempts = 5

    /// Mails a new code to the customer (replacing an earlier one); the code expires at the date returned.
    @discardableResult
    func sendCode(to customer: Customer, now: Date = Date()) async throws -> Date {
        let code = Self.newCode()
        let expiresAt = now.addingTimeInterval(TimeInterval(Self.codeLifetime.components.seconds))
        try await store.storeVerificationCode(customerID: customer.id, codeHash: Self.hash(code, customerID: customer.id), expiresAt: expiresAt, now: now)
        try await mailer.send(Mail(
            to: customer.email, subject: "Your Souk code: \(code)",
            body: """
                Hello \(customer.name),

                your code to verify this email address on Souk is \(code). It works for 15 minutes.
                If you did not ask for it, ignore this message: nothing changes without the code.
                """))
        return expiresAt
    }

    /// A code asked for by the customer (not the one sign-up sends): counted under
    /// `verify_email` first, so nobody can flood an inbox through Souk.
    @discardableResult
    func sendRequestedCode(to customer: Customer, rateGuard: RateGuard, now: Date = Date()) async throws -> Date {
        try await rateGuard.check([(.verificationPerCustomer, customer.id)])
        return try await sendCode(to: customer, now: now)
    }

    /// Checks a code the customer typed; throws `invalidCode` with what to do next when it fails.
    func confirm(_ customer: Customer, code raw: String, now: Date = Date()) async throws -> VerificationResult {
        let code = raw.filter { !$0.isWhitespace }
        guard code.count == 6, code.allSatisfy(\.isASCII), code.allSatisfy(\.isNumber) else {
            throw SoukError.validationFailed([FieldError(field: "code", message: "must be the 6 digits from the email")])
        }
        let result = try await store.confirmVerificationCode(
            customerID: customer.id, codeHash: Self.hash(code, customerID: customer.id), maximumAttempts: Self.maximumAttempts, now: now)
        switch result {
        case .verified, .alreadyVerified: return result
        case .wrongCode(let left) where left > 0:
            throw SoukError.invalidCode("That code is not the one we sent; \(left) attempt\(left == 1 ? "" : "s") left.")
        case .wrongCode, .noCode:
            throw SoukError.invalidCode("That code has expired or was used up: ask for a new one.")
        }
    }

    static func newCode() -> String {
        var generator = SystemRandomNumberGenerator()
        let number = generator.next(upperBound: UInt32(1_000_000))
        let digits = String(number)
        return String(repeating: "0", count: 6 - digits.count) + digits
    }

    /// Bound to the customer: a code leaked from one account's mail says nothing about another's.
    static func hash(_ code: String, customerID: String) -> String {
        SHA256.hash(data: Data("\(customerID):\(code)".utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
