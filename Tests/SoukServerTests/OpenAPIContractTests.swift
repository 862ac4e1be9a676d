import Foundation
import Hummingbird
import SoukServer
import SoukSQL
import SoukTesting
import Testing

/// The OpenAPI document and the router agree: every JSON route is documented, and every
/// documented operation is a route. (Schemathesis, run by scripts/test, checks the answers.)
@Suite("OpenAPI contract")
struct OpenAPIContractTests {
    /// The JSON API: everything under /api/, and the operational endpoints. Pages, assets and media are HTML or bytes.
    static func isAPI(_ path: String) -> Bool {
        path.hasPrefix("/api/") || ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(path)
    }

    /// `/api/v1/products/:id` → `/api/v1/products/{id}`.
    static func openAPIPath(_ path: String) -> String {
        "/" + path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
    }

    @Test func everyRouteIsDocumentedAndEveryOperationIsARoute() async throws {
        try await TestBackend.sqlite.withDatabase { database in
            let services = try await SoukServices(storage: SQLStorage(database: database), hasher: BcryptPasswordHasher(cost: 4), logger: TestLog.logger)
            let router = buildRouter(services)
            let routes = Set(router.routes.map { route in "\(route.method.rawValue) \(Self.openAPIPath(route.path.description))" })
            let apiRoutes = routes.filter { Self.isAPI(String($0.split(separator: " ")[1])) }
            let documented = try OpenAPIDocument.operations()
            #expect(apiRoutes.count > 30, "the router's routes were read: \(routes.sorted())")
            #expect(apiRoutes.subtracting(documented).isEmpty, "routes missing from the document: \(apiRoutes.subtracting(documented).sorted())")
            #expect(documented.subtracting(apiRoutes).isEmpty, "documented operations with no route: \(documented.subtracting(apiRoutes).sorted())")
        }
    }

    @Test func theDocumentIsServedAndReadable() async throws {
        try await TestApp.run { app in
            let served = try await app.send(.get, "/openapi.json")
            #expect(served.status == .ok && served.headers[.contentType] == "application/json")
            #expect(served.bytes == OpenAPIDocument.bytes)
            #expect(served.json["openapi"] as? String == "3.1.0")
            let docs = try await app.send(.get, "/docs")
            #expect(docs.status == .ok)
            for operation in try OpenAPIDocument.operations() {
                let parts = operation.split(separator: " ", maxSplits: 1)
                #expect(docs.body.contains("<code>\(parts[0]) \(parts[1])</code>"), "/docs shows \(operation)")
            }
        }
    }
}
