import Foundation
import SoukCore

/// The store flows' storage on any ``SQLDatabase``: the same statements serve SQLite and PostgreSQL.
public struct SQLStorage: SoukStorage {
    public let database: any SQLDatabase
    /// One-item checkouts accepted in groups (PostgreSQL): see ``acceptOneItemCheckouts(_:_:)``.
    let oneItemAcceptances: GroupCommit<OneItemCheckout, CheckoutOrder?>

    public init(database: any SQLDatabase) {
        self.database = database
        self.oneItemAcceptances = GroupCommit { [database] checkouts in
            try await Self.acceptOneItemCheckouts(checkouts, database)
        }
    }

    // MARK: Vendors

    static let vendorColumns = "id, username, store_name, created_at"

    public func createVendor(username: String, storeName: String, passwordHash: String) async throws -> Vendor? {
        try await database.write("""
            INSERT INTO vendors (username, store_name, password_hash, created_at)
            VALUES (\(username), \(storeName), \(passwordHash), \(Date()))
            ON CONFLICT (username) DO NOTHING
            RETURNING id, username, store_name, created_at
            """).first.map(Self.vendor)
    }

    public func vendor(id: Int64) async throws -> Vendor? {
        try await database.readFirst("SELECT id, username, store_name, created_at FROM vendors WHERE id = \(id)").map(Self.vendor)
    }

    public func vendor(username: String) async throws -> Vendor? {
        try await database.readFirst("SELECT id, username, store_name, created_at FROM vendors WHERE username = \(username)").map(Self.vendor)
    }

    public func credentials(username: String) async throws -> (vendor: Vendor, passwordHash: String)? {
        guard let row = try await database.readFirst("""
            SELECT id, username, store_name, created_at, password_hash FROM vendors WHERE username = \(username)
            """) else { return nil }
        return (try Self.vendor(row), try row.string("password_hash"))
    }

    static func vendor(_ row: SQLRow) throws -> Vendor {
        Vendor(id: try row.int("id"), username: try row.string("username"), storeName: try row.string("store_name"), createdAt: try row.date("created_at"))
    }

    // MARK: Sessions

    public func createSession(tokenHash: String, vendorID: Int64, expiresAt: Date) async throws {
        let now = Date()
        try await database.transaction { transaction in
            // Expired sessions are swept as new ones are made, so the table stays small.
            try await transaction.query("DELETE FROM sessions WHERE expires_at < \(now)")
            try await transaction.query("""
                INSERT INTO sessions (token_hash, vendor_id, expires_at, created_at)
                VALUES (\(tokenHash), \(vendorID), \(expiresAt), \(now))
                """)
        }
    }

    public func vendor(sessionTokenHash: String, now: Date) async throws -> Vendor? {
        try await database.readFirst("""
            SELECT v.id, v.username, v.store_name, v.created_at FROM sessions s JOIN vendors v ON v.id = s.vendor_id
            WHERE s.token_hash = \(sessionTokenHash) AND s.expires_at > \(now)
            """).map(Self.vendor)
    }

    public func deleteSession(tokenHash: String) async throws {
        try await database.write("DELETE FROM sessions WHERE token_hash = \(tokenHash)")
    }
}
