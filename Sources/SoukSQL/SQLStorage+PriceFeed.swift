import Foundation
import SoukCore

/// The price history table, and the price log used when there is no Redis (embedded mode).
extension SQLStorage: PriceHistory, PriceFollowers {
    public func apply(_ ticks: [PriceTick]) async throws {
        // One price per item and time: the last one of the batch wins, as it would applied one by one.
        var unique: [String: PriceTick] = [:]
        for tick in ticks { unique["\(tick.item)|\(tick.at)"] = tick }
        let rows = Array(unique.values)
        guard !rows.isEmpty else { return }
        try await database.transaction { transaction in
            for chunk in stride(from: 0, to: rows.count, by: 500).map({ rows[$0..<min($0 + 500, rows.count)] }) {
                var sql: SQL = "INSERT INTO price_ticks (item, at, price_minor) VALUES "
                for (index, tick) in chunk.enumerated() {
                    if index > 0 { sql.append(", ") }
                    sql.append("(\(tick.item), \(tick.at), \(tick.priceMinor))")
                }
                sql.append(" ON CONFLICT (item, at) DO UPDATE SET price_minor = excluded.price_minor")
                try await transaction.query(sql)
            }
        }
    }

    public func ticks(item: String, from: Int64, to: Int64, limit: Int) async throws -> [PriceTick] {
        // The newest `limit` of the range, returned oldest first.
        try await database.read("""
            SELECT at, price_minor FROM price_ticks WHERE item = \(item) AND at >= \(from) AND at <= \(to)
            ORDER BY at DESC LIMIT \(limit)
            """).reversed().map { PriceTick(item: item, at: try $0.int("at"), priceMinor: try $0.int("price_minor")) }
    }

    public func latest(item: String) async throws -> PriceTick? {
        try await database.readFirst("SELECT at, price_minor FROM price_ticks WHERE item = \(item) ORDER BY at DESC LIMIT 1")
            .map { PriceTick(item: item, at: try $0.int("at"), priceMinor: try $0.int("price_minor")) }
    }

    public func follow(_ latest: [PriceTick]) async throws -> Set<Int64> {
        var vendors: Set<Int64> = []
        let now = Date()
        for tick in latest {
            let rows = try await database.write("""
                UPDATE products SET price_minor = \(tick.priceMinor), price_feed_at = \(tick.at), updated_at = \(now)
                WHERE price_feed_item = \(tick.item) AND (price_feed_at IS NULL OR price_feed_at < \(tick.at))
                RETURNING vendor_id
                """)
            for row in rows { vendors.insert(try row.int("vendor_id")) }
        }
        return vendors
    }

    public func followedItems() async throws -> Set<String> {
        Set(try await database.read("SELECT DISTINCT price_feed_item FROM products WHERE price_feed_item IS NOT NULL").map { try $0.string("price_feed_item") })
    }
}

/// The price log in SQL: one row per published chunk, positions handed out under the head row's
/// lock so they become visible in increasing order, and one offset per consumer group. Readers of
/// one group share the offset; this backend is for embedded mode's single consumer.
public struct SQLPriceFeedLog: PriceFeedLog {
    let database: any SQLDatabase
    let group: String
    let chunkSize: Int

    public init(database: any SQLDatabase, group: String = "appliers", chunkSize: Int = 1_000) {
        self.database = database
        self.group = group
        self.chunkSize = chunkSize
    }

    public func checkpoint(source: String) async throws -> Int64? {
        try await database.readFirst("SELECT interval_at FROM price_feed_checkpoints WHERE source = \(source)").map { try $0.int("interval_at") }
    }

    public func publish(_ batch: PriceBatch) async throws -> Bool {
        let chunks = stride(from: 0, to: batch.ticks.count, by: chunkSize).map { batch.ticks[$0..<min($0 + chunkSize, batch.ticks.count)] }
        return try await database.transaction { transaction in
            // Taking the head row's lock first orders concurrent publishers (PostgreSQL; SQLite has one writer).
            let head = try await transaction.query("UPDATE price_log_head SET position = position WHERE id = 1 RETURNING position")[0].int("position")
            if let current = try await transaction.first("SELECT interval_at FROM price_feed_checkpoints WHERE source = \(batch.source)"),
               try current.int("interval_at") >= batch.interval {
                return false
            }
            for (offset, chunk) in chunks.enumerated() {
                try await transaction.query("""
                    INSERT INTO price_log (position, source, interval_at, ticks)
                    VALUES (\(head + Int64(offset) + 1), \(batch.source), \(batch.interval), \(PriceTickCoding.encode(chunk)))
                    """)
            }
            try await transaction.query("UPDATE price_log_head SET position = \(head + Int64(chunks.count)) WHERE id = 1")
            try await transaction.query("""
                INSERT INTO price_feed_checkpoints (source, interval_at) VALUES (\(batch.source), \(batch.interval))
                ON CONFLICT (source) DO UPDATE SET interval_at = excluded.interval_at
                """)
            return true
        }
    }

    public func read(consumer: String, count: Int, wait: Duration) async throws -> [PriceLogEntry] {
        let deadline = ContinuousClock.now + wait
        while true {
            let rows = try await database.read("""
                SELECT position, source, interval_at, ticks FROM price_log
                WHERE position > COALESCE((SELECT position FROM price_log_offsets WHERE consumer_group = \(group)), 0)
                ORDER BY position LIMIT \(count)
                """)
            if !rows.isEmpty || ContinuousClock.now >= deadline {
                return try rows.map { row in
                    let text = try row.string("ticks")
                    guard let ticks = PriceTickCoding.decode(text) else {
                        throw SQLDatabaseError.typeMismatch(column: "ticks", expected: "item,at,price lines")
                    }
                    return PriceLogEntry(id: String(try row.int("position")), source: try row.string("source"), interval: try row.int("interval_at"), ticks: ticks)
                }
            }
            try await Task.sleep(for: min(.milliseconds(50), deadline - ContinuousClock.now))
        }
    }

    public func acknowledge(_ entries: [PriceLogEntry]) async throws {
        guard let newest = entries.compactMap({ Int64($0.id) }).max() else { return }
        try await database.transaction { transaction in
            try await transaction.query("""
                INSERT INTO price_log_offsets (consumer_group, position) VALUES (\(group), \(newest))
                ON CONFLICT (consumer_group) DO UPDATE SET position = excluded.position
                WHERE price_log_offsets.position < excluded.position
                """)
            // Entries every group has applied are no longer needed.
            try await transaction.query("DELETE FROM price_log WHERE position <= (SELECT MIN(position) FROM price_log_offsets)")
        }
    }
}
