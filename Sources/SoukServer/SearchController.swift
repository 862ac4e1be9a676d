import Foundation
import Hummingbird
import SoukCore

/// `GET /api/v1/search` and `GET /api/v1/search/suggest`: public product search across stores.
struct SearchController: Sendable {
    let services: SoukServices
    static let maxSuggestions = 8

    func addRoutes(to group: RouterGroup<SoukRequestContext>) {
        group.get("search", use: search)
        group.get("search/suggest", use: suggest)
    }

    struct HitBody: Encodable {
        let product: API.ProductBody
        let vendor: String
        let storeUrl: String
    }

    struct SearchBody: Encodable {
        let query: String
        let results: [HitBody]
        let nextOffset: Int?
    }

    struct SuggestBody: Encodable {
        let query: String
        let suggestions: [String]
    }

    @Sendable func search(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let query = try Self.query(request.uri.queryParameters)
        let hits = try await searcher().search(query)
        let page = hits.prefix(query.limit)
        return try JSONResponse.make(SearchBody(
            query: query.text,
            results: page.map { HitBody(product: API.ProductBody($0.product), vendor: $0.vendorUsername, storeUrl: "/s/\($0.vendorUsername)") },
            nextOffset: hits.count > query.limit ? query.offset + query.limit : nil))
    }

    @Sendable func suggest(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let text = request.uri.queryParameters.get("q") ?? ""
        guard text.count <= 200 else { throw SoukError.validationFailed([FieldError(field: "q", message: "must be at most 200 characters")]) }
        guard let index = services.suggestions else { throw SoukError.notFound("Search") }
        let suggestions = try await index.suggest(text, limit: Self.maxSuggestions)
        return try JSONResponse.make(SuggestBody(query: text, suggestions: suggestions))
    }

    func searcher() throws -> any ProductSearch {
        guard let search = services.search else { throw SoukError.notFound("Search") }
        return search
    }

    /// Reads the query string; numbers that do not parse are field errors like any other.
    static func query(_ parameters: some Sequence<(key: Substring, value: Substring)>) throws -> SearchQuery {
        var values: [String: String] = [:]
        for (key, value) in parameters where values[String(key)] == nil { values[String(key)] = String(value) }
        var errors: [FieldError] = []
        func integer(_ name: String) -> Int64? {
            guard let raw = values[name], !raw.isEmpty else { return nil }
            guard let value = Int64(raw) else {
                errors.append(FieldError(field: name, message: "must be a whole number"))
                return nil
            }
            return value
        }
        let minimum = integer("min_price"), maximum = integer("max_price"), limit = integer("limit"), offset = integer("offset")
        var inStock = false
        switch values["in_stock"]?.lowercased() {
        case nil, "", "false", "0", "no", "off": inStock = false
        case "true", "1", "yes", "on": inStock = true
        default: errors.append(FieldError(field: "in_stock", message: "must be true or false"))
        }
        let built = Result<SearchQuery, SoukError> { () throws(SoukError) -> SearchQuery in
            try SearchQuery(
                text: values["q"], vendor: values["vendor"].flatMap { $0.isEmpty ? nil : $0 }, minPriceMinor: minimum, maxPriceMinor: maximum,
                inStockOnly: inStock, limit: limit.map { Int(clamping: $0) }, offset: offset.map { Int(clamping: $0) })
        }
        switch built {
        case .success(let query):
            guard errors.isEmpty else { throw SoukError.validationFailed(errors) }
            return query
        case .failure(.validationFailed(let fields)):
            // Each field once: a value that did not parse is already reported above.
            let reported = Set(errors.map(\.field))
            throw SoukError.validationFailed(errors + fields.filter { !reported.contains($0.field) })
        case .failure(let error):
            throw error
        }
    }
}
