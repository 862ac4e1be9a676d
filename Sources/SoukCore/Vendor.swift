import Foundation

/// A seller with a public store at `/s/{username}`.
public struct Vendor: Hashable, Sendable {
    public let id: Int64
    public let username: String
    public let storeName: String
    public let createdAt: Date

    public init(id: Int64, username: String, storeName: String, createdAt: Date) {
        self.id = id
        self.username = username
        self.storeName = storeName
        self.createdAt = createdAt
    }
}

/// What a sign-up asks for, validated before anything is hashed or stored.
public struct VendorSignup: Sendable {
    public let username: String
    public let password: String
    public let storeName: String

    /// Usernames appear in URLs, so they are lowercase ASCII and never shadow a route of ours.
    static let reservedUsernames: Set<String> = ["admin", "api", "dashboard", "login", "logout", "signup", "static", "souk"]

    public init(username: String, password: String, storeName: String) throws(SoukError) {
        var errors: [FieldError] = []
        let username = username.trimmingCharacters(in: .whitespaces).lowercased()
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_-")
        if !(3...32).contains(username.count) || !username.allSatisfy({ allowed.contains($0) }) {
            errors.append(.init(field: "username", message: "must be 3 to 32 characters: a-z, 0-9, _ or -"))
        } else if Self.reservedUsernames.contains(username) {
            errors.append(.init(field: "username", message: "is reserved"))
        }
        if let problem = PasswordCheck.problem(password) { errors.append(.init(field: "password", message: problem)) }
        let storeName = storeName.trimmingCharacters(in: .whitespacesAndNewlines)
        if let problem = Validate.text(storeName, min: 1, max: 100) {
            errors.append(.init(field: "store_name", message: problem))
        }
        guard errors.isEmpty else { throw .validationFailed(errors) }
        self.username = username
        self.password = password
        self.storeName = storeName
    }
}
