import Foundation
import SoukCore

extension SQLStorage {
    public func createCustomer(_ customer: Customer, passwordHash: String) async throws -> Customer? {
        try await database.write("""
            INSERT INTO customers (id, email, name, password_hash, created_at)
            VALUES (\(customer.id), \(customer.email), \(customer.name), \(passwordHash), \(customer.createdAt))
            ON CONFLICT (email) DO NOTHING
            RETURNING id, email, name, created_at, verified_at
            """).first.map(Self.customer)
    }

    public func createCustomers(_ customers: [Customer], passwordHash: String) async throws -> [Customer] {
        var created: [Customer] = []
        // 500 rows of 5 values stay far below either database's limit on bound values.
        for start in stride(from: 0, to: customers.count, by: 500) {
            var sql: SQL = "INSERT INTO customers (id, email, name, password_hash, created_at) VALUES "
            for (offset, customer) in customers[start..<min(start + 500, customers.count)].enumerated() {
                if offset > 0 { sql.append(", ") }
                sql.append("(\(customer.id), \(customer.email), \(customer.name), \(passwordHash), \(customer.createdAt))")
            }
            sql.append(" ON CONFLICT (email) DO NOTHING RETURNING id, email, name, created_at, verified_at")
            created += try await database.write(sql).map(Self.customer)
        }
        return created
    }

    public func customer(id: String) async throws -> Customer? {
        try await database.readFirst("SELECT id, email, name, created_at, verified_at FROM customers WHERE id = \(id)").map(Self.customer)
    }

    public func customer(email: String) async throws -> Customer? {
        try await database.readFirst("SELECT id, email, name, created_at, verified_at FROM customers WHERE email = \(email)").map(Self.customer)
    }

    public func customerCredentials(email: String) async throws -> (customer: Customer, passwordHash: String)? {
        guard let row = try await database.readFirst("""
            SELECT id, email, name, created_at, verified_at, password_hash FROM customers WHERE email = \(email)
            """) else { return nil }
        return (try Self.customer(row), try row.string("password_hash"))
    }

    public func lastShippingContact(customerID: String) async throws -> ShippingContact? {
        try await database.readFirst("""
            SELECT customer_name, customer_phone, customer_address FROM orders
            WHERE customer_id = \(customerID) ORDER BY created_at DESC, id DESC LIMIT 1
            """).map {
            ShippingContact(name: try $0.string("customer_name"), phone: try $0.string("customer_phone"), address: try $0.string("customer_address"))
        }
    }

    public func revokeCustomerSession(id: String, expiresAt: Date) async throws {
        let now = Date()
        try await database.transaction { transaction in
            // Sessions past their expiry need no listing: swept as new ones are added.
            try await transaction.query("DELETE FROM revoked_customer_sessions WHERE expires_at < \(now)")
            try await transaction.query("""
                INSERT INTO revoked_customer_sessions (session_id, expires_at) VALUES (\(id), \(expiresAt))
                ON CONFLICT (session_id) DO NOTHING
                """)
        }
    }

    public func revokedCustomerSessions(now: Date) async throws -> [(id: String, expiresAt: Date)] {
        try await database.read("SELECT session_id, expires_at FROM revoked_customer_sessions WHERE expires_at >= \(now)").map {
            (try $0.string("session_id"), try $0.date("expires_at"))
        }
    }

    public func customerSigningKey() async throws -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let fresh = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let hex = fresh.map { String(format: "%02x", $0) }.joined()
        try await database.write("""
            INSERT INTO signing_keys (name, key_hex, created_at) VALUES (\("customer_tokens"), \(hex), \(Date()))
            ON CONFLICT (name) DO NOTHING
            """)
        guard let row = try await database.readFirst("SELECT key_hex FROM signing_keys WHERE name = \("customer_tokens")") else {
            throw SQLDatabaseError.missingColumn("signing_keys.key_hex")
        }
        let stored = Array(try row.string("key_hex").utf8)
        let key = stride(from: 0, to: stored.count, by: 2).compactMap { UInt8(String(decoding: stored[$0..<min($0 + 2, stored.count)], as: UTF8.self), radix: 16) }
        guard stored.count == 64, key.count == 32 else { throw SQLDatabaseError.typeMismatch(column: "signing_keys.key_hex", expected: "64 hex digits") }
        return key
    }

    public func storeVerificationCode(customerID: String, codeHash: String, expiresAt: Date, now: Date) async throws {
        try await database.write("""
            INSERT INTO email_codes (customer_id, code_hash, expires_at, attempts, sent_at)
            VALUES (\(customerID), \(codeHash), \(expiresAt), 0, \(now))
            ON CONFLICT (customer_id) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at,
                attempts = 0, sent_at = excluded.sent_at
            """)
    }

    public func confirmVerificationCode(customerID: String, codeHash: String, maximumAttempts: Int, now: Date) async throws -> VerificationResult {
        try await database.transaction { transaction in
            guard let customer = try await transaction.query("SELECT verified_at FROM customers WHERE id = \(customerID)").first else { return .noCode }
            if try customer.optionalDate("verified_at") != nil { return .alreadyVerified }
            // Counted first, in the same statement that reads the code: concurrent guesses cannot
            // share one attempt.
            guard let code = try await transaction.query("""
                UPDATE email_codes SET attempts = attempts + 1
                WHERE customer_id = \(customerID) AND expires_at > \(now) AND attempts < \(maximumAttempts)
                RETURNING code_hash, attempts
                """).first else { return .noCode }
            guard try code.string("code_hash") == codeHash else {
                return .wrongCode(attemptsLeft: max(0, maximumAttempts - Int(try code.int("attempts"))))
            }
            try await transaction.query("UPDATE customers SET verified_at = \(now) WHERE id = \(customerID)")
            try await transaction.query("DELETE FROM email_codes WHERE customer_id = \(customerID)")
            return .verified
        }
    }

    public func appendToOutbox(_ mail: Mail, now: Date) async throws {
        try await database.write("""
            INSERT INTO outbox (recipient, subject, body, created_at) VALUES (\(mail.to), \(mail.subject), \(mail.body), \(now))
            """)
    }

    public func outbox(limit: Int) async throws -> [OutboxMail] {
        try await database.read("SELECT id, recipient, subject, body, created_at FROM outbox ORDER BY id DESC LIMIT \(limit)").map {
            OutboxMail(id: try $0.int("id"), mail: Mail(to: try $0.string("recipient"), subject: try $0.string("subject"), body: try $0.string("body")),
                       createdAt: try $0.date("created_at"))
        }
    }

    static func customer(_ row: SQLRow) throws -> Customer {
        Customer(id: try row.string("id"), email: try row.string("email"), name: try row.string("name"), createdAt: try row.date("created_at"),
                 verifiedAt: try row.optionalDate("verified_at"))
    }
}
