import Foundation
import SoukCore

/// Product search on the engine's own full-text index: PostgreSQL `tsvector` (stemmed, name weighted
/// above description) with `pg_trgm` word similarity for typos; SQLite FTS5 (porter stemming, bm25)
/// with a trigram table whose candidates are ranked here the way pg_trgm would. Both indexes are
/// written by the statement that writes the product, so a search never misses a committed change.
extension SQLStorage: ProductSearch {
    static let qualifiedProductColumns = "p.id, p.vendor_id, p.name, p.description, p.price_minor, p.currency, p.stock, p.available, p.status, p.created_at, p.updated_at, p.price_feed_item, p.image_key, p.thumbnail_sizes, v.username AS vendor_username"

    /// Candidates ranked in Swift for typo matching (SQLite) and suggestions are bounded, so a short
    /// or common prefix costs the same as a rare one.
    static let candidateLimit = 200

    public func search(_ query: SearchQuery) async throws -> [SearchHit] {
        switch database.dialect {
        case .postgres: return try await postgresSearch(query)
        case .sqlite:
            let hits = try await sqliteSearch(query)
            if !hits.isEmpty || query.offset > 0 { return hits }
            return try await sqliteTypoSearch(query)
        }
    }

    public func suggestionNames(limit: Int) async throws -> [String] {
        try await database.read("SELECT name FROM products WHERE available = \(true) ORDER BY id DESC LIMIT \(limit)").map { try $0.string("name") }
    }

    // MARK: PostgreSQL

    /// `term:* & term:*` (restricted to the name's weight for suggestions); terms hold only letters
    /// and digits, so nothing in them is tsquery syntax.
    static func prefixQuery(_ terms: [String], nameOnly: Bool = false) -> String {
        terms.map { "\($0):*\(nameOnly ? "A" : "")" }.joined(separator: " & ")
    }

    func postgresSearch(_ query: SearchQuery) async throws -> [SearchHit] {
        let tsquery = Self.prefixQuery(query.terms)
        var sql: SQL = "SELECT "
        sql.append(SQL(stringLiteral: Self.qualifiedProductColumns))
        sql.append("""
            , ts_rank(p.search_document, to_tsquery('english', \(tsquery))) AS score
            FROM products p JOIN vendors v ON v.id = p.vendor_id
            WHERE p.search_document @@ to_tsquery('english', \(tsquery)) AND p.available = TRUE
            """)
        sql.append(Self.filters(query))
        sql.append(" ORDER BY score DESC, p.id DESC LIMIT \(query.limit + 1) OFFSET \(query.offset)")
        let hits = try await database.read(sql).map(Self.hit)
        if !hits.isEmpty || query.offset > 0 { return hits }
        return try await postgresTypoSearch(query)
    }

    /// Nothing matched word for word: names whose words are close to the query's (pg_trgm).
    func postgresTypoSearch(_ query: SearchQuery) async throws -> [SearchHit] {
        let phrase = query.terms.joined(separator: " ")
        var sql: SQL = "SELECT "
        sql.append(SQL(stringLiteral: Self.qualifiedProductColumns))
        sql.append("""
            , word_similarity(\(phrase), lower(p.name)) AS score
            FROM products p JOIN vendors v ON v.id = p.vendor_id
            WHERE \(phrase) <% lower(p.name) AND p.available = TRUE
            """)
        sql.append(Self.filters(query))
        sql.append(" ORDER BY score DESC, p.id DESC LIMIT \(query.limit + 1)")
        return try await postgresRead(sql).map(Self.hit)
    }

    /// pg_trgm keeps a word when its similarity reaches 0.6 by default, which misses a dropped
    /// letter in a short word ("choclate" scores 0.58): the threshold is lowered for this statement
    /// only, which takes a transaction.
    func postgresRead(_ sql: SQL) async throws -> [SQLRow] {
        try await database.transaction { transaction in
            try await transaction.query("SELECT set_config('pg_trgm.word_similarity_threshold', '0.5', true)")
            return try await transaction.query(sql)
        }
    }

    // MARK: SQLite

    func sqliteSearch(_ query: SearchQuery) async throws -> [SearchHit] {
        var sql: SQL = "SELECT "
        sql.append(SQL(stringLiteral: Self.qualifiedProductColumns))
        sql.append("""
            , bm25(products_fts, 10.0, 1.0) AS score
            FROM products_fts JOIN products p ON p.id = products_fts.rowid JOIN vendors v ON v.id = p.vendor_id
            WHERE products_fts MATCH \(query.terms.map { "\"\($0)\"*" }.joined(separator: " AND ")) AND p.available = \(true)
            """)
        sql.append(Self.filters(query))
        sql.append(" ORDER BY score, p.id DESC LIMIT \(query.limit + 1) OFFSET \(query.offset)")
        return try await database.read(sql).map(Self.hit)
    }

    /// Nothing matched word for word: names sharing trigrams with the terms, kept when every term
    /// nearly matches one of the name's words.
    func sqliteTypoSearch(_ query: SearchQuery) async throws -> [SearchHit] {
        let candidates = try await trigramCandidates(query.terms, filters: Self.filters(query))
        let phrase = query.terms.joined(separator: " ")
        let names = Self.ranked(candidates.map(\.name), phrase: phrase, terms: query.terms)
        let order = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        return candidates.compactMap { candidate in order[candidate.name].map { ($0, candidate.hit) } }
            .sorted { $0.0 < $1.0 }.prefix(query.limit + 1).map(\.1)
    }

    func trigramCandidates(_ terms: [String], filters: SQL = "") async throws -> [(name: String, hit: SearchHit)] {
        let trigrams = Set(terms.flatMap { term -> [String] in
            let characters = Array(term)
            guard characters.count >= 3 else { return [] }
            return (0...(characters.count - 3)).map { String(characters[$0..<$0 + 3]) }
        })
        guard !trigrams.isEmpty else { return [] }
        var sql: SQL = "SELECT "
        sql.append(SQL(stringLiteral: Self.qualifiedProductColumns))
        sql.append("""
             FROM products_trigrams t JOIN products p ON p.id = t.rowid JOIN vendors v ON v.id = p.vendor_id
            WHERE products_trigrams MATCH \(trigrams.sorted().map { "\"\($0)\"" }.joined(separator: " OR ")) AND p.available = \(true)
            """)
        sql.append(filters)
        sql.append(" ORDER BY bm25(products_trigrams) LIMIT \(Self.candidateLimit)")
        return try await database.read(sql).map { row in
            let hit = try Self.hit(row)
            return (hit.product.name, hit)
        }
    }

    /// Names whose words nearly match every term, best first (as pg_trgm's `<%` with its default 0.6
    /// threshold would keep them, relaxed a little for short words).
    static func ranked(_ names: [String], phrase: String, terms: [String]) -> [String] {
        names.compactMap { name -> (String, Double)? in
            let scores = terms.map { term in
                SearchQuery.terms(of: name).contains { $0.hasPrefix(term) } ? 1.0 : Trigrams.wordSimilarity(term, in: name)
            }
            guard scores.allSatisfy({ $0 >= 0.4 }) else { return nil }
            return (name, scores.reduce(0, +) / Double(scores.count))
        }
        .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0.count < $1.0.count }
        .map(\.0)
    }

    // MARK: Shared

    static func filters(_ query: SearchQuery) -> SQL {
        var sql: SQL = ""
        if let vendor = query.vendor { sql.append(" AND v.username = \(vendor)") }
        if let minimum = query.minPriceMinor { sql.append(" AND p.price_minor >= \(minimum)") }
        if let maximum = query.maxPriceMinor { sql.append(" AND p.price_minor <= \(maximum)") }
        if query.inStockOnly { sql.append(" AND p.stock > 0") }
        return sql
    }

    static func hit(_ row: SQLRow) throws -> SearchHit {
        SearchHit(product: try product(row), vendorUsername: try row.string("vendor_username"))
    }
}
