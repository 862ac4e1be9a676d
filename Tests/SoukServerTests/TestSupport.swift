import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import SoukCore
import SoukImages
import SoukServer
import SoukSQL
import SoukTesting
import Testing

/// A Souk app on a fresh SQLite database, driven through Hummingbird's router test client.
struct TestApp {
    let client: any TestClientProtocol
    let storage: SQLStorage
    let database: any SQLDatabase
    /// Where uploaded images go (a fresh temporary directory), and the job queue (in the database).
    let media: FileMediaStore
    let jobs: SQLJobQueue
    let services: SoukServices

    /// The secret the tests' payment provider signs its events with.
    static let paymentEventSecret = "whsec_souk_tests_0123456789"

    /// Rate limits are off unless a test asks for them: most tests act as one client doing a lot.
    static func run(backend: TestBackend = .sqlite, pageCache: (any PageCache)? = nil, rateLimits: RateLimitPolicy = .off, readiness: [ReadinessCheck] = [], flashSaleGate: (any FlashSaleGate)? = nil, gate: (@Sendable (SQLStorage) -> any FlashSaleGate)? = nil, rateLimiter: (any RateLimiter)? = nil, behindProxy: Bool = false, payments: (any PaymentProvider)? = nil, testing: TestingSetup = .router, _ body: @escaping @Sendable (TestApp) async throws -> Void) async throws {
        try await backend.withDatabase { database in
            let storage = SQLStorage(database: database)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-media-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let media = try FileMediaStore(directory: directory)
            let jobs = SQLJobQueue(database: database)
            // Cost 4 keeps bcrypt real but fast enough for hundreds of sign-ups in tests.
            SoukMetrics.bootstrap()
            let services = try await SoukServices(
                storage: storage, hasher: BcryptPasswordHasher(cost: 4), pageCache: pageCache, flashSaleGate: flashSaleGate ?? gate?(storage), images: try VipsImageProcessor(), media: media, jobs: jobs,
                rateLimiter: rateLimiter, rateLimits: rateLimits, behindProxy: behindProxy, readinessChecks: readiness,
                payments: payments ?? SimulatedPaymentProvider(), paymentEventSecret: Self.paymentEventSecret, logger: TestLog.logger)
            let app = buildApplication(services, host: "127.0.0.1", port: 0, logger: TestLog.logger)
            try await app.test(testing) { client in
                try await body(TestApp(client: client, storage: storage, database: database, media: media, jobs: jobs, services: services))
            }
        }
    }

    struct Reply: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: String
        var bytes: [UInt8] = []

        /// The body as a JSON object (empty when it is not one).
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }

        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var errorFields: [String] { ((json["error"] as? [String: Any])?["fields"] as? [[String: Any]])?.compactMap { $0["field"] as? String } ?? [] }
    }

    /// Sends a request with a raw body.
    func send(_ method: HTTPRequest.Method, _ uri: String, body: ByteBuffer? = nil, token: String? = nil, headers: HTTPFields = [:]) async throws -> Reply {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        let response = try await client.executeRequest(uri: uri, method: method, headers: headers, body: body)
        return Reply(status: response.status, headers: response.headers, body: String(buffer: response.body), bytes: Array(buffer: response.body))
    }

    /// Sends a JSON body given as a literal string (so tests can send exactly the bytes they mean).
    func json(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, token: String? = nil) async throws -> Reply {
        try await send(method, uri, body: body.map { ByteBuffer(string: $0) }, token: token)
    }

    /// Signs a vendor up through the API and returns its bearer token.
    func vendorToken(_ username: String, password: String = "password123") async throws -> String {
        let signup = try await json(.post, "/api/v1/vendors", #"{"username":"\#(username)","password":"\#(password)","store_name":"Store \#(username)"}"#)
        #expect(signup.status == .created, "\(signup.body)")
        let login = try await json(.post, "/api/v1/sessions", #"{"username":"\#(username)","password":"\#(password)"}"#)
        #expect(login.status == .created, "\(login.body)")
        return try #require(login.json["token"] as? String)
    }

    /// Signs a customer up through the API and returns its id and bearer token.
    func customer(_ email: String, password: String = "password123", name: String = "Shopper") async throws -> (id: String, token: String) {
        let signup = try await json(.post, "/api/v1/customers", #"{"email":"\#(email)","password":"\#(password)","name":"\#(name)"}"#)
        #expect(signup.status == .created, "\(signup.body)")
        let login = try await json(.post, "/api/v1/customers/sessions", #"{"email":"\#(email)","password":"\#(password)"}"#)
        #expect(login.status == .created, "\(login.body)")
        return (try #require(signup.json["id"] as? String), try #require(login.json["token"] as? String))
    }

    /// Customers made straight in the store, each with a token signed as a login would sign it: for
    /// tests that need hundreds of buyers (`CustomerTokens.mintShoppers`, named for readable failures).
    func shoppers(_ names: [String]) async throws -> [String: (id: String, token: String)] {
        let prefix = "t\(UInt32.random(in: 0 ... .max))"
        let minted = try await services.customerTokens.mintShoppers(names.count, emailPrefix: prefix)
        try #require(minted.count == names.count)
        return Dictionary(uniqueKeysWithValues: zip(names, minted).map { ($0, $1) })
    }

    /// Creates a product through the API and returns its id.
    func product(token: String, name: String = "Tea", price: Int = 250, stock: Int = 10, available: Bool = true) async throws -> Int64 {
        let reply = try await json(.post, "/api/v1/products", #"{"name":"\#(name)","description":"Good","price_minor":\#(price),"currency":"USD","stock":\#(stock),"available":\#(available)}"#, token: token)
        #expect(reply.status == .created, "\(reply.body)")
        return try #require((reply.json["id"] as? NSNumber)?.int64Value)
    }

    func stock(of id: Int64, token: String) async throws -> Int? {
        (try await json(.get, "/api/v1/products/\(id)", token: token).json["stock"] as? NSNumber)?.intValue
    }

    func count(_ table: String) async throws -> Int {
        Int(try await database.read(SQL(stringLiteral: "SELECT COUNT(*) AS n FROM \(table)"))[0].int("n"))
    }
}

/// A browser's cookie jar for the HTML tests: keeps what `Set-Cookie` sets and sends it back.
final class Browser: @unchecked Sendable {
    let app: TestApp
    private(set) var cookies: [String: String] = [:]

    init(_ app: TestApp) { self.app = app }

    var csrf: String { cookies["souk_csrf"] ?? "" }

    func get(_ uri: String) async throws -> TestApp.Reply {
        try await request(.get, uri, body: nil)
    }

    /// Posts a form; the CSRF field is added unless `csrf` says otherwise.
    func post(_ uri: String, _ fields: [(String, String)], csrf: String? = nil) async throws -> TestApp.Reply {
        let all = [("csrf", csrf ?? self.csrf)] + fields
        let body = all.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        return try await request(.post, uri, body: ByteBuffer(string: body), contentType: "application/x-www-form-urlencoded")
    }

    func request(_ method: HTTPRequest.Method, _ uri: String, body: ByteBuffer?, contentType: String? = nil) async throws -> TestApp.Reply {
        var headers: HTTPFields = [:]
        if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        if let contentType { headers[.contentType] = contentType }
        let reply = try await app.send(method, uri, body: body, headers: headers)
        for header in reply.headers[values: .setCookie] {
            let pair = header.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { continue }
            let attributes = header.lowercased()
            if pair[1].isEmpty || attributes.contains("max-age=0") {
                cookies[String(pair[0])] = nil
            } else {
                cookies[String(pair[0])] = String(pair[1])
            }
        }
        return reply
    }

    static func encode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}
