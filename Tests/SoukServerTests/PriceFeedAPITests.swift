import Foundation
import Hummingbird
import SoukCore
import SoukServer
import SoukSQL
import SoukTesting
@testable import SoukWorkers
import Testing

@Suite("Price feed API and pages")
struct PriceFeedAPITests {
    static let hour: Int64 = 3_600_000

    @Test func pricesAreServedOldestFirstWithinTheAskedRange() async throws {
        try await TestApp.run { app in
            let now = FeedSchedule.now() / 60_000 * 60_000
            let ticks = (0..<30).map { PriceTick(item: "SIM-0001", at: now - Int64(29 - $0) * 3_600_000, priceMinor: 1_000 + Int64($0)) }
            try await app.storage.apply(ticks)

            let day = try await app.json(.get, "/api/v1/prices/SIM-0001")
            #expect(day.status == .ok)
            let listed = try #require(day.json["ticks"] as? [[String: Any]])
            #expect(listed.count == 24, "the default range is the last 24 hours")
            #expect(listed.compactMap { ($0["price_minor"] as? NSNumber)?.int64Value } == ticks.suffix(24).map(\.priceMinor))
            #expect(listed.first?["timestamp"] as? String != nil)

            let formatter = ISO8601DateFormatter()
            let from = formatter.string(from: ticks[2].date), to = formatter.string(from: ticks[4].date)
            let range = try await app.json(.get, "/api/v1/prices/SIM-0001?from=\(from)&to=\(to)")
            #expect((range.json["ticks"] as? [[String: Any]])?.count == 3)
            let seconds = try await app.json(.get, "/api/v1/prices/SIM-0001?from=\(ticks[0].at / 1_000)&to=\(ticks[0].at / 1_000)")
            #expect((seconds.json["ticks"] as? [[String: Any]])?.count == 1, "seconds since 1970 work too")

            let latest = try await app.json(.get, "/api/v1/prices/SIM-0001/latest")
            #expect((latest.json["price_minor"] as? NSNumber)?.int64Value == 1_029)
            #expect(latest.json["item"] as? String == "SIM-0001")

            let backwards = try await app.json(.get, "/api/v1/prices/SIM-0001?from=\(to)&to=\(from)")
            #expect(backwards.status == .unprocessableContent && backwards.errorFields == ["from"])
            let garbage = try await app.json(.get, "/api/v1/prices/SIM-0001?from=yesterday&to=%00")
            #expect(garbage.status == .unprocessableContent && garbage.errorFields == ["from", "to"])
            let farFuture = try await app.json(.get, "/api/v1/prices/SIM-0001?from=999999999990&to=999999999999")
            #expect(farFuture.status == .unprocessableContent, "seconds past year 9999 cannot be written back as ISO 8601: \(farFuture.body)")
            for missing in ["/api/v1/prices/SIM-9999", "/api/v1/prices/SIM-9999/latest", "/api/v1/prices/not%20an%20item/latest"] {
                let reply = try await app.json(.get, missing)
                #expect(reply.status == .notFound && reply.errorCode == "not_found", "\(missing)")
            }
        }
    }

    @Test func aProductFollowsItsFeedItemAndItsStorePageShowsTheNewPriceAtOnce() async throws {
        let cache = InProcessPageCache(timeToLive: .seconds(900))
        try await TestApp.run(pageCache: cache) { app in
            let token = try await app.vendorToken("amina")
            let invalid = try await app.json(.post, "/api/v1/products", #"{"name":"Gold","price_minor":100,"currency":"USD","stock":5,"price_feed_item":"no spaces"}"#, token: token)
            #expect(invalid.status == .unprocessableContent && invalid.errorFields == ["price_feed_item"])
            let unquoted = try await app.json(.post, "/api/v1/products", #"{"name":"Gold","price_minor":100,"currency":"USD","stock":5,"price_feed_item":"SIM-0002"}"#, token: token)
            #expect(unquoted.status == .unprocessableContent && unquoted.errorFields == ["price_feed_item"], "an item no feed quotes: \(unquoted.body)")
            try await Self.quote("SIM-0002", at: FeedSchedule.now() - 180_000, priceMinor: 3_000, app: app)
            let created = try await app.json(.post, "/api/v1/products", #"{"name":"Gold","price_minor":100,"currency":"USD","stock":5,"price_feed_item":"SIM-0002"}"#, token: token)
            #expect(created.status == .created && created.json["price_feed_item"] as? String == "SIM-0002")
            let id = try #require((created.json["id"] as? NSNumber)?.int64Value)
            _ = try await app.product(token: token, name: "Tea", price: 250)

            let before = try await app.send(.get, "/s/amina")
            #expect(before.body.contains("1.00 USD"))

            let consumer = PriceFeedConsumer(log: SQLPriceFeedLog(database: app.database), histories: [app.storage], followers: app.storage, consumer: "test", logger: TestLog.logger) { vendor in
                try? await cache.invalidate(vendorID: vendor)
            }
            let now = FeedSchedule.now()
            let entry = PriceLogEntry(id: "1", source: "simulated", interval: now, ticks: [
                PriceTick(item: "SIM-0002", at: now - 60_000, priceMinor: 4_100),
                PriceTick(item: "SIM-0002", at: now, priceMinor: 4_250),
                PriceTick(item: "SIM-0003", at: now, priceMinor: 1),
            ])
            try await consumer.apply([entry], followed: try await app.storage.followedItems())

            let after = try await app.send(.get, "/s/amina")
            #expect(after.body.contains("42.50 USD") && !after.body.contains("1.00 USD"), "the cached page was invalidated by the price change")
            #expect(after.body.contains("<svg class=\"sparkline\""), "the store page shows the item's recent prices")
            #expect(after.body.contains("2.50 USD"), "products that follow nothing keep their price")

            // An older tick delivered late does not move the price back.
            try await consumer.apply([PriceLogEntry(id: "2", source: "simulated", interval: now - 120_000, ticks: [PriceTick(item: "SIM-0002", at: now - 120_000, priceMinor: 9)])], followed: ["SIM-0002"])
            let product = try await app.json(.get, "/api/v1/products/\(id)", token: token)
            #expect((product.json["price_minor"] as? NSNumber)?.int64Value == 4_250)

            // Following nothing any more: the price stays as the vendor sets it.
            let unfollowed = try await app.json(.patch, "/api/v1/products/\(id)", #"{"price_feed_item":"","price_minor":5000}"#, token: token)
            #expect(unfollowed.status == .ok && unfollowed.json["price_feed_item"] == nil)
            try await consumer.apply([PriceLogEntry(id: "3", source: "simulated", interval: now + 60_000, ticks: [PriceTick(item: "SIM-0002", at: now + 60_000, priceMinor: 7_777)])], followed: ["SIM-0002"])
            #expect((try await app.json(.get, "/api/v1/products/\(id)", token: token).json["price_minor"] as? NSNumber)?.int64Value == 5_000)
        }
    }

    @Test func theProductFormShowsFeedItemErrorsOnTheForm() async throws {
        try await TestApp.run { app in
            let vendor = Browser(app)
            _ = try await vendor.get("/signup")
            _ = try await vendor.post("/signup", [("username", "amina"), ("password", "sesame1234"), ("store_name", "Amina's Souk")])
            let bad = try await vendor.post("/dashboard/products", [("name", "Gold"), ("price", "1.00"), ("currency", "USD"), ("stock", "1"), ("price_feed_item", "bad item!")])
            #expect(bad.status == .unprocessableContent && bad.body.contains("Feed item must be 1–64 letters") && bad.body.contains("value=\"bad item!\""))
            let unquoted = try await vendor.post("/dashboard/products", [("name", "Gold"), ("price", "1.00"), ("currency", "USD"), ("stock", "1"), ("price_feed_item", "NOPE-1")])
            #expect(unquoted.status == .unprocessableContent && unquoted.body.contains("NOPE-1 has no prices yet"), "the form says the feed does not quote it")
            try await Self.quote("SIM-0001", at: FeedSchedule.now(), priceMinor: 1_234, app: app)
            let good = try await vendor.post("/dashboard/products", [("name", "Gold"), ("price", "1.00"), ("currency", "USD"), ("stock", "1"), ("price_feed_item", "SIM-0001")])
            #expect(good.status == .found)
            #expect(try await vendor.get("/dashboard").body.contains("follows SIM-0001"))
        }
    }

    /// Writes one tick to the price history, as the feed's applier does.
    static func quote(_ item: String, at: Int64, priceMinor: Int64, app: TestApp) async throws {
        let consumer = PriceFeedConsumer(log: SQLPriceFeedLog(database: app.database), histories: [app.storage], followers: app.storage, consumer: "quote", logger: TestLog.logger) { _ in }
        try await consumer.apply([PriceLogEntry(id: "q-\(item)-\(at)", source: "simulated", interval: at, ticks: [PriceTick(item: item, at: at, priceMinor: priceMinor)])],
                                 followed: try await app.storage.followedItems())
    }
}
