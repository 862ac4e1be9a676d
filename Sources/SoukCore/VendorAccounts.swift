/// Sign-up and credential checks for vendors.
public struct VendorAccounts: Sendable {
    let vendors: any VendorStore
    let passwords: PasswordCheck

    public init(vendors: any VendorStore, hasher: any PasswordHasher) async throws {
        self.vendors = vendors
        self.passwords = try await PasswordCheck(hasher: hasher)
    }

    public func signUp(_ signup: VendorSignup) async throws -> Vendor {
        let hash = try await passwords.hash(signup.password)
        guard let vendor = try await vendors.createVendor(username: signup.username, storeName: signup.storeName, passwordHash: hash) else {
            throw SoukError.usernameTaken(signup.username)
        }
        return vendor
    }

    /// The vendor whose password this is, or nil; never says which half was wrong.
    public func authenticate(username: String, password: String) async throws -> Vendor? {
        let username = username.trimmingCharacters(in: .whitespaces).lowercased()
        let found = !username.isEmpty && username.count <= 64 ? try await vendors.credentials(username: username) : nil
        return try await passwords.account(found.map { ($0.vendor, $0.passwordHash) }, password: password)
    }
}
