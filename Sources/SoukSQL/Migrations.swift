import Foundation

/// One numbered schema change, applied once, in order, in a transaction. Its statements are
/// written once; the few types that differ between the dialects are placeholders:
/// `@ID` (an auto-assigned primary key), `@INT` (a 64-bit integer) and `@BOOL`.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    let statements: [String]
    /// For the rare change that each engine does its own way (search indexes).
    let dialectStatements: [SQLDialect: [String]]

    init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
        self.dialectStatements = [:]
    }

    init(version: Int, name: String, sqlite: [String], postgres: [String]) {
        self.version = version
        self.name = name
        self.statements = []
        self.dialectStatements = [.sqlite: sqlite, .postgres: postgres]
    }

    func statements(for dialect: SQLDialect) -> [String] {
        let statements = dialectStatements[dialect] ?? statements
        let types: [(String, String)] = switch dialect {
        case .sqlite: [("@ID", "INTEGER PRIMARY KEY AUTOINCREMENT"), ("@INT", "INTEGER"), ("@BOOL", "INTEGER")]
        case .postgres: [("@ID", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"), ("@INT", "BIGINT"), ("@BOOL", "BOOLEAN")]
        }
        return statements.map { statement in types.reduce(statement) { $0.replacingOccurrences(of: $1.0, with: $1.1) } }
    }
}

/// Every migration Souk has, oldest first. Never edit one that has shipped: add a new one.
public enum Migrations {
    public static let all: [Migration] = [
        Migration(
            version: 1, name: "create vendors and sessions",
            statements: [
                """
                CREATE TABLE vendors (
                    id @ID,
                    username TEXT NOT NULL UNIQUE,
                    store_name TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    created_at @INT NOT NULL)
                """,
                """
                CREATE TABLE sessions (
                    token_hash TEXT PRIMARY KEY,
                    vendor_id @INT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    expires_at @INT NOT NULL,
                    created_at @INT NOT NULL)
                """,
                "CREATE INDEX sessions_by_expiry ON sessions(expires_at)",
            ]
        ),
        Migration(
            version: 2, name: "create products",
            statements: [
                """
                CREATE TABLE products (
                    id @ID,
                    vendor_id @INT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL,
                    price_minor @INT NOT NULL CHECK (price_minor >= 0),
                    currency TEXT NOT NULL,
                    stock @INT NOT NULL CHECK (stock >= 0),
                    available @BOOL NOT NULL,
                    status TEXT NOT NULL,
                    created_at @INT NOT NULL,
                    updated_at @INT NOT NULL)
                """,
                "CREATE INDEX products_by_vendor ON products(vendor_id, id)",
            ]
        ),
        Migration(
            version: 3, name: "create orders and order items",
            statements: [
                """
                CREATE TABLE orders (
                    id @ID,
                    vendor_id @INT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    reference TEXT NOT NULL UNIQUE,
                    status TEXT NOT NULL CHECK (status IN ('placed', 'confirmed', 'shipped', 'delivered', 'cancelled')),
                    customer_name TEXT NOT NULL,
                    customer_phone TEXT NOT NULL,
                    customer_address TEXT NOT NULL,
                    total_minor @INT NOT NULL CHECK (total_minor >= 0),
                    currency TEXT NOT NULL,
                    created_at @INT NOT NULL,
                    updated_at @INT NOT NULL)
                """,
                "CREATE INDEX orders_by_vendor ON orders(vendor_id, id)",
                """
                CREATE TABLE order_items (
                    order_id @INT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
                    position @INT NOT NULL,
                    product_id @INT REFERENCES products(id) ON DELETE SET NULL,
                    name TEXT NOT NULL,
                    unit_price_minor @INT NOT NULL,
                    quantity @INT NOT NULL CHECK (quantity > 0),
                    PRIMARY KEY (order_id, position))
                """,
                "CREATE INDEX order_items_by_product ON order_items(product_id)",
            ]
        ),
        Migration(
            version: 4, name: "create flash sales and their orders",
            statements: [
                """
                CREATE TABLE flash_sales (
                    id @ID,
                    vendor_id @INT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    product_id @INT REFERENCES products(id) ON DELETE SET NULL,
                    product_name TEXT NOT NULL,
                    price_minor @INT NOT NULL,
                    currency TEXT NOT NULL,
                    quantity @INT NOT NULL CHECK (quantity > 0),
                    per_buyer_limit @INT NOT NULL CHECK (per_buyer_limit > 0),
                    sold @INT NOT NULL DEFAULT 0 CHECK (sold >= 0 AND sold <= quantity),
                    starts_at @INT NOT NULL,
                    ends_at @INT NOT NULL CHECK (ends_at > starts_at),
                    created_at @INT NOT NULL,
                    closed_at @INT)
                """,
                "CREATE INDEX flash_sales_by_vendor ON flash_sales(vendor_id, id)",
                """
                CREATE TABLE flash_sale_orders (
                    seq @ID,
                    order_id TEXT NOT NULL UNIQUE,
                    sale_id @INT NOT NULL REFERENCES flash_sales(id) ON DELETE CASCADE,
                    buyer_id TEXT NOT NULL,
                    n @INT NOT NULL CHECK (n > 0),
                    request_key TEXT NOT NULL,
                    admitted_at @INT NOT NULL,
                    created_at @INT NOT NULL,
                    UNIQUE (sale_id, buyer_id, n))
                """,
                "CREATE INDEX flash_sale_orders_by_sale ON flash_sale_orders(sale_id, seq)",
            ]
        ),
        Migration(
            version: 5, name: "create wallets, coupons and checkout sagas",
            statements: [
                """
                CREATE TABLE wallets (
                    buyer_id TEXT PRIMARY KEY,
                    balance_minor @INT NOT NULL CHECK (balance_minor >= 0),
                    held_minor @INT NOT NULL CHECK (held_minor >= 0),
                    captured_minor @INT NOT NULL CHECK (captured_minor >= 0),
                    updated_at @INT NOT NULL)
                """,
                """
                CREATE TABLE wallet_ledger (
                    id @ID,
                    buyer_id TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('credit', 'hold', 'capture', 'release')),
                    amount_minor @INT NOT NULL,
                    checkout_id TEXT,
                    vendor_id @INT,
                    created_at @INT NOT NULL)
                """,
                "CREATE INDEX wallet_ledger_by_buyer ON wallet_ledger(buyer_id, id)",
                """
                CREATE TABLE coupons (
                    id @ID,
                    vendor_id @INT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    code TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('percent', 'fixed')),
                    value @INT NOT NULL CHECK (value > 0),
                    min_order_minor @INT NOT NULL,
                    max_uses @INT NOT NULL,
                    uses @INT NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
                    expires_at @INT,
                    created_at @INT NOT NULL,
                    UNIQUE (vendor_id, code))
                """,
                """
                CREATE TABLE checkouts (
                    id TEXT PRIMARY KEY,
                    vendor_id @INT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    buyer_id TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('in_progress', 'confirmed', 'failed')),
                    subtotal_minor @INT NOT NULL,
                    discount_minor @INT NOT NULL,
                    total_minor @INT NOT NULL CHECK (total_minor >= 0),
                    currency TEXT NOT NULL,
                    coupon_id @INT REFERENCES coupons(id) ON DELETE SET NULL,
                    coupon_code TEXT,
                    deadline_at @INT NOT NULL,
                    failure_reason TEXT,
                    lease_owner TEXT,
                    lease_until @INT,
                    next_attempt_at @INT NOT NULL,
                    created_at @INT NOT NULL,
                    updated_at @INT NOT NULL)
                """,
                "CREATE INDEX checkouts_due ON checkouts(status, next_attempt_at)",
                """
                CREATE TABLE checkout_items (
                    checkout_id TEXT NOT NULL REFERENCES checkouts(id) ON DELETE CASCADE,
                    position @INT NOT NULL,
                    product_id @INT REFERENCES products(id) ON DELETE SET NULL,
                    name TEXT NOT NULL,
                    unit_price_minor @INT NOT NULL,
                    quantity @INT NOT NULL CHECK (quantity > 0),
                    PRIMARY KEY (checkout_id, position))
                """,
                """
                CREATE TABLE payments (
                    checkout_id TEXT PRIMARY KEY REFERENCES checkouts(id) ON DELETE CASCADE,
                    amount_minor @INT NOT NULL,
                    created_at @INT NOT NULL)
                """,
                """
                CREATE TABLE checkout_requests (
                    buyer_id TEXT NOT NULL,
                    idempotency_key TEXT NOT NULL,
                    checkout_id TEXT,
                    denial_code TEXT,
                    denial_message TEXT,
                    denial_status @INT,
                    created_at @INT NOT NULL,
                    PRIMARY KEY (buyer_id, idempotency_key))
                """,
            ]
        ),
        Migration(
            version: 6, name: "create the price feed log, checkpoints and history; products follow feed items",
            statements: [
                """
                CREATE TABLE price_ticks (
                    item TEXT NOT NULL,
                    at @INT NOT NULL,
                    price_minor @INT NOT NULL CHECK (price_minor > 0),
                    PRIMARY KEY (item, at))
                """,
                """
                CREATE TABLE price_log (
                    position @INT PRIMARY KEY,
                    source TEXT NOT NULL,
                    interval_at @INT NOT NULL,
                    ticks TEXT NOT NULL)
                """,
                // One row whose lock orders publishers, so positions become visible in order.
                "CREATE TABLE price_log_head (id @INT PRIMARY KEY, position @INT NOT NULL)",
                "INSERT INTO price_log_head (id, position) VALUES (1, 0)",
                "CREATE TABLE price_log_offsets (consumer_group TEXT PRIMARY KEY, position @INT NOT NULL)",
                "CREATE TABLE price_feed_checkpoints (source TEXT PRIMARY KEY, interval_at @INT NOT NULL)",
                "ALTER TABLE products ADD COLUMN price_feed_item TEXT",
                "ALTER TABLE products ADD COLUMN price_feed_at @INT",
                "CREATE INDEX products_by_price_feed_item ON products(price_feed_item)",
            ]
        ),
        Migration(
            version: 7, name: "search products: full text, trigrams; kept in the product's own transaction",
            sqlite: [
                // External-content FTS5 tables over products, kept in step by triggers, which run
                // inside the statement (and so the transaction) that changes the product.
                "CREATE VIRTUAL TABLE products_fts USING fts5(name, description, content='products', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
                "CREATE VIRTUAL TABLE products_trigrams USING fts5(name, content='products', content_rowid='id', tokenize='trigram')",
                "INSERT INTO products_fts(products_fts) VALUES ('rebuild')",
                "INSERT INTO products_trigrams(products_trigrams) VALUES ('rebuild')",
                """
                CREATE TRIGGER products_search_insert AFTER INSERT ON products BEGIN
                    INSERT INTO products_fts(rowid, name, description) VALUES (new.id, new.name, new.description);
                    INSERT INTO products_trigrams(rowid, name) VALUES (new.id, new.name);
                END
                """,
                """
                CREATE TRIGGER products_search_delete AFTER DELETE ON products BEGIN
                    INSERT INTO products_fts(products_fts, rowid, name, description) VALUES ('delete', old.id, old.name, old.description);
                    INSERT INTO products_trigrams(products_trigrams, rowid, name) VALUES ('delete', old.id, old.name);
                END
                """,
                """
                CREATE TRIGGER products_search_update AFTER UPDATE OF name, description ON products BEGIN
                    INSERT INTO products_fts(products_fts, rowid, name, description) VALUES ('delete', old.id, old.name, old.description);
                    INSERT INTO products_trigrams(products_trigrams, rowid, name) VALUES ('delete', old.id, old.name);
                    INSERT INTO products_fts(rowid, name, description) VALUES (new.id, new.name, new.description);
                    INSERT INTO products_trigrams(rowid, name) VALUES (new.id, new.name);
                END
                """,
            ],
            postgres: [
                "CREATE EXTENSION IF NOT EXISTS pg_trgm",
                // A generated column is computed in the statement that writes the row.
                """
                ALTER TABLE products ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', name), 'A') || setweight(to_tsvector('english', description), 'B')) STORED
                """,
                "CREATE INDEX products_search ON products USING GIN (search_document)",
                "CREATE INDEX products_name_trigrams ON products USING GIN (lower(name) gin_trgm_ops)",
            ]
        ),
        Migration(
            version: 8, name: "create jobs; products get an image and thumbnails",
            statements: [
                """
                CREATE TABLE jobs (
                    id TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'dead')),
                    attempts @INT NOT NULL DEFAULT 0,
                    run_at @INT NOT NULL,
                    lease_owner TEXT,
                    lease_until @INT,
                    last_error TEXT,
                    created_at @INT NOT NULL,
                    updated_at @INT NOT NULL)
                """,
                "CREATE INDEX jobs_due ON jobs(state, run_at)",
                "ALTER TABLE products ADD COLUMN image_key TEXT",
                "ALTER TABLE products ADD COLUMN thumbnail_sizes TEXT",
            ]
        ),
        Migration(
            version: 9, name: "count store page views per vendor and minute; index orders by time",
            statements: [
                """
                CREATE TABLE store_views (
                    vendor_id @INT NOT NULL,
                    minute @INT NOT NULL,
                    views @INT NOT NULL,
                    PRIMARY KEY (vendor_id, minute))
                """,
                "CREATE INDEX orders_by_vendor_time ON orders(vendor_id, created_at)",
                "CREATE INDEX checkouts_by_vendor_time ON checkouts(vendor_id, created_at)",
                "CREATE INDEX flash_sale_orders_by_time ON flash_sale_orders(sale_id, created_at)",
            ]
        ),
        Migration(
            // Credit was one wallet per buyer across all stores: a vendor could credit a buyer and
            // the buyer spend it at another store. Credit now belongs to the store that gave it.
            // An existing wallet goes to the store that credited it last.
            version: 10, name: "store credit belongs to one store",
            statements: [
                """
                CREATE TABLE store_credits (
                    vendor_id @INT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    buyer_id TEXT NOT NULL,
                    balance_minor @INT NOT NULL CHECK (balance_minor >= 0),
                    held_minor @INT NOT NULL CHECK (held_minor >= 0),
                    captured_minor @INT NOT NULL CHECK (captured_minor >= 0),
                    updated_at @INT NOT NULL,
                    PRIMARY KEY (vendor_id, buyer_id))
                """,
                """
                INSERT INTO store_credits (vendor_id, buyer_id, balance_minor, held_minor, captured_minor, updated_at)
                SELECT vendor_id, buyer_id, balance_minor, held_minor, captured_minor, updated_at FROM (
                    SELECT (SELECT l.vendor_id FROM wallet_ledger l WHERE l.buyer_id = w.buyer_id AND l.kind = 'credit' AND l.vendor_id IS NOT NULL
                            ORDER BY l.id DESC LIMIT 1) AS vendor_id,
                           w.buyer_id, w.balance_minor, w.held_minor, w.captured_minor, w.updated_at
                    FROM wallets w) moved
                WHERE vendor_id IS NOT NULL
                """,
                "DROP TABLE wallets",
                "CREATE INDEX wallet_ledger_by_vendor_buyer ON wallet_ledger(vendor_id, buyer_id, id)",
            ]
        ),
        Migration(
            // An idempotency key was bound to the buyer only: the same key with other items got the
            // first answer back. The key is now bound to what was asked (NULL for older rows).
            version: 11, name: "idempotency keys remember their request; flash sales by product",
            statements: [
                "ALTER TABLE checkout_requests ADD COLUMN request_fingerprint TEXT",
                // Hiding or deleting a product asks whether an open sale offers it.
                "CREATE INDEX flash_sales_by_product ON flash_sales(product_id)",
            ]
        ),
        Migration(
            // Buyers were whatever string a request named. Customers sign up once and buy from every
            // store; their sessions are signed tokens (the key is here, shared by every instance),
            // and a session ended early is listed until it would have expired.
            version: 12, name: "create customers, revoked customer sessions and signing keys",
            statements: [
                """
                CREATE TABLE customers (
                    id TEXT PRIMARY KEY,
                    email TEXT NOT NULL UNIQUE,
                    name TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    verified_at @INT,
                    created_at @INT NOT NULL)
                """,
                """
                CREATE TABLE revoked_customer_sessions (
                    session_id TEXT PRIMARY KEY,
                    expires_at @INT NOT NULL)
                """,
                """
                CREATE TABLE signing_keys (
                    name TEXT PRIMARY KEY,
                    key_hex TEXT NOT NULL,
                    created_at @INT NOT NULL)
                """,
            ]
        ),
        Migration(
            // The vendor's one orders list and the customer's "My orders" read every kind of order
            // by its owner and time; a store order placed signed in names its customer.
            version: 13, name: "store orders name their customer; every kind of order by owner and time",
            statements: [
                "ALTER TABLE orders ADD COLUMN customer_id TEXT",
                "CREATE INDEX orders_by_customer ON orders(customer_id, created_at)",
                "CREATE INDEX checkouts_by_vendor ON checkouts(vendor_id, created_at)",
                "CREATE INDEX checkouts_by_buyer ON checkouts(buyer_id, created_at)",
                "CREATE INDEX flash_sale_orders_by_buyer ON flash_sale_orders(buyer_id, admitted_at)",
            ]
        ),
        Migration(
            // A store order's client could not tell a lost answer from a lost order: the chaos run
            // counted hundreds of such unknowns. A key now names the request; a retry gets the order.
            version: 14, name: "store orders remember their idempotency keys",
            statements: [
                """
                CREATE TABLE order_requests (
                    vendor_id @INT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
                    idempotency_key TEXT NOT NULL,
                    request_fingerprint TEXT NOT NULL,
                    order_id @INT,
                    created_at @INT NOT NULL,
                    PRIMARY KEY (vendor_id, idempotency_key))
                """,
            ]
        ),
        Migration(
            // A limit per customer binds a person only if an account is one: a sale may admit
            // customers who proved their email with a code; mail goes out through a mailer port,
            // or into the outbox when no mail server is configured.
            version: 15, name: "email verification codes, the outbox, sales for verified customers",
            statements: [
                """
                CREATE TABLE email_codes (
                    customer_id TEXT PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
                    code_hash TEXT NOT NULL,
                    expires_at @INT NOT NULL,
                    attempts @INT NOT NULL,
                    sent_at @INT NOT NULL)
                """,
                """
                CREATE TABLE outbox (
                    id @ID,
                    recipient TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    body TEXT NOT NULL,
                    created_at @INT NOT NULL)
                """,
                "ALTER TABLE flash_sales ADD COLUMN verified_only @BOOL NOT NULL DEFAULT FALSE",
            ]
        ),
        Migration(
            // A flash sale sells below the list price: price_minor is what a buyer pays, the
            // product's price at creation is kept to show beside it (NULL: older sales, sold at it).
            version: 16, name: "flash-sale list prices",
            statements: [
                "ALTER TABLE flash_sales ADD COLUMN list_price_minor @INT",
            ]
        ),
        Migration(
            // A flash-sale order is held for its buyer until it is paid, with the shipping details
            // given at payment; its payment is a checkout saga linked to it (flash_order_id), and
            // flash_sales.paid counts the paid ones with the capture.
            version: 17, name: "flash-sale order payments",
            statements: [
                "ALTER TABLE flash_sale_orders ADD COLUMN status TEXT NOT NULL DEFAULT 'held'",
                "ALTER TABLE flash_sale_orders ADD COLUMN checkout_id TEXT",
                "ALTER TABLE flash_sale_orders ADD COLUMN ship_name TEXT",
                "ALTER TABLE flash_sale_orders ADD COLUMN ship_phone TEXT",
                "ALTER TABLE flash_sale_orders ADD COLUMN ship_address TEXT",
                "ALTER TABLE flash_sales ADD COLUMN paid @INT NOT NULL DEFAULT 0",
                "ALTER TABLE checkouts ADD COLUMN flash_order_id TEXT",
            ]
        ),
        Migration(
            // A held unit is the buyer's until hold_expires_at (admission + the sale's hold_seconds;
            // NULL: admitted before holds expired, kept for good). Expiring it is a compare-and-set
            // to 'expired' (at expired_at) that takes it out of `sold` and counts it in `expired`.
            version: 18, name: "flash-sale holds that expire",
            statements: [
                "ALTER TABLE flash_sales ADD COLUMN hold_seconds @INT NOT NULL DEFAULT 600",
                "ALTER TABLE flash_sales ADD COLUMN expired @INT NOT NULL DEFAULT 0",
                "ALTER TABLE flash_sale_orders ADD COLUMN hold_expires_at @INT",
                "ALTER TABLE flash_sale_orders ADD COLUMN expired_at @INT",
                "CREATE INDEX flash_sale_orders_expiring ON flash_sale_orders(hold_expires_at) WHERE status = 'held'",
            ]
        ),
        Migration(
            // A checkout paid by card carries the provider's token for the card (never its number)
            // and holds no store credit; its payment row says how it was paid; a failed one owes the
            // provider a release of its charge until one is acknowledged. The provider's events
            // are recorded once by their id, whatever the number of deliveries.
            version: 19, name: "card payments",
            statements: [
                "ALTER TABLE checkouts ADD COLUMN card_token TEXT",
                // 'owed' from the failure of a card checkout until the provider has undone its charge.
                "ALTER TABLE checkouts ADD COLUMN card_release TEXT",
                "CREATE INDEX checkouts_card_release_owed ON checkouts(id) WHERE card_release = 'owed'",
                "ALTER TABLE payments ADD COLUMN method TEXT NOT NULL DEFAULT 'credit'",
                """
                CREATE TABLE payment_events (
                    id TEXT PRIMARY KEY,
                    type TEXT NOT NULL,
                    checkout_id TEXT,
                    received_at @INT NOT NULL)
                """,
            ]
        ),
        Migration(
            // A paid flash-sale order the vendor cancels is refunded (its credit back, or its card's
            // charge owed back to the provider) and its unit returns to the product: `cancelled` at
            // cancelled_at, counted in flash_sales.refunded.
            // The ledger gains a `refund` kind: SQLite cannot change a CHECK, so the table is copied.
            version: 20, name: "flash-sale refunds",
            sqlite: [
                "ALTER TABLE flash_sales ADD COLUMN refunded @INT NOT NULL DEFAULT 0",
                "ALTER TABLE flash_sale_orders ADD COLUMN cancelled_at @INT",
                """
                CREATE TABLE wallet_ledger_v20 (
                    id @ID,
                    buyer_id TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('credit', 'hold', 'capture', 'release', 'refund')),
                    amount_minor @INT NOT NULL,
                    checkout_id TEXT,
                    vendor_id @INT,
                    created_at @INT NOT NULL)
                """,
                "INSERT INTO wallet_ledger_v20 (id, buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at) SELECT id, buyer_id, kind, amount_minor, checkout_id, vendor_id, created_at FROM wallet_ledger",
                "DROP TABLE wallet_ledger",
                "ALTER TABLE wallet_ledger_v20 RENAME TO wallet_ledger",
                "CREATE INDEX wallet_ledger_by_buyer ON wallet_ledger(buyer_id, id)",
                "CREATE INDEX wallet_ledger_by_vendor_buyer ON wallet_ledger(vendor_id, buyer_id, id)",
            ],
            postgres: [
                "ALTER TABLE flash_sales ADD COLUMN refunded @INT NOT NULL DEFAULT 0",
                "ALTER TABLE flash_sale_orders ADD COLUMN cancelled_at @INT",
                "ALTER TABLE wallet_ledger DROP CONSTRAINT wallet_ledger_kind_check",
                "ALTER TABLE wallet_ledger ADD CONSTRAINT wallet_ledger_kind_check CHECK (kind IN ('credit', 'hold', 'capture', 'release', 'refund'))",
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

