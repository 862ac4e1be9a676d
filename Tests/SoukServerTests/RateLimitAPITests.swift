import Foundation
import HTTPTypes
import NIOCore
import SoukCore
import Testing

/// Rate limits as clients meet them: 429 with `Retry-After`, a stable code, and nothing done.
@Suite("Rate limits (HTTP)")
struct RateLimitAPITests {
    static func policy(_ text: String) throws -> RateLimitPolicy { try #require(RateLimitPolicy.parse(text)) }

    // Login limits per account and address: HardeningTests.aStrangerCannotLockTheOwnerOut.

    @Test func theLoginFormShowsTheLimitOnTheForm() async throws {
        try await TestApp.run(rateLimits: try Self.policy("login_ip=2/1m")) { app in
            let browser = Browser(app)
            _ = try await browser.get("/login")
            for _ in 0..<2 {
                #expect(try await browser.post("/login", [("username", "nobody"), ("password", "wrong-guess")]).status == .unauthorized)
            }
            let limited = try await browser.post("/login", [("username", "nobody"), ("password", "wrong-guess")])
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter] != nil)
            #expect(limited.body.contains("Too many attempts"), "the form says why")
            #expect(limited.body.contains("name=\"username\""), "the login form is shown again")
        }
    }

    @Test func purchasesAreLimitedPerBuyerAndARefusedOneTakesNothing() async throws {
        try await TestApp.run(rateLimits: try Self.policy("purchase_buyer=2/1m")) { app in
            let token = try await app.vendorToken("amina")
            let phone = try await app.product(token: token, stock: 50)
            let sale = try #require((try await FlashSaleAPITests.createSale(app, token: token, product: phone, quantity: 10, limit: 5).json["id"] as? NSNumber)?.int64Value)
            let zoe = try await app.customer("zoe@example.com"), yann = try await app.customer("yann@example.com")
            func buy(_ buyer: (id: String, token: String), key: String) async throws -> TestApp.Reply {
                try await app.send(.post, "/api/v1/flash-sales/\(sale)/purchases", body: ByteBuffer(string: #"{"buyer_id":"\#(buyer.id)"}"#),
                                   token: buyer.token, headers: [HTTPField.Name("Idempotency-Key")!: key])
            }
            #expect(try await buy(zoe, key: "1").status == .accepted)
            #expect(try await buy(zoe, key: "2").status == .accepted)
            let limited = try await buy(zoe, key: "3")
            #expect(limited.status == .tooManyRequests && limited.errorCode == "rate_limited", "\(limited.body)")
            #expect(try await buy(yann, key: "1").status == .accepted, "another buyer is not affected")
            let stats = try await app.json(.get, "/api/v1/flash-sales/\(sale)/stats", token: token)
            #expect((stats.json["admitted"] as? NSNumber)?.intValue == 3, "the refused attempt admitted nothing: \(stats.body)")
        }
    }

    /// An attempt on a sale this process has not read (or on none at all) reads the database before
    /// any gate: it is counted before that read, so a stranger cannot make reads without limit.
    @Test func attemptsOnSalesThatDoNotExistAreLimitedToo() async throws {
        try await TestApp.run(rateLimits: try Self.policy("purchase_buyer=2/1m")) { app in
            let zoe = try await app.customer("zoe@example.com")
            var statuses: [Int] = []
            for sale in 900..<904 {
                statuses.append(Int(try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", "{}", token: zoe.token).status.code))
            }
            #expect(statuses == [404, 404, 429, 429], "\(statuses)")
        }
    }

    @Test func signupsAreLimitedPerAddress() async throws {
        try await TestApp.run(rateLimits: try Self.policy("signup_ip=2/1h")) { app in
            _ = try await app.vendorToken("first")
            _ = try await app.vendorToken("second")
            let limited = try await app.json(.post, "/api/v1/vendors", #"{"username":"third","password":"password123","store_name":"Third"}"#)
            #expect(limited.status == .tooManyRequests && limited.errorCode == "rate_limited")
            #expect(try await app.json(.post, "/api/v1/sessions", #"{"username":"third","password":"password123"}"#).status == .unauthorized,
                    "the refused signup created no account")
        }
    }
}
