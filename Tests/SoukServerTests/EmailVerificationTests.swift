import Foundation
import Hummingbird
import HummingbirdTesting
import SoukCore
import SoukSQL
import SoukTesting
import SoukWorkers
import Testing

/// Email verification: a code mailed at sign-up (to the outbox without a mail server), checked with
/// a bounded number of guesses, and sales that admit verified customers only.
@Suite("Email verification")
struct EmailVerificationTests {
    /// The code in the newest mail to `email` in the outbox.
    static func code(_ app: TestApp, for email: String) async throws -> String {
        let mail = try #require(try await app.storage.outbox(limit: 20).first { $0.mail.to == email }, "no mail to \(email)")
        return try #require(mail.mail.subject.firstMatch(of: /\d{6}/).map { String($0.output) }, "\(mail.mail.subject)")
    }

    @Test(arguments: TestBackend.allCases)
    func aCodeFromTheSignUpMailVerifiesTheCustomer(backend: TestBackend) async throws {
        try await TestApp.run(backend: backend) { app in
            let amina = try await app.customer("amina@example.com", name: "Amina")
            let me = try await app.json(.get, "/api/v1/customers/me", token: amina.token)
            #expect(me.json["verified"] as? Bool == false)
            let code = try await Self.code(app, for: "amina@example.com")
            let mail = try #require(try await app.storage.outbox(limit: 1).first)
            #expect(mail.mail.body.contains("Hello Amina") && mail.mail.body.contains(code))

            let wrong = code == "000000" ? "111111" : "000000"
            let bad = try await app.json(.post, "/api/v1/customers/me/verification/confirm", #"{"code":"\#(wrong)"}"#, token: amina.token)
            #expect(bad.status == .unprocessableContent && bad.errorCode == "invalid_code" && bad.body.contains("4 attempts left"), "\(bad.body)")
            let malformed = try await app.json(.post, "/api/v1/customers/me/verification/confirm", #"{"code":"12ab"}"#, token: amina.token)
            #expect(malformed.status == .unprocessableContent && malformed.errorFields == ["code"])
            let anonymous = try await app.json(.post, "/api/v1/customers/me/verification/confirm", #"{"code":"\#(code)"}"#)
            #expect(anonymous.status == .unauthorized)

            let good = try await app.json(.post, "/api/v1/customers/me/verification/confirm", #"{"code":"\#(code)"}"#, token: amina.token)
            #expect(good.status == .ok && good.json["verified"] as? Bool == true, "\(good.body)")
            let verifiedToken = try #require(good.json["token"] as? String)
            #expect(try await app.json(.get, "/api/v1/customers/me", token: verifiedToken).json["verified"] as? Bool == true)
            // Asking again changes nothing and mails nothing.
            let before = try await app.storage.outbox(limit: 50).count
            let again = try await app.json(.post, "/api/v1/customers/me/verification", token: verifiedToken)
            #expect(again.status == .ok && again.json["verified"] as? Bool == true)
            #expect(try await app.storage.outbox(limit: 50).count == before)
        }
    }

    @Test func fiveWrongGuessesSpendTheCodeAndANewCodeReplacesIt() async throws {
        try await TestApp.run(rateLimits: RateLimitPolicy()) { app in
            let omar = try await app.customer("omar@example.com")
            let first = try await Self.code(app, for: "omar@example.com")
            let wrong = first == "000000" ? "111111" : "000000"
            for left in (0..<5).reversed() {
                let reply = try await app.json(.post, "/api/v1/customers/me/verification/confirm", #"{"code":"\#(wrong)"}"#, token: omar.token)
                #expect(reply.errorCode == "invalid_code" && reply.body.contains(left > 0 ? "\(left) attempt" : "ask for a new one"), "\(reply.body)")
            }
            let spent = try await app.json(.post, "/api/v1/customers/me/verification/confirm", #"{"code":"\#(first)"}"#, token: omar.token)
            #expect(spent.errorCode == "invalid_code" && spent.body.contains("ask for a new one"), "the right code no longer works: \(spent.body)")

            let sent = try await app.json(.post, "/api/v1/customers/me/verification", token: omar.token)
            #expect(sent.status == .accepted && sent.json["sent_to"] as? String == "omar@example.com", "\(sent.body)")
            let second = try await Self.code(app, for: "omar@example.com")
            #expect(try await app.json(.post, "/api/v1/customers/me/verification/confirm", #"{"code":"\#(second)"}"#, token: omar.token).status == .ok)

            // Codes are mailed at most five times an hour per customer (the sign-up's code aside).
            let lina = try await app.customer("lina@example.com")
            var statuses: [Int] = []
            for _ in 0..<6 { statuses.append(Int(try await app.json(.post, "/api/v1/customers/me/verification", token: lina.token).status.code)) }
            #expect(statuses == [202, 202, 202, 202, 202, 429], "\(statuses)")
        }
    }

    /// A sale for verified customers refuses an unverified one (403, nothing admitted) and admits
    /// the same customer once the code is confirmed; the store page says who it is for.
    @Test(arguments: TestBackend.allCases)
    func aSaleForVerifiedCustomersAdmitsOnlyThem(backend: TestBackend) async throws {
        try await TestApp.run(backend: backend) { app in
            let vendor = try await app.vendorToken("amina")
            let phone = try await app.product(token: vendor, name: "Phone", stock: 10)
            let created = try await app.json(.post, "/api/v1/flash-sales",
                #"{"product_id":\#(phone),"quantity":2,"starts_at":"\#(FlashSaleAPITests.iso(-5))","ends_at":"\#(FlashSaleAPITests.iso(3_600))","verified_only":true}"#, token: vendor)
            #expect(created.status == .created && created.json["verified_only"] as? Bool == true, "\(created.body)")
            let sale = try #require((created.json["id"] as? NSNumber)?.int64Value)
            #expect(try await app.json(.get, "/api/v1/flash-sales/\(sale)").json["verified_only"] as? Bool == true)

            let buyer = try await app.customer("buyer@example.com")
            let refused = try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", "{}", token: buyer.token)
            #expect(refused.status == .forbidden && refused.errorCode == "verification_required", "\(refused.body)")
            #expect(try await app.json(.get, "/api/v1/flash-sales/\(sale)/stats", token: vendor).json["admitted"] as? Int == 0)

            let code = try await Self.code(app, for: "buyer@example.com")
            let verified = try #require(try await app.json(.post, "/api/v1/customers/me/verification/confirm", #"{"code":"\#(code)"}"#, token: buyer.token).json["token"] as? String)
            let admitted = try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", "{}", token: verified)
            #expect(admitted.status == .accepted, "\(admitted.body)")
            // The old, unverified session still says what it was when it began.
            #expect(try await app.json(.post, "/api/v1/flash-sales/\(sale)/purchases", "{}", token: buyer.token).errorCode == "verification_required")
            #expect(try await Browser(app).get("/s/amina").body.contains("verified customers"))
        }
    }

    /// The account page: the code form, an error shown on it, then a verified session cookie; the
    /// outbox page answers this machine only.
    @Test func theAccountPageVerifiesAndTheOutboxIsLocal() async throws {
        try await TestApp.run(testing: .live) { app in
            let shopper = Browser(app)
            _ = try await shopper.get("/account/signup")
            _ = try await shopper.post("/account/signup", [("name", "Nadia"), ("email", "nadia@example.com"), ("password", "password123")])
            let page = try await shopper.get("/account")
            #expect(page.body.contains("Verify your email") && page.body.contains(#"href="/outbox""#), "\(page.body)")
            let outbox = try await Browser(app).get("/outbox")
            let code = try await Self.code(app, for: "nadia@example.com")
            #expect(outbox.status == .ok && outbox.body.contains(code), "the outbox shows the mail to a browser on this machine")
            let forwarded = try await app.send(.get, "/outbox", headers: [.init("X-Forwarded-For")!: "203.0.113.9"])
            #expect(forwarded.status == .notFound, "never through a proxy")

            let wrong = try await shopper.post("/account/verification/confirm", [("code", "12")])
            #expect(wrong.status == .unprocessableContent && wrong.body.contains("Code must be the 6 digits"), "the error is on the form")
            let before = shopper.cookies["souk_customer"]
            let done = try await shopper.post("/account/verification/confirm", [("code", code)])
            #expect(done.status == .found && shopper.cookies["souk_customer"] != before, "a new, verified session")
            let after = try await shopper.get("/account")
            #expect(after.body.contains(">verified<") && !after.body.contains("Verify your email"))
        }
    }

    @Test func theSMTPMailerHandsTheMessageToTheRelay() async throws {
        let relay = try await StubSMTPServer()
        defer { relay.close() }
        let mailer = try #require(SMTPMailer(url: relay.url, from: "shop@example.com"))
        try await mailer.send(Mail(to: "amina@example.com", subject: "Your Souk code: 123456", body: "Hello\n.hidden line\nbye"))
        let message = try #require(relay.messages.first)
        #expect(message.from == "<shop@example.com>" && message.to == ["<amina@example.com>"])
        #expect(message.data.contains("Subject: Your Souk code: 123456\r\n") && message.data.contains("To: amina@example.com\r\n"))
        #expect(message.data.contains("\r\n\r\nHello\r\n..hidden line\r\nbye\r\n"), "a line starting with a dot is doubled: \(message.data)")

        await #expect(throws: SMTPMailer.Failure.self) { try await mailer.send(Mail(to: "a@example.com\r\nRCPT TO:<b@example.com>", subject: "x", body: "x")) }
        relay.refuseRecipients()
        await #expect(throws: SMTPMailer.Failure.self) { try await mailer.send(Mail(to: "nobody@example.com", subject: "x", body: "x")) }
        #expect(relay.messages.count == 1)
        #expect(SMTPMailer(url: "http://relay", from: "shop@example.com") == nil && SMTPMailer(url: relay.url, from: "not an address") == nil)
    }
}
