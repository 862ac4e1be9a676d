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
        7: [], 8: ["jobs"], 9: ["store_views"]]  // search indexes: FTS5 tables on SQLite, a column and indexes on PostgreSQL (SearchTests)

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

    @Test(arguments: TestBackend.allCases)
    func aSchemaNewerThanTheBinaryIsRefused(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            try await database.transaction { try await $0.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)") }
            await #expect(throws: SQLDatabaseError.self) { try await Migrator(database: database).verifyUpToDate() }
        }
    }
}
