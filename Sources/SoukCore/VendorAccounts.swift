/// Sign-up and credential checks for vendors.
public struct VendorAccounts: Sendable {
    let vendors: any VendorStore
    let hasher: any PasswordHasher
    /// Verified when the username is unknown, so that a miss costs as much time as a wrong password.
    let decoyHash: String

    public init(vendors: any VendorStore, hasher: any PasswordHasher) async throws {
        self.vendors = vendors
        self.hasher = hasher
        self.decoyHash = try await hasher.hash("decoy-password-never-matches")
    }

    public func signUp(_ signup: VendorSignup) async throws -> Vendor {
        let hash = try await hasher.hash(signup.password)
        guard let vendor = try await vendors.createVendor(username: signup.username, storeName: signup.storeName, passwordHash: hash) else {
            throw SoukError.usernameTaken(signup.username)
        }
        return vendor
    }

    /// The vendor whose password this is, or nil; never says which half was wrong.
    public func authenticate(username: String, password: String) async throws -> Vendor? {
        let username = username.trimmingCharacters(in: .whitespaces).lowercased()
        guard !username.isEmpty, username.count <= 64, password.utf8.count <= 72,
              let found = try await vendors.credentials(username: username)
        else {
            _ = try await hasher.verify(password, hash: decoyHash)
            return nil
        }
        return try await hasher.verify(password, hash: found.passwordHash) ? found.vendor : nil
    }
}
