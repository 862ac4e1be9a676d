import Foundation

/// A shopper's account: one account buys from every store. The id is random and says nothing about
/// the person, so it can appear in order ids, logs and the vendor's lists.
public struct Customer: Hashable, Sendable {
    public let id: String
    public let email: String
    public let name: String
    public let createdAt: Date
    /// When the customer proved the email is theirs (a code sent to it), if ever: a sale may admit
    /// verified customers only, so that one person cannot buy as many invented addresses.
    public let verifiedAt: Date?

    public init(id: String, email: String, name: String, createdAt: Date, verifiedAt: Date? = nil) {
        self.id = id
        self.email = email
        self.name = name
        self.createdAt = createdAt
        self.verifiedAt = verifiedAt
    }

    /// `cu_` and 24 characters of an unambiguous alphabet: about 120 random bits.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijkmnopqrstuvwxyz23456789")
        return "cu_" + String((0..<24).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }

    /// Whether `text` has the shape of a customer id (and so is never an email).
    public static func isID(_ text: some StringProtocol) -> Bool {
        var text = String(text)
        return text.withUTF8 { isID(utf8: $0) }
    }

    /// The same check on bytes, for a token read in place (not generic: this runs on every
    /// purchase attempt, and a generic check across modules went through witness tables per byte).
    public static func isID(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count == 27, bytes[0] == UInt8(ascii: "c"), bytes[1] == UInt8(ascii: "u"), bytes[2] == UInt8(ascii: "_") else { return false }
        for index in 3..<27 {
            let byte = bytes[index]
            guard (0x61...0x7A).contains(byte) || (0x32...0x39).contains(byte) else { return false }
        }
        return true
    }
}

/// What a customer's sign-up asks for, validated before anything is hashed or stored.
public struct CustomerSignup: Sendable {
    public let email: String
    public let password: String
    public let name: String

    public init(email: String, password: String, name: String) throws(SoukError) {
        var errors: [FieldError] = []
        let email = email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if !Self.isEmail(email) {
            errors.append(.init(field: "email", message: "must be an email address such as name@example.com"))
        }
        if let problem = PasswordCheck.problem(password) { errors.append(.init(field: "password", message: problem)) }
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        if let problem = Validate.text(name, min: 1, max: 100) {
            errors.append(.init(field: "name", message: problem))
        }
        guard errors.isEmpty else { throw .validationFailed(errors) }
        self.email = email
        self.password = password
        self.name = name
    }

    /// One `@` between a local part and a dotted domain, printable ASCII without spaces, at most 254
    /// bytes (what an SMTP path holds). Deliverability is the verification email's business.
    public static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard text.utf8.count <= 254, parts.count == 2, let local = parts.first, let domain = parts.last,
              (1...64).contains(local.utf8.count), domain.contains("."), !domain.hasPrefix("."), !domain.hasSuffix("."),
              !domain.contains("..")
        else { return false }
        let localAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.!#$%&'*+/=?^_`{|}~-")
        let domainAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-")
        return local.allSatisfy { localAllowed.contains($0) } && domain.allSatisfy { domainAllowed.contains($0) }
    }
}

/// Customers and their credentials.
public protocol CustomerStore: EmailVerificationStore {
    /// Creates a customer; nil when the email is taken (decided by the database, not by a prior read).
    func createCustomer(_ customer: Customer, passwordHash: String) async throws -> Customer?
    /// Creates many customers in one statement, for load tests; the answer leaves out those whose
    /// email was taken.
    func createCustomers(_ customers: [Customer], passwordHash: String) async throws -> [Customer]
    func customer(id: String) async throws -> Customer?
    func customer(email: String) async throws -> Customer?
    func customerCredentials(email: String) async throws -> (customer: Customer, passwordHash: String)?
    /// The name, phone and address of the customer's latest store order: what fills in the next one.
    func lastShippingContact(customerID: String) async throws -> ShippingContact?
    /// Records a customer session ended before its expiry; every instance stops accepting it.
    func revokeCustomerSession(id: String, expiresAt: Date) async throws
    /// Sessions ended and not yet expired, for every instance's in-memory list.
    func revokedCustomerSessions(now: Date) async throws -> [(id: String, expiresAt: Date)]
    /// The key that signs customer tokens, made once (by whichever instance comes first) and shared.
    func customerSigningKey() async throws -> [UInt8]
}

/// Sign-up and credential checks for customers.
public struct CustomerAccounts: Sendable {
    let customers: any CustomerStore
    let passwords: PasswordCheck

    public init(customers: any CustomerStore, hasher: any PasswordHasher) async throws {
        self.customers = customers
        self.passwords = try await PasswordCheck(hasher: hasher)
    }

    public func signUp(_ signup: CustomerSignup, now: Date = Date()) async throws -> Customer {
        let hash = try await passwords.hash(signup.password)
        let customer = Customer(id: Customer.newID(), email: signup.email, name: signup.name, createdAt: now)
        guard let created = try await customers.createCustomer(customer, passwordHash: hash) else {
            throw SoukError.emailTaken(signup.email)
        }
        return created
    }

    /// The customer whose password this is, or nil; never says which half was wrong.
    public func authenticate(email: String, password: String) async throws -> Customer? {
        let email = email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let found = !email.isEmpty && email.utf8.count <= 254 ? try await customers.customerCredentials(email: email) : nil
        return try await passwords.account(found.map { ($0.customer, $0.passwordHash) }, password: password)
    }

    /// The customer named by an id or an email, as vendors and the `/buy` body name them.
    public func customer(named reference: String) async throws -> Customer? {
        let reference = reference.trimmingCharacters(in: .whitespaces)
        if Customer.isID(reference) { return try await customers.customer(id: reference) }
        guard reference.contains("@"), reference.utf8.count <= 254 else { return nil }
        return try await customers.customer(email: reference.lowercased())
    }
}
