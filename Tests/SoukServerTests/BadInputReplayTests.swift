import Foundation
import SoukTesting
import Testing

/// Every bad input the suite knows, sent to one real `souk run`: the fuzzers' corpora (seeds and
/// every crash they found, which scripts/fuzz asks to add there), the inputs of the hardening
/// issue, and extreme values at every route that takes them. Each must get an answer below 500,
/// and the same process must still answer at the end: an input that kills Souk kills every
/// request in flight with it.
@Suite("Bad inputs against a real process")
struct BadInputReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/corpus")

    static func inputs(_ target: String) throws -> [[UInt8]] {
        let directory = corpus.appendingPathComponent(target)
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map {
            Array(try Data(contentsOf: directory.appendingPathComponent($0)))
        }
    }

    /// The route each selector of the json fuzz target stands for (Fuzz/SoukFuzz/Fuzz.swift).
    static let jsonRoutes = [
        ("POST", "/api/v1/products"), ("POST", "/api/v1/stores/demo/orders"), ("POST", "/api/v1/checkouts"), ("POST", "/api/v1/buy"),
        ("POST", "/api/v1/flash-sales"), ("POST", "/api/v1/coupons"), ("POST", "/api/v1/flash-sales/1/purchases"),
        ("POST", "/api/v1/wallets/user1@example.com/credit"), ("POST", "/api/v1/vendors"), ("PATCH", "/api/v1/orders/1"),
    ]

    /// A query string's bytes, escaped so that any of them can travel in a URL.
    static func query(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            let scalar = Character(UnicodeScalar(byte))
            return byte < 0x80 && (scalar.isLetter || scalar.isNumber || "&=-_.~".contains(scalar)) ? String(scalar) : "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
        }.joined()
    }

    @Test func noKnownBadInputKillsTheProcessOrGetsA5xx() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-bad-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let souk = try await SoukProcess.start(["run", "--data-dir", directory.path], environment: ["SOUK_RATE_LIMITS": "off"])
        defer { souk.stop() }
        let anonymous = HTTPTestClient(baseURL: souk.baseURL)
        let token = try #require(try await anonymous.send("POST", "/api/v1/sessions", json: #"{"username":"demo","password":"demo1234"}"#).json["token"] as? String)
        let vendor = HTTPTestClient(baseURL: souk.baseURL, token: token)
        // Purchases are read only for a signed-in customer: the demo's user3 sends those bodies.
        let customerToken = try #require(try await anonymous.send("POST", "/api/v1/customers/sessions", json: #"{"email":"user3@example.com","password":"demo1234"}"#).json["token"] as? String)
        let shopper = HTTPTestClient(baseURL: souk.baseURL, token: customerToken)
        func client(for path: String) -> HTTPTestClient {
            path == "/api/v1/checkouts" || path == "/api/v1/buy" || path.hasSuffix("/purchases") ? shopper : vendor
        }
        // The dashboard's forms need the session cookie and a form token.
        let csrf = String(repeating: "A", count: 43)
        let browser = ["Cookie": "souk_session=\(token); souk_csrf=\(csrf)"]

        var sent = 0
        var failures: [String] = []
        func check(_ what: String, _ reply: HTTPTestClient.Reply) {
            sent += 1
            if reply.status >= 500 || reply.status == 0 { failures.append("\(what) → \(reply.status) \(reply.body.prefix(200))") }
        }

        for bytes in try Self.inputs("json") where !bytes.isEmpty {
            let (method, path) = Self.jsonRoutes[Int(bytes[0]) % Self.jsonRoutes.count]
            check("\(method) \(path) \(String(decoding: bytes.dropFirst(), as: UTF8.self).prefix(120))",
                  try await client(for: path).send(method, path, body: Array(bytes.dropFirst()), contentType: "application/json"))
        }
        for bytes in try Self.inputs("purchase") {
            check("purchase body", try await shopper.send("POST", "/api/v1/flash-sales/1/purchases", body: bytes, contentType: "application/json"))
        }
        for bytes in try Self.inputs("form") {
            let body = Array("csrf=\(csrf)&".utf8) + bytes
            check("product form \(String(decoding: bytes, as: UTF8.self).prefix(120))",
                  try await anonymous.send("POST", "/dashboard/products", body: body, contentType: "application/x-www-form-urlencoded", headers: browser))
            check("store order form", try await anonymous.send("POST", "/s/demo/orders", body: body, contentType: "application/x-www-form-urlencoded", headers: browser))
        }
        for bytes in try Self.inputs("multipart") {
            check("image form", try await anonymous.send("POST", "/dashboard/products/1/image", body: bytes,
                                                         contentType: "multipart/form-data; boundary=souk-fuzz-boundary", headers: browser))
        }
        for bytes in try Self.inputs("query") {
            for path in ["/api/v1/search?", "/search?", "/api/v1/prices/SIM-0001?", "/api/v1/orders?", "/api/v1/checkouts?", "/api/v1/search/suggest?q="] {
                check("GET \(path)\(Self.query(bytes).prefix(120))", try await vendor.send("GET", path + Self.query(bytes)))
            }
        }
        // The hardening issue's inputs, and extremes where each route takes a number or a date.
        let far = "300000-01-01T00:00:00Z"
        let known: [(String, String, String)] = [
            ("POST", "/api/v1/coupons", #"{"code":"FAR","kind":"percent","value":10,"max_uses":5,"expires_at":"\#(far)"}"#),
            ("POST", "/api/v1/flash-sales", #"{"product_id":2,"quantity":1,"starts_at":"\#(far)","ends_at":"300000-01-01T01:00:00Z","per_buyer_limit":1}"#),
            ("POST", "/api/v1/products", #"{"name":"Gold","price_minor":12.5,"currency":"USD","stock":1}"#),
            ("POST", "/api/v1/products", #"{"name":"Gold","price_minor":9223372036854775807,"currency":"USD","stock":9223372036854775807}"#),
            ("POST", "/api/v1/wallets/user1@example.com/credit", #"{"amount_minor":9223372036854775807}"#),
            ("POST", "/api/v1/checkouts", #"{"items":[{"product_id":1,"quantity":9223372036854775807}]}"#),
            ("POST", "/api/v1/buy", #"{"user":"user3@example.com","stockid":-9223372036854775808,"quantity":-9223372036854775808}"#),
            ("POST", "/api/v1/stores/demo/orders", #"{"customer":{"name":"C","phone":"5550100","address":"x"},"items":[{"product_id":1,"quantity":1e308}]}"#),
        ]
        for (method, path, body) in known {
            check("\(method) \(path) \(body)", try await client(for: path).send(method, path, json: body))
        }
        for price in ["92233720368547758.99", "92233720368547758.07", "99999999999999999999.99"] {
            let form = Array("csrf=\(csrf)&name=Gold&price=\(price)&currency=USD&stock=1".utf8)
            check("product form price \(price)", try await anonymous.send("POST", "/dashboard/products", body: form, contentType: "application/x-www-form-urlencoded", headers: browser))
        }
        for path in ["/api/v1/orders/1?wait=9223372036854775807", "/api/v1/prices/SIM-0001?from=\(far)", "/api/v1/prices/SIM-0001?from=-9223372036854775808&to=9223372036854775807",
                     "/api/v1/search?q=a&in_stock=maybe&min_price=abc&limit=9223372036854775807&offset=-1", "/api/v1/flash-sales/9223372036854775807/orders?cursor=-9223372036854775808"] {
            check("GET \(path)", try await vendor.send("GET", path))
            check("HEAD \(path)", try await vendor.send("HEAD", path))
        }

        #expect(sent > 60, "the corpora were read: \(sent) requests")
        #expect(failures.isEmpty, "\(failures.count) answers were 5xx or none:\n\(failures.joined(separator: "\n"))")
        #expect(try await anonymous.send("GET", "/healthz").status == 200, "the same process still answers")
        #expect(souk.isRunning, "the process is alive")
    }
}
