import Foundation
import Hummingbird
import ServiceLifecycle
import SoukCore

/// Live analytics for the logged-in vendor: the dashboard page `/dashboard/analytics`, which
/// updates itself from `/dashboard/analytics/events` (server-sent events carrying the panel's HTML,
/// rendered by the same template), and `GET /api/v1/analytics` for the JSON.
struct AnalyticsController: Sendable {
    let services: SoukServices
    static let windowMinutes = 60
    static let pushEvery: Duration = .seconds(2)

    func addRoutes(pages: RouterGroup<SoukRequestContext>, api: RouterGroup<SoukRequestContext>) {
        let dashboard = pages.group("dashboard").add(middleware: RequireVendorPageMiddleware())
        dashboard.get("analytics", use: page)
        dashboard.get("analytics/events", use: events)
        api.group().add(middleware: RequireVendorMiddleware()).get("analytics", use: json)
    }

    func snapshot(_ vendor: Vendor) async throws -> AnalyticsSnapshot {
        guard let analytics = services.analytics else { throw SoukError.notFound("Analytics") }
        return try await analytics.analytics(vendorID: vendor.id, minutes: Self.windowMinutes, now: Date())
    }

    @Sendable func page(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let values = Self.values(try await snapshot(vendor))
        return services.pages.page("analytics", title: "Analytics", values, context: context)
    }

    @Sendable func events(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let controller = self
        return ServerSentEvents.repeating(every: Self.pushEvery, event: "analytics", sessionIsOpen: services.sessionIsOpen(context)) {
            controller.services.pages.fragment("analytics_panel", Self.values(try await controller.snapshot(vendor)))
        }
    }

    struct MinuteBody: Encodable {
        let minute: Date
        let orders: Int
    }

    struct Body: Encodable {
        struct Revenue: Encodable { let amountMinor: Int64; let currency: String }
        struct Top: Encodable { let name: String; let units: Int }
        struct Sale: Encodable { let id: Int64; let productName: String; let sold: Int; let quantity: Int; let endsAt: Date }
        let windowMinutes: Int
        let orders: Int
        let ordersPerMinute: [MinuteBody]
        let revenue: [Revenue]
        let topProducts: [Top]
        let storeViews: Int
        let conversion: Double?
        let flashSales: [Sale]
    }

    @Sendable func json(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let snapshot = try await snapshot(try context.requireVendor())
        return try JSONResponse.make(Body(
            windowMinutes: Self.windowMinutes, orders: snapshot.orders,
            ordersPerMinute: snapshot.perMinute.map { MinuteBody(minute: Date(timeIntervalSince1970: TimeInterval($0.minute * 60)), orders: $0.orders) },
            revenue: snapshot.revenue.map { Body.Revenue(amountMinor: $0.minor, currency: $0.currency.code) },
            topProducts: snapshot.topProducts.map { Body.Top(name: $0.name, units: $0.units) },
            storeViews: snapshot.views, conversion: snapshot.conversion,
            flashSales: snapshot.sales.map { Body.Sale(id: $0.id, productName: $0.productName, sold: $0.sold, quantity: $0.quantity, endsAt: $0.endsAt) }))
    }

    /// The panel's values, with the chart drawn as SVG bars (numbers only, safe to insert raw).
    static func values(_ snapshot: AnalyticsSnapshot) -> [String: Any] {
        let width = 600, height = 120
        let highest = max(1, snapshot.perMinute.map(\.orders).max() ?? 0)
        let barWidth = Double(width) / Double(max(1, snapshot.perMinute.count))
        var bars = ""
        for (index, minute) in snapshot.perMinute.enumerated() where minute.orders > 0 {
            let barHeight = max(1, Int(Double(height - 4) * Double(minute.orders) / Double(highest)))
            bars += #"<rect x="\#(Int(Double(index) * barWidth))" y="\#(height - barHeight)" width="\#(max(1, Int(barWidth) - 1))" height="\#(barHeight)"><title>\#(minute.orders)</title></rect>"#
        }
        let chart = ##"<svg class="chart" viewBox="0 0 \##(width) \##(height)" width="100%" height="\##(height)" role="img" aria-label="Orders per minute, last hour" preserveAspectRatio="none"><g fill="#5b3a29">\##(bars)</g></svg>"##
        return [
            "orders": snapshot.orders,
            "peak": highest,
            "revenue": snapshot.revenue.map(\.formatted).joined(separator: " · "),
            "has_revenue": !snapshot.revenue.isEmpty,
            "views": snapshot.views,
            "conversion": snapshot.conversion.map { String(format: "%.1f %%", $0 * 100) } ?? "—",
            "top": snapshot.topProducts.map { ["name": $0.name, "units": $0.units] },
            "sales": snapshot.sales.map { sale -> [String: Any] in
                ["id": sale.id, "name": sale.productName, "sold": sale.sold, "quantity": sale.quantity,
                 "percent": sale.quantity > 0 ? sale.sold * 100 / sale.quantity : 0]
            },
            "chart": chart,
        ]
    }
}

/// Moves the in-memory store-page view counts to the analytics store every few seconds, and once
/// more when the server stops.
public struct ViewFlusher: Service {
    let counter: ViewCounter
    let store: any AnalyticsStore
    let every: Duration

    public init(counter: ViewCounter, store: any AnalyticsStore, every: Duration = .seconds(5)) {
        self.counter = counter
        self.store = store
        self.every = every
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: every)
                await flush()
            }
        }
        await flush()
    }

    public func flush() async {
        let counts = counter.drain()
        guard !counts.isEmpty else { return }
        let minute = Int64(Date().timeIntervalSince1970) / 60
        do {
            try await store.recordViews(counts, minute: minute)
        } catch {
            // Put them back for the next flush rather than lose them.
            for (vendor, views) in counts { for _ in 0..<views { counter.count(vendorID: vendor) } }
        }
    }
}
