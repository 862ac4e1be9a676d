import Foundation
@testable import SoukCore
import Testing

@Suite("Price feed: market, schedule, rows")
struct PriceFeedTests {
    @Test func theSimulatedMarketIsAPureFunctionOfSeedItemAndTime() async throws {
        let market = SimulatedMarket(seed: 7, items: 3)
        #expect(market.itemNames == ["SIM-0001", "SIM-0002", "SIM-0003"])
        #expect(SimulatedMarket.itemName(42, of: 12_000) == "SIM-00042")
        let first = try await market.fetch(interval: 1_795_248_000_000, length: 60_000)
        let again = try await SimulatedMarket(seed: 7, items: 3).fetch(interval: 1_795_248_000_000, length: 60_000)
        #expect(first == again, "the same interval is answered identically, at any later time")
        #expect(first.ticks.map(\.item) == market.itemNames)
        #expect(first.ticks.allSatisfy { $0.at == 1_795_248_000_000 && $0.priceMinor > 0 })
        let later = try await market.fetch(interval: 1_795_248_060_000, length: 60_000)
        #expect(later.ticks.map(\.priceMinor) != first.ticks.map(\.priceMinor), "prices move")
        #expect(try await SimulatedMarket(seed: 8, items: 3).fetch(interval: 1_795_248_000_000, length: 60_000) != first, "the seed matters")
    }

    @Test func intervalsStartAtMultiplesOfTheirLength() {
        let minute = FeedSchedule(length: .seconds(60))
        #expect(minute.length == 60_000)
        #expect(minute.interval(containing: 1_795_248_059_999) == 1_795_248_000_000)
        #expect(minute.interval(containing: 1_795_248_060_000) == 1_795_248_060_000)
        #expect(FeedSchedule(length: .milliseconds(50)).interval(containing: 1_049) == 1_000)
        #expect(FeedSchedule(length: .zero).length == 1, "a zero length cannot divide by zero")
    }

    @Test func csvRowsAreValidatedOneByOne() {
        let csv = """
            item,price,timestamp
            ABC,12.34,2026-11-21T08:00:00Z
            DEF,7,1795248000
            ,1.00,1795248000
            GHI,-1,1795248000
            JKL,1.234,1795248000
            MNO,5.00,yesterday
            PQR,5.00,2030-01-01T00:00:00Z
            too,many,fields,here
            STU,0.5,2026-11-21T08:00:00.250Z
            """
        let fetch = PriceRows.parseCSV(csv, notAfter: 1_800_000_000_000)
        #expect(fetch.ticks == [
            PriceTick(item: "ABC", at: 1_795_248_000_000, priceMinor: 1_234),
            PriceTick(item: "DEF", at: 1_795_248_000_000, priceMinor: 700),
            PriceTick(item: "STU", at: 1_795_248_000_250, priceMinor: 50),
        ])
        #expect(fetch.rejected.count == 6, "\(fetch.rejected)")
        #expect(fetch.rejected.contains { $0.hasPrefix("line 8:") && $0.contains("future") })
    }

    @Test func jsonRowsAreValidatedOneByOne() {
        let body = #"""
            {"ticks": [
              {"item": "ABC", "price": 12.5, "timestamp": "2026-11-21T08:00:00Z"},
              {"item": "DEF", "price": "3.10", "timestamp": 1795248000},
              {"item": "GHI", "price": true, "timestamp": 1795248000},
              {"item": "JKL", "timestamp": 1795248000},
              {"item": "bad item", "price": 1, "timestamp": 1795248000},
              42
            ]}
            """#
        let fetch = PriceRows.parseJSON(Data(body.utf8), notAfter: 1_800_000_000_000)
        #expect(fetch.ticks == [
            PriceTick(item: "ABC", at: 1_795_248_000_000, priceMinor: 1_250),
            PriceTick(item: "DEF", at: 1_795_248_000_000, priceMinor: 310),
        ])
        #expect(fetch.rejected.count == 4, "\(fetch.rejected)")
        #expect(PriceRows.parseJSON(Data("<html>".utf8), notAfter: 0).rejected.count == 1)
        #expect(PriceRows.parseJSON(Data("[]".utf8), notAfter: 0) == PriceFetch(ticks: []))
    }

    @Test func logPayloadsRoundTripAndAreTakenWholeOrNotAtAll() {
        let ticks = [PriceTick(item: "SIM-0001", at: 1_000, priceMinor: 5), PriceTick(item: "a.b:c_d-e", at: 2_000, priceMinor: 70_000)]
        #expect(PriceTickCoding.decode(PriceTickCoding.encode(ticks)) == ticks)
        #expect(PriceTickCoding.decode("") == [])
        #expect(PriceTickCoding.decode("SIM-0001,1000,5\nbroken") == nil)
        #expect(PriceTickCoding.decode("SIM 1,1000,5") == nil)
        #expect(ticks[0].id(source: "simulated") == "simulated|SIM-0001|1000")
    }

    @Test func aFileAnswersForTheIntervalsItsRowsCover() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("souk-prices-\(UUID().uuidString).csv").path
        try "item,price,timestamp\nA,1.00,60\nB,2.00,61\nA,3.00,120\nbroken line\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = FilePriceSource(path: path)
        let first = try await file.fetch(interval: 60_000, length: 60_000)
        #expect(first.ticks.map(\.priceMinor) == [100, 200])
        #expect(first.rejected.count == 1, "unreadable rows are reported once, with the file's first interval")
        let second = try await file.fetch(interval: 120_000, length: 60_000)
        #expect(second == PriceFetch(ticks: [PriceTick(item: "A", at: 120_000, priceMinor: 300)]))
        #expect(try await file.fetch(interval: 180_000, length: 60_000) == PriceFetch(ticks: []))
    }
}

@Suite("Suggestion index")
struct SuggestionIndexTests {
    static let index = SuggestionIndex(names: [
        "Dark chocolate bar", "Milk chocolate bar", "Chocolate cake", "Brass lantern", "Copper lantern", "Brass lamp",
        "Woven basket", "Silk scarf", "Ceramic teapot", "Saffron", "Lantern festival poster",
    ])

    @Test func prefixesCompleteToTheMostFrequentWordsFirst() {
        #expect(Self.index.suggest("lan", limit: 5) == ["lantern"])
        #expect(Self.index.suggest("b", limit: 5) == ["bar", "brass", "basket"], "by how many names hold them")
        #expect(Self.index.suggest("ba", limit: 5) == ["bar", "basket"], "bar is in two names")
        #expect(Self.index.suggest("brass la", limit: 5) == ["brass lantern", "brass lamp"])
        #expect(Self.index.suggest("CHOC", limit: 1) == ["chocolate"], "case does not matter")
    }

    @Test func typosWithinAnEditOrTwoAreCorrected() {
        #expect(Self.index.suggest("choclate", limit: 5) == ["chocolate"], "a missing letter")
        #expect(Self.index.suggest("lantren", limit: 5) == ["lantern"], "two letters swapped")
        #expect(Self.index.suggest("basqet", limit: 5) == ["basket"], "a wrong letter")
        #expect(Self.index.suggest("teappot", limit: 5) == ["teapot"], "an extra letter")
        #expect(Self.index.suggest("zzz", limit: 5).isEmpty)
        #expect(Self.index.suggest("", limit: 5).isEmpty && Self.index.suggest("%%", limit: 5).isEmpty)
        #expect(SuggestionIndex.distance("choclate", "chocolate") == 1 && SuggestionIndex.distance("lantren", "lantern") == 1)
    }
}
