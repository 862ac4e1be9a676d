import Foundation
import Hummingbird
import NIOCore

/// The OpenAPI 3.1 document of the JSON API (`Resources/openapi.json`, compiled in), served as
/// is at `/openapi.json` and as a readable page at `/docs`. `OpenAPIContractTests` checks that it
/// names every route the router has and nothing else.
public enum OpenAPIDocument {
    public static let bytes: [UInt8] = PackageResources.openapi_json

    /// "GET /api/v1/products/{id}" for every operation of the document.
    public static func operations() throws -> Set<String> {
        var operations = Set<String>()
        for (path, item) in try paths() {
            for method in item.keys where methods.contains(method) { operations.insert("\(method.uppercased()) \(path)") }
        }
        return operations
    }

    static let methods: Set<String> = ["get", "put", "post", "patch", "delete", "head", "options"]

    static func document() throws -> [String: Any] {
        guard let document = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw CocoaError(.coderReadCorrupt)
        }
        return document
    }

    static func paths() throws -> [String: [String: Any]] {
        (try document()["paths"] as? [String: [String: Any]]) ?? [:]
    }
}

struct OpenAPIController {
    let pages: PageRenderer

    func addRoutes(root: Router<SoukRequestContext>, pages html: RouterGroup<SoukRequestContext>) {
        let json = ByteBuffer(bytes: OpenAPIDocument.bytes)
        root.get("openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "public, max-age=300"], body: .init(byteBuffer: json))
        }
        html.get("docs") { _, context in
            pages.page("api_docs", title: "API", try Self.pageValues(), context: context)
        }
    }

    /// The document arranged for the `/docs` template: operations grouped by tag, in document order of tags.
    static func pageValues() throws -> [String: Any] {
        let document = try OpenAPIDocument.document()
        let info = document["info"] as? [String: Any] ?? [:]
        var byTag: [String: [[String: Any]]] = [:]
        for (path, item) in try OpenAPIDocument.paths() {
            for (method, value) in item where OpenAPIDocument.methods.contains(method) {
                guard let operation = value as? [String: Any] else { continue }
                let parameters = ((operation["parameters"] as? [[String: Any]]) ?? []).map { parameter -> [String: Any] in
                    ["name": parameter["name"] ?? "", "in": parameter["in"] ?? "", "required": parameter["required"] as? Bool ?? false,
                     "description": parameter["description"] ?? ""]
                }
                let responses = ((operation["responses"] as? [String: Any]) ?? [:]).sorted { $0.key < $1.key }.map { status, response -> [String: Any] in
                    ["status": status, "description": ((response as? [String: Any])?["description"] as? String) ?? ""]
                }
                let body = ((operation["requestBody"] as? [String: Any])?["content"] as? [String: Any])?.keys.sorted().joined(separator: ", ")
                let security = operation["security"] as? [[String: Any]]
                let entry: [String: Any] = [
                    "method": method.uppercased(), "path": path, "operation_id": operation["operationId"] ?? "",
                    "summary": operation["summary"] ?? "", "description": operation["description"] ?? "",
                    "parameters": parameters, "has_parameters": !parameters.isEmpty, "responses": responses, "body": body ?? "",
                    "vendor_only": security.map { $0.count == 1 && $0[0]["bearerAuth"] != nil } ?? false,
                ]
                for tag in (operation["tags"] as? [String]) ?? ["other"] { byTag[tag, default: []].append(entry) }
            }
        }
        let declared = ((document["tags"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        let order = declared + byTag.keys.filter { !declared.contains($0) }.sorted()
        let descriptions = Dictionary(((document["tags"] as? [[String: Any]]) ?? []).compactMap { tag in
            (tag["name"] as? String).map { ($0, tag["description"] as? String ?? "") }
        }, uniquingKeysWith: { first, _ in first })
        let tags = order.compactMap { name -> [String: Any]? in
            guard let operations = byTag[name] else { return nil }
            return ["name": name, "description": descriptions[name] ?? "",
                    "operations": operations.sorted { ($0["path"] as! String, $0["method"] as! String) < ($1["path"] as! String, $1["method"] as! String) }]
        }
        return ["api_title": info["title"] ?? "API", "api_version": info["version"] ?? "", "api_description": info["description"] ?? "",
                "openapi": document["openapi"] ?? "", "tags": tags]
    }
}
