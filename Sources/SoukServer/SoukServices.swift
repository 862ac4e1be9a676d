import Foundation
import SoukCore

/// What the HTTP layer needs, built once by the composition root and shared by every controller.
public struct SoukServices: Sendable {
    public let storage: any SoukStorage
    public let accounts: VendorAccounts
    let sessions: SessionTokens
    let cookies: CookiePolicy
    let pages: PageRenderer

    public init(storage: any SoukStorage, hasher: any PasswordHasher, sessionLifetime: Duration = .seconds(14 * 24 * 3600), cookies: CookiePolicy = .auto) async throws {
        self.storage = storage
        self.accounts = try await VendorAccounts(vendors: storage, hasher: hasher)
        self.sessions = SessionTokens(store: storage, lifetime: sessionLifetime)
        self.cookies = cookies
        self.pages = try PageRenderer()
    }

    /// The vendor whose public store the path names, or 404.
    func publicVendor(_ context: SoukRequestContext) async throws -> Vendor {
        guard let username = context.parameters.get("username"), username.count <= 64,
              let vendor = try await storage.vendor(username: username.lowercased())
        else { throw SoukError.notFound("Store") }
        return vendor
    }
}
