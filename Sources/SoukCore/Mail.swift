import Foundation

/// An email to one recipient, plain text.
public struct Mail: Hashable, Sendable {
    public let to: String
    public let subject: String
    public let body: String

    public init(to: String, subject: String, body: String) {
        self.to = to
        self.subject = subject
        self.body = body
    }
}

/// Sends mail: SMTP in production; in embedded mode the outbox, a table the demo shows as a page.
public protocol Mailer: Sendable {
    func send(_ mail: Mail) async throws
}

/// A mail as the outbox keeps it.
public struct OutboxMail: Hashable, Sendable {
    public let id: Int64
    public let mail: Mail
    public let createdAt: Date

    public init(id: Int64, mail: Mail, createdAt: Date) {
        self.id = id
        self.mail = mail
        self.createdAt = createdAt
    }
}

/// Mail kept in the database instead of sent: the embedded mailer, so that a demo without a mail
/// server still shows what a customer would receive.
public protocol OutboxStore: Sendable {
    func appendToOutbox(_ mail: Mail, now: Date) async throws
    /// The newest mail first.
    func outbox(limit: Int) async throws -> [OutboxMail]
}

/// The ``Mailer`` that writes to the outbox.
public struct OutboxMailer: Mailer {
    let store: any OutboxStore

    public init(store: any OutboxStore) {
        self.store = store
    }

    public func send(_ mail: Mail) async throws {
        try await store.appendToOutbox(mail, now: Date())
    }
}

/// What checking an email verification code found.
public enum VerificationResult: Sendable, Equatable {
    case verified
    /// The email was verified before: nothing to do.
    case alreadyVerified
    case wrongCode(attemptsLeft: Int)
    /// No code to check: none was sent, it expired, or its attempts are used up.
    case noCode
}

/// Email verification codes, one live code per customer, stored hashed.
public protocol EmailVerificationStore: Sendable {
    /// Stores a new code for the customer, replacing any earlier one (whose attempts are forgotten).
    func storeVerificationCode(customerID: String, codeHash: String, expiresAt: Date, now: Date) async throws
    /// Counts one attempt at the customer's code, in one transaction: on a match (within its
    /// lifetime and `maximumAttempts`) the customer is verified and the code is spent.
    func confirmVerificationCode(customerID: String, codeHash: String, maximumAttempts: Int, now: Date) async throws -> VerificationResult
}
