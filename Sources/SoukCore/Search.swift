import Foundation

/// A validated product search: words (matched as prefixes, stemmed, forgiving small typos) and
/// filters over every store's available products.
public struct SearchQuery: Sendable, Equatable {
    public let text: String
    /// The words of `text`, lowercased, letters and digits only; at most eight.
    public let terms: [String]
    public let vendor: String?
    public let minPriceMinor: Int64?
    public let maxPriceMinor: Int64?
    public let inStockOnly: Bool
    public let limit: Int
    public let offset: Int

    public static let maxLimit = 50
    public static let maxOffset = 10_000

    /// Every failing field is reported at once.
    public init(
        text: String?, vendor: String? = nil, minPriceMinor: Int64? = nil, maxPriceMinor: Int64? = nil,
        inStockOnly: Bool = false, limit: Int? = nil, offset: Int? = nil
    ) throws(SoukError) {
        var errors: [FieldError] = []
        let trimmed = (text ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let terms = Self.terms(of: trimmed)
        if let problem = Validate.text(trimmed, min: 1, max: 200) {
            errors.append(FieldError(field: "q", message: problem))
        } else if terms.isEmpty {
            errors.append(FieldError(field: "q", message: "must contain a letter or a digit"))
        }
        if let minPriceMinor, let problem = Validate.range(minPriceMinor, ProductLimits.price) {
            errors.append(FieldError(field: "min_price", message: problem))
        }
        if let maxPriceMinor, let problem = Validate.range(maxPriceMinor, ProductLimits.price) {
            errors.append(FieldError(field: "max_price", message: problem))
        }
        if let minPriceMinor, let maxPriceMinor, minPriceMinor > maxPriceMinor, !errors.contains(where: { $0.field.hasSuffix("_price") }) {
            errors.append(FieldError(field: "min_price", message: "must not be above max_price"))
        }
        if let limit, let problem = Validate.range(limit, 1...Self.maxLimit) { errors.append(FieldError(field: "limit", message: problem)) }
        if let offset, let problem = Validate.range(offset, 0...Self.maxOffset) { errors.append(FieldError(field: "offset", message: problem)) }
        if let vendor, vendor.count > 64 { errors.append(FieldError(field: "vendor", message: "must be at most 64 characters")) }
        guard errors.isEmpty else { throw .validationFailed(errors) }
        self.text = trimmed
        self.terms = terms
        self.vendor = vendor?.lowercased()
        self.minPriceMinor = minPriceMinor
        self.maxPriceMinor = maxPriceMinor
        self.inStockOnly = inStockOnly
        self.limit = limit ?? 20
        self.offset = offset ?? 0
    }

    /// Lowercased runs of letters and digits: the only characters that ever reach a query engine.
    public static func terms(of text: String) -> [String] {
        var terms: [String] = []
        var current = ""
        for scalar in text.lowercased().unicodeScalars {
            if scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                terms.append(current)
                current = ""
            }
        }
        if !current.isEmpty { terms.append(current) }
        return Array(terms.prefix(8).map { String($0.prefix(40)) })
    }
}

/// A product found by a search, with the store it belongs to.
public struct SearchHit: Sendable, Equatable {
    public let product: Product
    public let vendorUsername: String

    public init(product: Product, vendorUsername: String) {
        self.product = product
        self.vendorUsername = vendorUsername
    }
}

/// Full-text search over products, always consistent with the catalogue (the index is written in
/// the same transaction as the product).
public protocol ProductSearch: Sendable {
    /// The best matches first: up to `limit + 1`, the extra one telling that a next page exists.
    func search(_ query: SearchQuery) async throws -> [SearchHit]
    /// The names of available products, newest first, from which suggestions are built.
    func suggestionNames(limit: Int) async throws -> [String]
}

/// Word similarity by shared trigrams, as PostgreSQL's pg_trgm computes it: used where the engine
/// has no fuzzy matching of its own (SQLite) to rank candidates.
public enum Trigrams {
    /// The trigrams of a word, padded with two spaces before and one after, as pg_trgm does.
    public static func of(_ word: String) -> Set<String> {
        let characters = Array("  " + word.lowercased() + " ")
        guard characters.count >= 3 else { return [] }
        return Set((0...(characters.count - 3)).map { String(characters[$0..<$0 + 3]) })
    }

    /// The best similarity between `term` and any word of `text` (0…1).
    public static func wordSimilarity(_ term: String, in text: String) -> Double {
        let wanted = of(term)
        guard !wanted.isEmpty else { return 0 }
        return SearchQuery.terms(of: text).map { word in
            let other = of(word)
            return Double(wanted.intersection(other).count) / Double(wanted.union(other).count)
        }.max() ?? 0
    }
}
