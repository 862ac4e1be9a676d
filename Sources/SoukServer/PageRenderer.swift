import Hummingbird
import Mustache
import NIOCore
import SoukCore

/// Renders the HTML pages from the Mustache templates in ``Templates`` (values are HTML-escaped).
struct PageRenderer: Sendable {
    let library: MustacheLibrary

    init() throws {
        var library = MustacheLibrary()
        for (name, text) in Templates.all {
            try library.register(text, named: name)
        }
        self.library = library
    }

    /// The HTML of a page with the layout's shared values (title, logged-in vendor, CSRF token) filled in.
    func render(_ template: String, title: String, _ values: [String: Any] = [:], context: SoukRequestContext) -> String {
        var values = values
        values["title"] = title
        values["csrf"] = context.csrfToken
        if let vendor = context.vendor {
            values["vendor"] = ["username": vendor.username, "store_name": vendor.storeName]
        }
        return library.render(values, withTemplate: template) ?? "<h1>\(title)</h1>"
    }

    /// A piece of a page (no layout), e.g. a panel pushed to the browser over server-sent events.
    func fragment(_ template: String, _ values: [String: Any]) -> String {
        library.render(values, withTemplate: template) ?? ""
    }

    func page(_ template: String, title: String, _ values: [String: Any] = [:], context: SoukRequestContext, status: HTTPResponse.Status = .ok) -> Response {
        let html = render(template, title: title, values, context: context)
        return Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
    }

    func errorPage(_ problem: ErrorMiddleware.Problem, context: SoukRequestContext) -> Response {
        page("error", title: problem.status.reasonPhrase, ["status": problem.status.code, "message": problem.message], context: context, status: problem.status)
    }

    /// Field errors as nested values for `{{#errors.customer.name}}…{{/errors.customer.name}}`
    /// beside each input; `items[3].quantity` is shown as an error of `items`.
    static func errorMap(_ fields: [FieldError]) -> [String: Any] {
        var map: [String: Any] = [:]
        for field in fields {
            let path = field.field.split(separator: "[", maxSplits: 1)[0].split(separator: ".").map(String.init)
            insert(field.message, at: path[...], into: &map)
        }
        return map
    }

    private static func insert(_ message: String, at path: ArraySlice<String>, into map: inout [String: Any]) {
        guard let key = path.first else { return }
        if path.count == 1 {
            if map[key] == nil { map[key] = message }
        } else {
            var child = map[key] as? [String: Any] ?? [:]
            insert(message, at: path.dropFirst(), into: &child)
            map[key] = child
        }
    }
}
