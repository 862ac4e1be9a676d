import Foundation
import Hummingbird
import HummingbirdTesting
import SoukCore
@testable import SoukServer
import SoukSQL
import SoukTesting
import Testing

/// Customer accounts: sign-up, login, the signed token and its end; a customer's token and a
/// vendor's are different kinds.
@Suite("Customer accounts")
struct CustomerAPITests {
    @Test func aCustomerSignsUpLogsInIsKnownAndLogsOut() async throws {
        try await TestApp.run { app in
            let signup = try await app.json(.post, "/api/v1/customers", #"{"email":" Amina@Example.com ","password":"amina-secret-1","name":"Amina Haddad"}"#)
            #expect(signup.status == .created, "\(signup.body)")
            let id = try #require(signup.json["id"] as? String)
            #expect(Customer.isID(id) && !id.contains("amina"), "the id is random and carries no personal data")
            #expect(signup.json["email"] as? String == "amina@example.com" && signup.json["password_hash"] == nil && signup.json["password"] == nil)

            let again = try await app.json(.post, "/api/v1/customers", #"{"email":"AMINA@example.com","password":"another-secret","name":"Other"}"#)
            #expect(again.status == .conflict && again.errorCode == "email_taken")
            let bad = try await app.json(.post, "/api/v1/customers", #"{"email":"not an email","password":"short","name":""}"#)
            #expect(bad.status == .unprocessableContent && Set(bad.errorFields) == ["email", "password", "name"])

            let wrong = try await app.json(.post, "/api/v1/customers/sessions", #"{"email":"amina@example.com","password":"wrong-password"}"#)
            #expect(wrong.status == .unauthorized)
            let unknown = try await app.json(.post, "/api/v1/customers/sessions", #"{"email":"nobody@example.com","password":"amina-secret-1"}"#)
            #expect(unknown.status == .unauthorized && unknown.body == wrong.body, "a miss and a wrong password look the same")

            let login = try await app.json(.post, "/api/v1/customers/sessions", #"{"email":"amina@example.com","password":"amina-secret-1"}"#)
            #expect(login.status == .created && (login.json["expires_in"] as? NSNumber)?.intValue ?? 0 > 0)
            let token = try #require(login.json["token"] as? String)
            let me = try await app.json(.get, "/api/v1/customers/me", token: token)
            #expect(me.status == .ok && me.json["id"] as? String == id && me.json["name"] as? String == "Amina Haddad")

            #expect(try await app.json(.delete, "/api/v1/customers/sessions", token: token).status == .noContent)
            let after = try await app.json(.get, "/api/v1/customers/me", token: token)
            #expect(after.status == .unauthorized && after.errorCode == "unauthorized", "a token ends with its session")
            let other = try await app.json(.post, "/api/v1/customers/sessions", #"{"email":"amina@example.com","password":"amina-secret-1"}"#)
            #expect(try await app.json(.get, "/api/v1/customers/me", token: other.json["token"] as? String).status == .ok, "other sessions go on")
        }
    }

    /// The token's signature decoder, written for speed, agrees with Foundation on every length and
    /// refuses what is not unpadded base64url.
    @Test func theSignatureDecoderAgreesWithFoundation() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            for _ in 0..<20 {
                let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
                let encoded = CustomerTokens.base64URL(Data(bytes))
                #expect(CustomerTokens.base64URLDecoded(encoded) == bytes, "\(encoded)")
            }
        }
        for bad in ["A", "AB=", "AB+/", "a.b", "AB C", "AF", "AAB"] {  // "AF" and "AAB" leave bits past the last byte
            #expect(CustomerTokens.base64URLDecoded(bad) == nil, "\(bad)")
        }
    }

    @Test func customerAndVendorTokensAreDifferentKinds() async throws {
        try await TestApp.run { app in
            let vendor = try await app.vendorToken("shop")
            let customer = try await app.customer("buyer@example.com")
            #expect(try await app.json(.get, "/api/v1/customers/me", token: vendor).status == .unauthorized, "a vendor is not a customer")
            #expect(try await app.json(.get, "/api/v1/vendors/me", token: customer.token).status == .unauthorized, "a customer is not a vendor")
            #expect(try await app.json(.get, "/api/v1/products", token: customer.token).status == .unauthorized)
            #expect(try await app.json(.delete, "/api/v1/customers/sessions", token: vendor).status == .unauthorized)
            #expect(try await app.json(.get, "/api/v1/vendors/me", token: vendor).status == .ok, "the vendor's token still works")
        }
    }

    @Test func aTokenThatWasChangedOrCameFromElsewhereIsRefused() async throws {
        try await TestApp.run { app in
            let customer = try await app.customer("buyer@example.com")
            let parts = customer.token.split(separator: ".").map(String.init)
            #expect(parts.count == 6 && parts[0] == "c1" && parts[1] == customer.id && parts[4] == "u")
            let other = try await app.customer("other@example.com")
            let otherSignature = other.token.split(separator: ".").map(String.init)[5]
            let expired = app.services.customerTokens.issue(for: Customer(id: customer.id, email: "", name: "", createdAt: Date()), now: Date().addingTimeInterval(-30 * 86_400)).token
            func token(_ fields: [String]) -> String { fields.joined(separator: ".") }
            let forgeries: [String] = [
                token([parts[0], Customer.newID(), parts[2], parts[3], parts[4], parts[5]]),  // another customer under this signature
                token([parts[0], parts[1], parts[2], String(Int64(parts[3])! + 1), parts[4], parts[5]]),  // a later expiry
                token([parts[0], parts[1], parts[2], parts[3], "v", parts[5]]),  // "verified" written in by hand
                token([parts[0], parts[1], parts[2], parts[3], parts[5]]),  // the old form, without the flag
                token([parts[0], parts[1], parts[2], parts[3], parts[4], String(parts[5].dropLast(2))]),  // the signature cut
                token([parts[0], parts[1], parts[2], parts[3], parts[4], otherSignature]),  // another token's signature
                expired,  // correctly signed, expired
                "c1." + String(repeating: "a", count: 5_000), "c1....", "c1",
            ]
            for forged in forgeries {
                #expect(try await app.json(.get, "/api/v1/customers/me", token: forged).status == .unauthorized, "\(forged.prefix(80))")
            }
            #expect(try await app.json(.get, "/api/v1/customers/me", token: customer.token).status == .ok)
        }
    }

    /// The cookie the store pages use is the same token, checked the same way.
    @Test func theCustomerCookieIsTheSameToken() async throws {
        try await TestApp.run { app in
            let customer = try await app.customer("buyer@example.com")
            let reply = try await app.send(.get, "/api/v1/customers/me", headers: [.cookie: "souk_customer=\(customer.token)"])
            #expect(reply.status == .ok && reply.json["id"] as? String == customer.id)
        }
    }

    /// A logout on one instance ends the session on the others within about a second: each keeps
    /// the revoked sessions in memory and reads them again in the background.
    @Test func aLogoutElsewhereEndsTheSessionHereWithinASecondOrSo() async throws {
        try await TestBackend.sqlite.withDatabase { database in
            let storage = SQLStorage(database: database)
            let here = try await CustomerTokens(store: storage, lifetime: .seconds(3_600))
            let elsewhere = try await CustomerTokens(store: storage, lifetime: .seconds(3_600))
            let customer = Customer(id: Customer.newID(), email: "a@example.com", name: "A", createdAt: Date())
            let token = here.issue(for: customer).token
            let identity = try #require(elsewhere.identity(token: token), "every instance shares the signing key")
            try await elsewhere.revoke(identity)
            #expect(elsewhere.identity(token: token) == nil, "ended at once where the logout happened")
            var endedHere = false
            for _ in 0..<40 where !endedHere {
                try await Task.sleep(for: .milliseconds(100))
                endedHere = here.identity(token: token) == nil
            }
            #expect(endedHere, "ended on the other instance within 4 s")
        }
    }
}
