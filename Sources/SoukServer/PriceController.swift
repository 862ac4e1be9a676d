import Foundation
import Hummingbird
import SoukCore

/// Public price lists of feed items: `GET /api/v1/prices/{item}?from=&to=` and `…/latest`.
struct PriceController: Sendable {
    let services: SoukServices
    /// The most ticks one answer carries (a day of one-minute ticks is 1,440).
    static let maxTicks = 10_000

    func addRoutes(to group: RouterGroup<SoukRequestContext>) {
        group.get("prices/:item", use: range)
        group.get("prices/:item/latest", use: latest)
    }

    struct TickBody: Encodable {
        let timestamp: Date
        let priceMinor: Int64

        init(_ tick: PriceTick) {
            timestamp = tick.date
            priceMinor = tick.priceMinor
        }
    }

    struct RangeBody: Encodable {
        let item: String
        let from: Date
        let to: Date
        let ticks: [TickBody]
    }

    struct LatestBody: Encodable {
        let item: String
        let timestamp: Date
        let priceMinor: Int64
    }

    @Sendable func range(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let (item, prices) = try itemAndPrices(context)
        var problems: [FieldError] = []
        func time(_ name: String) -> Int64? {
            guard let raw = request.uri.queryParameters.get(name) else { return nil }
            guard let at = PriceRows.timestamp(raw) else {
                problems.append(FieldError(field: name, message: "must be ISO 8601 (2026-11-21T08:00:00Z) or seconds since 1970"))
                return nil
            }
            return at
        }
        let (askedFrom, askedTo) = (time("from"), time("to"))
        let to = askedTo ?? FeedSchedule.now()
        let from = askedFrom ?? to - 24 * 3_600_000
        if problems.isEmpty, from > to { problems.append(FieldError(field: "from", message: "must not be after to")) }
        guard problems.isEmpty else { throw SoukError.validationFailed(problems) }
        let ticks = try await prices.ticks(item: item, from: from, to: to, limit: Self.maxTicks)
        if ticks.isEmpty, try await prices.latest(item: item) == nil { throw SoukError.notFound("Price item") }
        return try JSONResponse.make(RangeBody(
            item: item, from: Date(timeIntervalSince1970: Double(from) / 1_000), to: Date(timeIntervalSince1970: Double(to) / 1_000),
            ticks: ticks.map(TickBody.init)))
    }

    @Sendable func latest(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let (item, prices) = try itemAndPrices(context)
        guard let tick = try await prices.latest(item: item) else { throw SoukError.notFound("Price item") }
        return try JSONResponse.make(LatestBody(item: item, timestamp: tick.date, priceMinor: tick.priceMinor))
    }

    func itemAndPrices(_ context: SoukRequestContext) throws -> (String, any PriceHistory) {
        guard let prices = services.prices else { throw SoukError.notFound("Price item") }
        guard let item = context.parameters.decoded("item"), PriceItem.isValid(item) else { throw SoukError.notFound("Price item") }
        return (item, prices)
    }
}
