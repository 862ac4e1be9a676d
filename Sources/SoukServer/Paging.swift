import Hummingbird
import SoukCore

/// `?limit=&cursor=` of the paged lists: validated once, the same way everywhere.
struct Paging {
    let limit: Int
    /// The position after which (or before which, newest first) the page starts.
    let cursor: Int64?

    /// The cursor as given, for lists whose positions are not numbers.
    let text: String?

    /// - Parameter acceptsTextCursor: for lists whose cursors are not numbers, whether one is valid.
    init(_ request: Request, defaultLimit: Int, maximumLimit: Int, acceptsTextCursor: (String) -> Bool = { _ in false }) throws(SoukError) {
        let query = request.uri.queryParameters
        var errors: [FieldError] = []
        var limit = defaultLimit
        if let raw = query["limit"] {
            if let value = Int(raw), (1...maximumLimit).contains(value) { limit = value } else {
                errors.append(FieldError(field: "limit", message: "must be between 1 and \(maximumLimit)"))
            }
        }
        var cursor: Int64?
        if let raw = query["cursor"], !raw.isEmpty {
            if let value = Int64(raw), value > 0 { cursor = value } else if !acceptsTextCursor(String(raw)) {
                errors.append(FieldError(field: "cursor", message: "must be a cursor from a previous page"))
            }
        }
        self.text = query["cursor"].flatMap { $0.isEmpty ? nil : String($0) }
        guard errors.isEmpty else { throw .validationFailed(errors) }
        self.limit = limit
        self.cursor = cursor
    }

    /// The page out of `limit + 1` fetched items, and the cursor of the next page if there is one.
    func page<Item>(_ items: [Item], position: (Item) -> Int64) -> (items: ArraySlice<Item>, next: String?) {
        let page = items.prefix(limit)
        return (page, items.count > limit ? page.last.map { String(position($0)) } : nil)
    }
}
