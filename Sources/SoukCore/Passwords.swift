/// What vendor and customer accounts share about passwords: the rule a new one must meet, and a
/// check that costs the same whether the account exists or not.
public struct PasswordCheck: Sendable {
    let hasher: any PasswordHasher
    /// Verified when the account is unknown, so that a miss costs as much time as a wrong password.
    let decoyHash: String

    public init(hasher: any PasswordHasher) async throws {
        self.hasher = hasher
        self.decoyHash = try await hasher.hash("decoy-password-never-matches")
    }

    /// Why a new password is refused, or nil. bcrypt reads at most 72 bytes: a longer password would
    /// be silently truncated, so it is refused instead.
    public static func problem(_ password: String) -> String? {
        password.count < 8 || password.utf8.count > 72 ? "must be 8 to 72 bytes long" : nil
    }

    func hash(_ password: String) async throws -> String { try await hasher.hash(password) }

    /// The account if `password` is its password; nil otherwise, and for no account (after
    /// verifying against the decoy, so both failures take as long).
    func account<Account>(_ found: (account: Account, passwordHash: String)?, password: String) async throws -> Account? {
        guard let found, password.utf8.count <= 72 else {
            _ = try await hasher.verify(password, hash: decoyHash)
            return nil
        }
        return try await hasher.verify(password, hash: found.passwordHash) ? found.account : nil
    }
}
