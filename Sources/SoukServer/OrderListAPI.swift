import Foundation
import Hummingbird
import SoukCore

/// Every kind of order in one list, for the vendor (`GET /api/v1/orders`, its CSV export, the
/// dashboard) and for the customer (`GET /api/v1/customers/me/orders`).
enum OrderListAPI {
    struct Body: Encodable {
        struct Store: Encodable {
            let name: String
            let username: String
        }

        struct Customer: Encodable {
            let id: String?
            let name: String?
            let contact: String?
            let address: String?
        }

        let id: String
        let source: String
        let number: Int64?
        let store: Store
        let customer: Customer
        let status: String
        let paymentStatus: String
        let items: [API.OrderLineBody]
        let totalMinor: Int64
        let currency: String
        let createdAt: Date
        /// A held flash-sale order's deadline to be paid.
        let holdExpiresAt: Date?

        init(_ order: OrderSummary, showCustomer: Bool = true) {
            id = order.id
            source = order.source.rawValue
            number = order.number
            store = Store(name: order.storeName, username: order.storeUsername)
            customer = showCustomer
                ? Customer(id: order.customerID, name: order.customerName, contact: order.customerContact, address: order.customerAddress)
                : Customer(id: order.customerID, name: nil, contact: nil, address: nil)
            status = order.status
            paymentStatus = order.paymentStatus.rawValue
            items = order.lines.map {
                API.OrderLineBody(productId: $0.productID, name: $0.name, unitPriceMinor: $0.unitPriceMinor, quantity: $0.quantity, totalMinor: $0.totalMinor)
            }
            totalMinor = order.total.minor
            currency = order.total.currency.code
            createdAt = order.createdAt
            holdExpiresAt = order.holdExpiresAt
        }
    }

    struct Page: Encodable {
        let orders: [Body]
        let nextCursor: String?
    }

    /// The filter and page a request asks for; every parameter is checked (422 naming each bad one).
    static func query(_ request: Request, owner: OrderFilter.Owner, maximumLimit: Int = 100) throws(SoukError) -> (filter: OrderFilter, after: OrderListPosition?, limit: Int) {
        let parameters = request.uri.queryParameters
        var errors: [FieldError] = []
        var filter = OrderFilter(owner: owner)
        var limit = 20
        if let raw = parameters["limit"] {
            if let value = Int(raw), (1...maximumLimit).contains(value) { limit = value } else {
                errors.append(FieldError(field: "limit", message: "must be between 1 and \(maximumLimit)"))
            }
        }
        var after: OrderListPosition?
        if let raw = parameters["cursor"], !raw.isEmpty {
            if let position = OrderListPosition(cursor: raw) { after = position } else {
                errors.append(FieldError(field: "cursor", message: "must be a cursor from a previous page"))
            }
        }
        if let raw = parameters["source"], !raw.isEmpty {
            if let source = OrderSource(rawValue: String(raw)) { filter.source = source } else {
                errors.append(FieldError(field: "source", message: "must be one of " + OrderSource.allCases.map(\.rawValue).joined(separator: ", ")))
            }
        }
        if let raw = parameters["status"], !raw.isEmpty {
            if OrderFilter.statuses.contains(String(raw)) { filter.status = String(raw) } else {
                errors.append(FieldError(field: "status", message: "must be one of " + OrderFilter.statuses.sorted().joined(separator: ", ")))
            }
        }
        if let raw = parameters["q"] {
            let text = raw.trimmingCharacters(in: .whitespaces)
            if text.utf8.count > 200 || text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                errors.append(FieldError(field: "q", message: "must be at most 200 characters of text"))
            } else if !text.isEmpty {
                filter.query = text
            }
        }
        guard errors.isEmpty else { throw .validationFailed(errors) }
        return (filter, after, limit)
    }

    /// One page: `limit` orders and the cursor of the next page, if any.
    static func page(_ listing: any OrderListing, _ filter: OrderFilter, after: OrderListPosition?, limit: Int) async throws -> (orders: [OrderSummary], next: String?) {
        let fetched = try await listing.orderSummaries(filter, after: after, limit: limit + 1)
        let page = Array(fetched.prefix(limit))
        return (page, fetched.count > limit ? page.last?.position.cursor : nil)
    }

    /// Every order the filter matches as CSV (RFC 4180), read a page at a time.
    static func csv(_ listing: any OrderListing, _ filter: OrderFilter) async throws -> String {
        var text = "id,source,number,created_at,status,payment_status,customer_name,customer_contact,customer_address,items,total_minor,currency\r\n"
        let dates = ISO8601DateFormatter()
        var after: OrderListPosition?
        repeat {
            let (orders, next) = try await page(listing, filter, after: after, limit: 500)
            for order in orders {
                let items = order.lines.map { "\($0.quantity) × \($0.name)" }.joined(separator: "; ")
                let fields = [
                    order.id, order.source.rawValue, order.number.map(String.init) ?? "", dates.string(from: order.createdAt), order.status,
                    order.paymentStatus.rawValue, order.customerName ?? "", order.customerContact ?? "", order.customerAddress ?? "", items,
                    String(order.total.minor), order.total.currency.code,
                ]
                text += fields.map(csvField).joined(separator: ",") + "\r\n"
            }
            after = next.flatMap { OrderListPosition(cursor: $0) }
        } while after != nil
        return text
    }

    /// The CSV as a download.
    static func csvResponse(_ csv: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"orders.csv\"", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: csv)))
    }

    /// A CSV field, quoted when needed; a leading =, +, - or @ is defused so that a spreadsheet
    /// does not run a customer's name as a formula.
    static func csvField(_ value: String) -> String {
        var value = value
        if let first = value.first, "=+-@\t\r".contains(first) { value = "'" + value }
        guard value.contains(where: { ",\"\r\n".contains($0) }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
