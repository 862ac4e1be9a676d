import Foundation
import SoukCore
import SoukSQL
import SoukTesting
import Testing

/// Search relevance and freshness, on SQLite (FTS5) and PostgreSQL (tsvector + pg_trgm).
@Suite("Product search")
struct SearchTests {
    struct Catalogue {
        let storage: SQLStorage
        let a: Vendor
        let b: Vendor
    }

    static func catalogue(_ database: any SQLDatabase) async throws -> Catalogue {
        let storage = SQLStorage(database: database)
        let a = try await Fixture.vendor(storage, "atlas")
        let b = try await Fixture.vendor(storage, "medina")
        let items: [(Vendor, String, String, Int64, Int, Bool)] = [
            (a, "Dark chocolate bar", "70% cacao, single origin.", 349, 120, true),
            (a, "Milk chocolate bar", "Creamy and sweet.", 299, 150, true),
            (a, "Hazelnut spread", "Roasted hazelnuts with chocolate and cocoa.", 649, 60, true),
            (b, "Chocolate cake", "Baked this morning.", 2_500, 0, true),
            (b, "Espresso beans", "Dark roast whole beans.", 1_899, 40, true),
            (b, "Running shoes", "Light shoes for runners.", 8_900, 5, true),
            (b, "Secret chocolate", "Not for sale yet.", 100, 5, false),
        ]
        for (vendor, name, description, price, stock, available) in items {
            _ = try await storage.createProduct(vendorID: vendor.id, .newProduct(
                name: name, description: description, priceMinor: price, currency: "USD", stock: stock, available: available))
        }
        return Catalogue(storage: storage, a: a, b: b)
    }

    static func names(_ storage: SQLStorage, _ text: String, vendor: String? = nil, min: Int64? = nil, max: Int64? = nil, inStock: Bool = false, limit: Int? = nil, offset: Int? = nil) async throws -> [String] {
        try await storage.search(SearchQuery(text: text, vendor: vendor, minPriceMinor: min, maxPriceMinor: max, inStockOnly: inStock, limit: limit, offset: offset)).map(\.product.name)
    }

    @Test(arguments: TestBackend.allCases)
    func relevance(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let c = try await Self.catalogue(database)
            #expect(try await Self.names(c.storage, "espresso") == ["Espresso beans"], "exact")
            let chocolate = try await Self.names(c.storage, "chocolate")
            #expect(Set(chocolate) == ["Dark chocolate bar", "Milk chocolate bar", "Chocolate cake", "Hazelnut spread"], "unavailable products are never found")
            #expect(chocolate.last == "Hazelnut spread", "a match in the name ranks above one in the description: \(chocolate)")
            #expect(Set(try await Self.names(c.storage, "chocolates")) == Set(chocolate), "stemmed")
            #expect(try await Self.names(c.storage, "shoe") == ["Running shoes"], "stemmed")
            #expect(Set(try await Self.names(c.storage, "choc")) == Set(chocolate), "prefix")
            #expect(try await Self.names(c.storage, "dark choc") == ["Dark chocolate bar"], "every word must match")
            let typo = try await Self.names(c.storage, "choclate")
            #expect(Set(typo).isSuperset(of: ["Dark chocolate bar", "Milk chocolate bar", "Chocolate cake"]), "typo: \(typo)")
            #expect(try await Self.names(c.storage, "espreso") == ["Espresso beans"], "typo")
            #expect(try await Self.names(c.storage, "zzqx").isEmpty)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func filtersAndPages(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let c = try await Self.catalogue(database)
            #expect(try await Self.names(c.storage, "chocolate", vendor: "medina") == ["Chocolate cake"])
            #expect(try await Self.names(c.storage, "chocolate", vendor: "MEDINA") == ["Chocolate cake"], "usernames are case-insensitive")
            #expect(Set(try await Self.names(c.storage, "chocolate", inStock: true)) == ["Dark chocolate bar", "Milk chocolate bar", "Hazelnut spread"])
            #expect(Set(try await Self.names(c.storage, "chocolate", min: 300, max: 700)) == ["Dark chocolate bar", "Hazelnut spread"])
            let all = try await Self.names(c.storage, "chocolate")
            let first = try await Self.names(c.storage, "chocolate", limit: 2)
            let second = try await Self.names(c.storage, "chocolate", limit: 2, offset: 2)
            #expect(first.count == 3 && second.count == 2, "a page holds one extra hit that announces the next page")
            #expect(Array(first.prefix(2)) + second == all)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func aSearchRightAfterACommittedChangeSeesIt(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let c = try await Self.catalogue(database)
            let product = try await Fixture.product(c.storage, vendor: c.a, name: "Plain tea")
            // Unrelated made-up words, so that the typo matching cannot confuse one round with the last.
            let words = (0..<20).map { _ in String((0..<9).map { _ in "bcdfghjklmnpqrstvwxz".randomElement()! }) }
            for round in 0..<20 {
                let word = words[round]
                var change = ProductChange()
                change.name = "Tea \(word)"
                _ = try await c.storage.updateProduct(id: product.id, vendorID: c.a.id, change)
                #expect(try await Self.names(c.storage, word) == ["Tea \(word)"], "round \(round)")
                if round > 0 { #expect(try await Self.names(c.storage, words[round - 1]).isEmpty, "the old name is gone") }
            }
            #expect(try await c.storage.deleteProduct(id: product.id, vendorID: c.a.id))
            #expect(try await Self.names(c.storage, words[19]).isEmpty, "a deleted product is gone")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func suggestionsCompleteWordsOfAvailableProductsAndForgiveTypos(backend: TestBackend) async throws {
        try await backend.withDatabase { database in
            let c = try await Self.catalogue(database)
            let names = try await c.storage.suggestionNames(limit: 1_000)
            #expect(!names.contains("Secret chocolate") && names.count == 6, "available products only")
            let index = SuggestionIndex(names: names)
            #expect(index.suggest("choc", limit: 8) == ["chocolate"])
            #expect(index.suggest("choclate", limit: 8) == ["chocolate"], "typo")
            #expect(index.suggest("dark choc", limit: 8) == ["dark chocolate"], "the last word is completed")
            #expect(index.suggest("espr", limit: 8) == ["espresso"])
            #expect(index.suggest("qqqq", limit: 8).isEmpty)
        }
    }

    @Test func queriesAreValidated() {
        #expect(throws: SoukError.self) { try SearchQuery(text: "   ") }
        #expect(throws: SoukError.self) { try SearchQuery(text: "*&|!") }
        #expect(throws: SoukError.self) { try SearchQuery(text: "tea", minPriceMinor: 500, maxPriceMinor: 100) }
        #expect(throws: SoukError.self) { try SearchQuery(text: "tea", limit: 0) }
        #expect(SearchQuery.terms(of: "Dark-chocolate & café 'bar'") == ["dark", "chocolate", "café", "bar"])
    }
}
