import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
@testable import SoukServer
import Testing

/// A session cookie stands for its owner on the JSON API only for requests our own pages make:
/// another site's page can make a browser send the cookie, never the custom header or our origin.
@Suite("Cookies on the JSON API")
struct CookieAuthenticationTests {
    static let evil: HTTPFields = [.origin: "https://evil.example"]

    @Test func aVendorCookieNeedsTheHeaderToChangeAndOurOriginToRead() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let cookie: HTTPFields = [.cookie: "souk_session=\(token)"]
            let product = ByteBuffer(string: #"{"name":"Tea","price_minor":100,"currency":"USD","stock":1}"#)
            func with(_ extra: HTTPFields) -> HTTPFields { var all = cookie; all.append(contentsOf: extra); return all }

            #expect(try await app.send(.get, "/api/v1/orders", headers: cookie).status == .ok, "a read by our own page")
            #expect(try await app.send(.get, "/api/v1/orders", headers: with(Self.evil)).status == .unauthorized, "a read another site's page asked for")
            #expect(try await app.send(.get, "/api/v1/orders", headers: with([CookieAuthentication.secFetchSite: "cross-site"])).status == .unauthorized)
            #expect(try await app.send(.get, "/api/v1/orders", headers: with([CookieAuthentication.secFetchSite: "same-origin"])).status == .ok)

            let bare = try await app.send(.post, "/api/v1/products", body: product, headers: with([.contentType: "application/json"]))
            #expect(bare.status == .unauthorized, "a bare cookie changes nothing: \(bare.body)")
            let forged = try await app.send(.post, "/api/v1/products", body: product, headers: with([.contentType: "application/json", CookieAuthentication.header: "1", .origin: "https://evil.example"]))
            #expect(forged.status == .unauthorized)
            // The router takes //api/… and /%61pi/… to the API too: the rule sees the same path.
            for disguised in ["//api/v1/products", "/%61pi/v1/products", "/API/v1/products"] {
                let reply = try await app.send(.post, disguised, body: product, headers: with([.contentType: "application/json"]))
                #expect(reply.status != .created, "\(disguised): \(reply.status) \(reply.body.prefix(200))")
            }
            let ours = try await app.send(.post, "/api/v1/products", body: product, headers: with([.contentType: "application/json", CookieAuthentication.header: "1"]))
            #expect(ours.status == .created, "\(ours.body)")
            // A bearer token is sent on purpose: the cookie rule does not apply to it.
            #expect(try await app.send(.post, "/api/v1/products", body: product, token: token, headers: Self.evil).status == .created)
            #expect((try await app.json(.get, "/api/v1/products", token: token).json["products"] as? [Any])?.count == 2, "nothing else was made")
            // Pages keep using the cookie (their forms carry a CSRF token).
            #expect(try await app.send(.get, "/dashboard", headers: with(Self.evil)).status == .ok)
        }
    }

    @Test func aCustomerCookieSpendsOnlyFromOurOwnPages() async throws {
        try await TestApp.run { app in
            let vendor = try await app.vendorToken("amina")
            let tea = try await app.product(token: vendor, price: 100, stock: 10)
            let ann = try await app.customer("ann@example.com")
            #expect(try await app.json(.post, "/api/v1/wallets/\(ann.id)/credit", #"{"amount_minor":1000}"#, token: vendor).status == .ok)
            let cookie: HTTPFields = [.cookie: "souk_customer=\(ann.token)", .contentType: "application/json"]
            let body = ByteBuffer(string: #"{"items":[{"product_id":\#(tea),"quantity":1}]}"#)
            func with(_ extra: HTTPFields) -> HTTPFields { var all = cookie; all.append(contentsOf: extra); return all }

            #expect(try await app.send(.post, "/api/v1/checkouts", body: body, headers: cookie).status == .unauthorized, "a bare cookie spends nothing")
            #expect(try await app.send(.post, "/api/v1/checkouts", body: body, headers: with([CookieAuthentication.header: "1", .origin: "http://evil.example"])).status == .unauthorized)
            let wallet = try await app.json(.get, "/api/v1/wallets/\(ann.id)", token: vendor)
            #expect((wallet.json["balance_minor"] as? NSNumber)?.intValue == 1000, "\(wallet.body)")
            #expect(try await app.send(.post, "/api/v1/checkouts", body: body, headers: with([CookieAuthentication.header: "1"])).status == .accepted)
            #expect(try await app.send(.get, "/api/v1/customers/me", headers: cookie).status == .ok)
            #expect(try await app.send(.get, "/api/v1/customers/me", headers: with(Self.evil)).status == .unauthorized)
        }
    }

    @Test func theRuleSeesThePathAsTheRouterDoes() {
        for path in ["/api/v1/orders", "//api/v1/orders", "///api", "/%61pi/v1/orders", "/Api/v1/orders?x=1", "/api"] {
            #expect(CookieAuthentication.isAPI(path), "\(path)")
        }
        for path in ["/", "/s/amina", "/dashboard/orders", "/apis/x", "/account", "/s/api", ""] {
            #expect(!CookieAuthentication.isAPI(path), "\(path)")
        }
    }

    @Test func ourOriginIsTheAuthorityTheRequestCameTo() {
        #expect(CookieAuthentication.isOwn(origin: "https://shop.example:8443", authority: "SHOP.example:8443"))
        #expect(CookieAuthentication.isOwn(origin: "http://127.0.0.1:8080", authority: "127.0.0.1:8080"))
        #expect(!CookieAuthentication.isOwn(origin: "https://shop.example", authority: "shop.example:8443"))
        #expect(!CookieAuthentication.isOwn(origin: "https://shop.example.evil.example", authority: "shop.example"))
        #expect(!CookieAuthentication.isOwn(origin: "null", authority: "shop.example"))
        #expect(!CookieAuthentication.isOwn(origin: "https://shop.example", authority: nil))
    }
}
