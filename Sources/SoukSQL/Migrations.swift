import Foundation

/// One numbered schema change, written for each dialect. Applied once, in order, in a transaction.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    let sqlite: [String]
    let postgres: [String]

    func statements(for dialect: SQLDialect) -> [String] {
        switch dialect {
        case .sqlite: sqlite
        case .postgres: postgres
        }
    }
}

/// Every migration Souk has, oldest first. Never edit one that has shipped: add a new one.
public enum Migrations {
    public static let all: [Migration] = [
        Migration(
            version: 1, name: "create vendors and sessions",
            sqlite: [
                """
                CREATE TABLE vendors (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    username TEXT NOT NULL UNIQUE,
                    store_name TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    created_at INTEGER NOT NULL)
                """,
                """
                CREATE TABLE sessions (
                    token_hash TEXT PRIMARY KEY,
                    vendor_id INTEGER NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    expires_at INTEGER NOT NULL,
                    created_at INTEGER NOT NULL)
                """,
                "CREATE INDEX sessions_by_expiry ON sessions(expires_at)",
            ],
            postgres: [
                """
                CREATE TABLE vendors (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    username TEXT NOT NULL UNIQUE,
                    store_name TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE sessions (
                    token_hash TEXT PRIMARY KEY,
                    vendor_id BIGINT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    expires_at BIGINT NOT NULL,
                    created_at BIGINT NOT NULL)
                """,
                "CREATE INDEX sessions_by_expiry ON sessions(expires_at)",
            ]
        ),
        Migration(
            version: 2, name: "create products",
            sqlite: [
                """
                CREATE TABLE products (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    vendor_id INTEGER NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL,
                    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
                    currency TEXT NOT NULL,
                    stock INTEGER NOT NULL CHECK (stock >= 0),
                    available INTEGER NOT NULL CHECK (available IN (0, 1)),
                    status TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL)
                """,
                "CREATE INDEX products_by_vendor ON products(vendor_id, id)",
            ],
            postgres: [
                """
                CREATE TABLE products (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    vendor_id BIGINT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL,
                    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
                    currency TEXT NOT NULL,
                    stock BIGINT NOT NULL CHECK (stock >= 0),
                    available BOOLEAN NOT NULL,
                    status TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL)
                """,
                "CREATE INDEX products_by_vendor ON products(vendor_id, id)",
            ]
        ),
        Migration(
            version: 3, name: "create orders and order items",
            sqlite: [
                """
                CREATE TABLE orders (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    vendor_id INTEGER NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    reference TEXT NOT NULL UNIQUE,
                    status TEXT NOT NULL CHECK (status IN ('placed', 'confirmed', 'shipped', 'delivered', 'cancelled')),
                    customer_name TEXT NOT NULL,
                    customer_phone TEXT NOT NULL,
                    customer_address TEXT NOT NULL,
                    total_minor INTEGER NOT NULL CHECK (total_minor >= 0),
                    currency TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL)
                """,
                "CREATE INDEX orders_by_vendor ON orders(vendor_id, id)",
                """
                CREATE TABLE order_items (
                    order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    product_id INTEGER REFERENCES products(id) ON DELETE SET NULL,
                    name TEXT NOT NULL,
                    unit_price_minor INTEGER NOT NULL,
                    quantity INTEGER NOT NULL CHECK (quantity > 0),
                    PRIMARY KEY (order_id, position))
                """,
                "CREATE INDEX order_items_by_product ON order_items(product_id)",
            ],
            postgres: [
                """
                CREATE TABLE orders (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    vendor_id BIGINT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    reference TEXT NOT NULL UNIQUE,
                    status TEXT NOT NULL CHECK (status IN ('placed', 'confirmed', 'shipped', 'delivered', 'cancelled')),
                    customer_name TEXT NOT NULL,
                    customer_phone TEXT NOT NULL,
                    customer_address TEXT NOT NULL,
                    total_minor BIGINT NOT NULL CHECK (total_minor >= 0),
                    currency TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL)
                """,
                "CREATE INDEX orders_by_vendor ON orders(vendor_id, id)",
                """
                CREATE TABLE order_items (
                    order_id BIGINT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
                    position INT NOT NULL,
                    product_id BIGINT REFERENCES products(id) ON DELETE SET NULL,
                    name TEXT NOT NULL,
                    unit_price_minor BIGINT NOT NULL,
                    quantity BIGINT NOT NULL CHECK (quantity > 0),
                    PRIMARY KEY (order_id, position))
                """,
                "CREATE INDEX order_items_by_product ON order_items(product_id)",
            ]
        ),
        Migration(
            version: 4, name: "create flash sales and their orders",
            sqlite: [
                """
                CREATE TABLE flash_sales (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    vendor_id INTEGER NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    product_id INTEGER REFERENCES products(id) ON DELETE SET NULL,
                    product_name TEXT NOT NULL,
                    price_minor INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    quantity INTEGER NOT NULL CHECK (quantity > 0),
                    per_buyer_limit INTEGER NOT NULL CHECK (per_buyer_limit > 0),
                    sold INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0 AND sold <= quantity),
                    starts_at INTEGER NOT NULL,
                    ends_at INTEGER NOT NULL CHECK (ends_at > starts_at),
                    created_at INTEGER NOT NULL,
                    closed_at INTEGER)
                """,
                "CREATE INDEX flash_sales_by_vendor ON flash_sales(vendor_id, id)",
                """
                CREATE TABLE flash_sale_orders (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    order_id TEXT NOT NULL UNIQUE,
                    sale_id INTEGER NOT NULL REFERENCES flash_sales(id) ON DELETE CASCADE,
                    buyer_id TEXT NOT NULL,
                    n INTEGER NOT NULL CHECK (n > 0),
                    request_key TEXT NOT NULL,
                    admitted_at INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    UNIQUE (sale_id, buyer_id, n))
                """,
                "CREATE INDEX flash_sale_orders_by_sale ON flash_sale_orders(sale_id, seq)",
            ],
            postgres: [
                """
                CREATE TABLE flash_sales (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    vendor_id BIGINT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    product_id BIGINT REFERENCES products(id) ON DELETE SET NULL,
                    product_name TEXT NOT NULL,
                    price_minor BIGINT NOT NULL,
                    currency TEXT NOT NULL,
                    quantity BIGINT NOT NULL CHECK (quantity > 0),
                    per_buyer_limit BIGINT NOT NULL CHECK (per_buyer_limit > 0),
                    sold BIGINT NOT NULL DEFAULT 0 CHECK (sold >= 0 AND sold <= quantity),
                    starts_at BIGINT NOT NULL,
                    ends_at BIGINT NOT NULL CHECK (ends_at > starts_at),
                    created_at BIGINT NOT NULL,
                    closed_at BIGINT)
                """,
                "CREATE INDEX flash_sales_by_vendor ON flash_sales(vendor_id, id)",
                """
                CREATE TABLE flash_sale_orders (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    order_id TEXT NOT NULL UNIQUE,
                    sale_id BIGINT NOT NULL REFERENCES flash_sales(id) ON DELETE CASCADE,
                    buyer_id TEXT NOT NULL,
                    n BIGINT NOT NULL CHECK (n > 0),
                    request_key TEXT NOT NULL,
                    admitted_at BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    UNIQUE (sale_id, buyer_id, n))
                """,
                "CREATE INDEX flash_sale_orders_by_sale ON flash_sale_orders(sale_id, seq)",
            ]
        ),
        Migration(
            version: 5, name: "create wallets, coupons and checkout sagas",
            sqlite: [
                """
                CREATE TABLE wallets (
                    buyer_id TEXT PRIMARY KEY,
                    balance_minor INTEGER NOT NULL CHECK (balance_minor >= 0),
                    held_minor INTEGER NOT NULL CHECK (held_minor >= 0),
                    captured_minor INTEGER NOT NULL CHECK (captured_minor >= 0),
                    updated_at INTEGER NOT NULL)
                """,
                """
                CREATE TABLE wallet_ledger (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    buyer_id TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('credit', 'hold', 'capture', 'release')),
                    amount_minor INTEGER NOT NULL,
                    checkout_id TEXT,
                    vendor_id INTEGER,
                    created_at INTEGER NOT NULL)
                """,
                "CREATE INDEX wallet_ledger_by_buyer ON wallet_ledger(buyer_id, id)",
                """
                CREATE TABLE coupons (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    vendor_id INTEGER NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    code TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('percent', 'fixed')),
                    value INTEGER NOT NULL CHECK (value > 0),
                    min_order_minor INTEGER NOT NULL,
                    max_uses INTEGER NOT NULL,
                    uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
                    expires_at INTEGER,
                    created_at INTEGER NOT NULL,
                    UNIQUE (vendor_id, code))
                """,
                """
                CREATE TABLE checkouts (
                    id TEXT PRIMARY KEY,
                    vendor_id INTEGER NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    buyer_id TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('in_progress', 'confirmed', 'failed')),
                    subtotal_minor INTEGER NOT NULL,
                    discount_minor INTEGER NOT NULL,
                    total_minor INTEGER NOT NULL CHECK (total_minor >= 0),
                    currency TEXT NOT NULL,
                    coupon_id INTEGER REFERENCES coupons(id) ON DELETE SET NULL,
                    coupon_code TEXT,
                    deadline_at INTEGER NOT NULL,
                    failure_reason TEXT,
                    lease_owner TEXT,
                    lease_until INTEGER,
                    next_attempt_at INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL)
                """,
                "CREATE INDEX checkouts_due ON checkouts(status, next_attempt_at)",
                """
                CREATE TABLE checkout_items (
                    checkout_id TEXT NOT NULL REFERENCES checkouts(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    product_id INTEGER REFERENCES products(id) ON DELETE SET NULL,
                    name TEXT NOT NULL,
                    unit_price_minor INTEGER NOT NULL,
                    quantity INTEGER NOT NULL CHECK (quantity > 0),
                    PRIMARY KEY (checkout_id, position))
                """,
                """
                CREATE TABLE payments (
                    checkout_id TEXT PRIMARY KEY REFERENCES checkouts(id) ON DELETE CASCADE,
                    amount_minor INTEGER NOT NULL,
                    created_at INTEGER NOT NULL)
                """,
                """
                CREATE TABLE checkout_requests (
                    buyer_id TEXT NOT NULL,
                    idempotency_key TEXT NOT NULL,
                    checkout_id TEXT,
                    denial_code TEXT,
                    denial_message TEXT,
                    denial_status INTEGER,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (buyer_id, idempotency_key))
                """,
            ],
            postgres: [
                """
                CREATE TABLE wallets (
                    buyer_id TEXT PRIMARY KEY,
                    balance_minor BIGINT NOT NULL CHECK (balance_minor >= 0),
                    held_minor BIGINT NOT NULL CHECK (held_minor >= 0),
                    captured_minor BIGINT NOT NULL CHECK (captured_minor >= 0),
                    updated_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE wallet_ledger (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    buyer_id TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('credit', 'hold', 'capture', 'release')),
                    amount_minor BIGINT NOT NULL,
                    checkout_id TEXT,
                    vendor_id BIGINT,
                    created_at BIGINT NOT NULL)
                """,
                "CREATE INDEX wallet_ledger_by_buyer ON wallet_ledger(buyer_id, id)",
                """
                CREATE TABLE coupons (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    vendor_id BIGINT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    code TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('percent', 'fixed')),
                    value BIGINT NOT NULL CHECK (value > 0),
                    min_order_minor BIGINT NOT NULL,
                    max_uses BIGINT NOT NULL,
                    uses BIGINT NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
                    expires_at BIGINT,
                    created_at BIGINT NOT NULL,
                    UNIQUE (vendor_id, code))
                """,
                """
                CREATE TABLE checkouts (
                    id TEXT PRIMARY KEY,
                    vendor_id BIGINT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    buyer_id TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('in_progress', 'confirmed', 'failed')),
                    subtotal_minor BIGINT NOT NULL,
                    discount_minor BIGINT NOT NULL,
                    total_minor BIGINT NOT NULL CHECK (total_minor >= 0),
                    currency TEXT NOT NULL,
                    coupon_id BIGINT REFERENCES coupons(id) ON DELETE SET NULL,
                    coupon_code TEXT,
                    deadline_at BIGINT NOT NULL,
                    failure_reason TEXT,
                    lease_owner TEXT,
                    lease_until BIGINT,
                    next_attempt_at BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL)
                """,
                "CREATE INDEX checkouts_due ON checkouts(status, next_attempt_at)",
                """
                CREATE TABLE checkout_items (
                    checkout_id TEXT NOT NULL REFERENCES checkouts(id) ON DELETE CASCADE,
                    position BIGINT NOT NULL,
                    product_id BIGINT REFERENCES products(id) ON DELETE SET NULL,
                    name TEXT NOT NULL,
                    unit_price_minor BIGINT NOT NULL,
                    quantity BIGINT NOT NULL CHECK (quantity > 0),
                    PRIMARY KEY (checkout_id, position))
                """,
                """
                CREATE TABLE payments (
                    checkout_id TEXT PRIMARY KEY REFERENCES checkouts(id) ON DELETE CASCADE,
                    amount_minor BIGINT NOT NULL,
                    created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE checkout_requests (
                    buyer_id TEXT NOT NULL,
                    idempotency_key TEXT NOT NULL,
                    checkout_id TEXT,
                    denial_code TEXT,
                    denial_message TEXT,
                    denial_status BIGINT,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (buyer_id, idempotency_key))
                """,
            ]
        ),
    ]
}

/// Applies ``Migrations/all`` to a database. Safe to run from several processes at once: on
/// PostgreSQL each step holds an advisory lock and re-checks what is applied.
public struct Migrator: Sendable {
    let database: any SQLDatabase
    let migrations: [Migration]

    public init(database: any SQLDatabase, migrations: [Migration] = Migrations.all) {
        self.database = database
        self.migrations = migrations
    }

    /// Versions already applied, ascending.
    public func appliedVersions() async throws -> [Int] {
        try await ensureLedger()
        return try await database.read("SELECT version FROM schema_migrations ORDER BY version").map { Int(try $0.int("version")) }
    }

    public func pending() async throws -> [Migration] {
        let applied = Set(try await appliedVersions())
        return migrations.filter { !applied.contains($0.version) }
    }

    /// Applies every pending migration up to `target` (all by default); returns those applied now.
    @discardableResult
    public func migrate(upTo target: Int? = nil) async throws -> [Migration] {
        var applied: [Migration] = []
        for migration in try await pending() where migration.version <= (target ?? Int.max) {
            let ran = try await database.transaction { transaction in
                try await lock(transaction)
                let done = try await transaction.first("SELECT version FROM schema_migrations WHERE version = \(migration.version)")
                guard done == nil else { return false }
                for statement in migration.statements(for: database.dialect) {
                    try await transaction.query(SQL(stringLiteral: statement))
                }
                try await transaction.query("""
                    INSERT INTO schema_migrations (version, name, applied_at)
                    VALUES (\(migration.version), \(migration.name), \(Date()))
                    """)
                return true
            }
            if ran { applied.append(migration) }
        }
        return applied
    }

    /// Throws unless the schema is exactly what this binary expects.
    public func verifyUpToDate() async throws {
        let applied = try await appliedVersions()
        if let newest = applied.last, newest > (migrations.last?.version ?? 0) {
            throw SQLDatabaseError.schemaNewerThanBinary(version: newest)
        }
        let pending = try await pending()
        guard pending.isEmpty else {
            throw SQLDatabaseError.schemaOutOfDate(pending: pending.map { "\($0.version) \($0.name)" })
        }
    }

    private func ensureLedger() async throws {
        try await database.transaction { transaction in
            try await lock(transaction)
            try await transaction.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at BIGINT NOT NULL)
                """)
        }
    }

    private func lock(_ transaction: any SQLTransaction) async throws {
        if database.dialect == .postgres {
            try await transaction.query("SELECT pg_advisory_xact_lock(7310451)")
        }
    }
}

