import Foundation
import SoukSQL
import SoukTesting
import Testing

@Suite("Migrations")
struct MigrationTests {
    /// The tables each migration must create; a migration missing here fails the test.
    static let tablesByVersion: [Int: [String]] = [1: ["vendors", "sessions"], 2: ["products"], 3: ["orders", "order_items"], 4: ["flash_sales", "flash_sale_orders"],
        5: ["wallets", "wallet_ledger", "coupons", "checkouts", "checkout_items", "payments", "checkout_requests"],
        6: ["price_ticks", "price_log", "price_log_head", "price_log_offsets", "price_feed_checkpoints"],
        7: [], 8: ["jobs"], 9: ["store_views"], 10: ["store_credits"], 11: [], 12: ["customers", "revoked_customer_sessions", "signing_keys"], 13: [], 14: ["order_requests"], 15: ["email_codes", "outbox"], 16: [], 17: [], 18: [], 19: ["payment_events"], 20: []]  // 11, 13, 16, 17 and 18 add columns and indexes; search indexes: FTS5 tables on SQLite, a column and indexes on PostgreSQL (SearchTests)

    @Test(arguments: TestBackend.allCases)
    func everyMigrationAppliesInOrderAndCreatesItsTables(backend: TestBackend) async throws {
        #expect(Set(Migrations.all.map(\.version)) == Set(Self.tablesByVersion.keys))
        #expect(Migrations.all.map(\.version) == Migrations.all.map(\.version).sorted())
        try await backend.withDatabase(migrated: false) { database in
            let migrator = Migrator(database: database)
            #expect(try await migrator.appliedVersions().isEmpty)
            for migration in Migrations.all {
                let applied = try await migrator.migrate(upTo: migration.version)
                #expect(applied.map(\.version) == [migration.version])
                for table in Self.tablesByVersion[migration.version] ?? [] {
                    _ = try await database.read(SQL(stringLiteral: "SELECT COUNT(*) AS n FROM \(table)"))
                }
                if migration.version != Migrations.all.last?.version {
                    await #expect(throws: SQLDatabaseError.self) { try await migrator.verifyUpToDate() }
                }
            }
            try await migrator.verifyUpToDate()
            #expect(try await migrator.migrate().isEmpty, "a second run applies nothing")
            #expect(try await migrator.appliedVersions() == Migrations.all.map(\.version))
        }
    }

    @Test(arguments: TestBackend.allCases)
    func concurrentMigratorsApplyEachMigrationOnce(backend: TestBackend) async throws {
        try await backend.withDatabase(migrated: false) { database in
            let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 { group.addTask { try await Migrator(database: database).migrate().count } }
                return try await group.reduce(0, +)
            }
            #expect(counts == Migrations.all.count)
            try await Migrator(database: database).verifyUpToDate()
        }
    }

    /// Migration 10 moves each buyer's one wallet to the store that credited it last.
    @Test(arguments: TestBackend.allCases)
    func walletsBecomeTheCreditOfTheStoreThatGaveIt(backend: TestBackend) async throws {
        try await backend.withDatabase(migrated: false) { database in
            let migrator = Migrator(database: database)
            try await migrator.migrate(upTo: 9)
            let (first, second) = try await database.transaction { transaction in
                var ids: [Int64] = []
                for name in ["first", "second"] {
                    ids.append(try await transaction.query("""
                        INSERT INTO vendors (username, password_hash, store_name, created_at) VALUES (\(name), 'x', \(name), 0) RETURNING id
                        """)[0].int("id"))
                }
                try await transaction.query("INSERT INTO wallets (buyer_id, balance_minor, held_minor, captured_minor, updated_at) VALUES ('carol', 700, 200, 100, 5)")
                try await transaction.query("INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, vendor_id, created_at) VALUES ('carol', 'credit', 500, \(ids[0]), 1)")
                try await transaction.query("INSERT INTO wallet_ledger (buyer_id, kind, amount_minor, vendor_id, created_at) VALUES ('carol', 'credit', 500, \(ids[1]), 2)")
                return (ids[0], ids[1])
            }
            try await migrator.migrate()
            let moved = try await SQLStorage(database: database).wallet(vendorID: second, buyerID: "carol")
            #expect(moved?.balanceMinor == 700 && moved?.heldMinor == 200 && moved?.capturedMinor == 100)
            #expect(try await SQLStorage(database: database).wallet(vendorID: first, buyerID: "carol") == nil)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func aSchemaNewerThanTheBinaryIsRefused(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            try await database.transaction { try await $0.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)") }
            await #expect(throws: SQLDatabaseError.self) { try await Migrator(database: database).verifyUpToDate() }
        }
    }
}
