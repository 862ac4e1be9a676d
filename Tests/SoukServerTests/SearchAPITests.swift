import Foundation
import Hummingbird
import Testing

@Suite("Search API and page")
struct SearchAPITests {
    @Test func searchAndSuggestAnswerJSONAndRefuseBadInput() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            _ = try await app.product(token: token, name: "Dark chocolate bar", price: 349)
            _ = try await app.product(token: token, name: "Milk chocolate bar", price: 299, stock: 0)
            _ = try await app.product(token: token, name: "Green tea", price: 1_299)

            let found = try await app.json(.get, "/api/v1/search?q=chocolate")
            #expect(found.status == .ok)
            let results = try #require(found.json["results"] as? [[String: Any]])
            #expect(Set(results.compactMap { ($0["product"] as? [String: Any])?["name"] as? String }) == ["Dark chocolate bar", "Milk chocolate bar"])
            #expect(results.allSatisfy { $0["vendor"] as? String == "amina" && $0["store_url"] as? String == "/s/amina" })
            #expect(found.json["next_offset"] == nil)

            let filtered = try await app.json(.get, "/api/v1/search?q=chocolate&in_stock=true&max_price=400&vendor=amina&limit=1")
            #expect((filtered.json["results"] as? [[String: Any]])?.count == 1)
            let paged = try await app.json(.get, "/api/v1/search?q=bar&limit=1")
            #expect((paged.json["next_offset"] as? NSNumber)?.intValue == 1)

            let suggest = try await app.json(.get, "/api/v1/search/suggest?q=choclate")
            #expect(suggest.json["suggestions"] as? [String] == ["chocolate"])
            #expect(try await app.json(.get, "/api/v1/search/suggest?q=milk+ch").json["suggestions"] as? [String] == ["milk chocolate"])
            #expect((try await app.json(.get, "/api/v1/search/suggest?q=").json["suggestions"] as? [String]) == [])

            for (uri, fields) in [
                ("/api/v1/search", ["q"]), ("/api/v1/search?q=%2A%26", ["q"]), ("/api/v1/search?q=tea&min_price=abc&limit=500", ["min_price", "limit"]),
                ("/api/v1/search?q=tea&min_price=500&max_price=100", ["min_price"]), ("/api/v1/search?q=tea&offset=-1", ["offset"]),
            ] {
                let reply = try await app.json(.get, uri)
                #expect(reply.status == .unprocessableContent && reply.errorCode == "validation_failed" && reply.errorFields == fields, "\(uri): \(reply.body)")
            }
        }
    }

    @Test func theStorePageHasASearchBoxAndTheResultsPageShowsHits() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            _ = try await app.product(token: token, name: "Saffron threads", price: 1_499)
            let store = try await app.send(.get, "/s/amina")
            #expect(store.body.contains(#"action="/search""#) && store.body.contains(#"name="vendor" value="amina""#) && store.body.contains("data-suggest"))
            let page = try await app.send(.get, "/search?q=safron&vendor=amina")
            #expect(page.status == .ok && page.body.contains("Saffron threads") && page.body.contains(#"href="/s/amina""#))
            let nothing = try await app.send(.get, "/search?q=zzzzqq")
            #expect(nothing.status == .ok && nothing.body.contains("Nothing matches"))
            let bad = try await app.send(.get, "/search?q=%2A")
            #expect(bad.status == .unprocessableContent && bad.body.contains("must contain a letter or a digit"))
        }
    }
}
