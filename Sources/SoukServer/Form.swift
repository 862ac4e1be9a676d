import Foundation
import Hummingbird
import SoukCore

/// A submitted `application/x-www-form-urlencoded` body, read as plain strings and checked for CSRF.
struct Form: Sendable {
    private(set) var fields: [String: String] = [:]

    subscript(_ name: String) -> String? { fields[name] }

    /// Reads the form of a POST and verifies its CSRF token; non-UTF-8 or broken encoding is a 400.
    static func read(_ request: Request, context: SoukRequestContext) async throws -> Form {
        let body = try await JSONResponse.readBody(request, context: context)
        guard let text = String(validating: body.readableBytesView, as: UTF8.self) else {
            throw SoukError.malformedRequest("the form is not valid UTF-8")
        }
        let form = try parse(text)
        try CSRFMiddleware.verify(form["csrf"], context: context)
        return form
    }

    static func parse(_ text: String) throws(SoukError) -> Form {
        var form = Form()
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : "") else {
                throw .malformedRequest("the form is not validly encoded")
            }
            form.fields[name] = value
        }
        return form
    }

    private static func decode(_ part: Substring) -> String? {
        part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// An optional integer field: nil when empty, a field error when not a number.
    func integer(_ name: String, label: String? = nil, errors: inout [FieldError]) -> Int64? {
        let raw = (self[name] ?? "").trimmingCharacters(in: .whitespaces)
        if raw.isEmpty { return nil }
        guard let value = Int64(raw) else {
            errors.append(FieldError(field: label ?? name, message: "must be a whole number"))
            return nil
        }
        return value
    }

    /// A price typed by a person ("12.50") in minor units of the currency.
    func price(_ name: String, currency: Currency?, errors: inout [FieldError]) -> Int64? {
        let raw = (self[name] ?? "").trimmingCharacters(in: .whitespaces)
        if raw.isEmpty { return nil }
        let digits = currency?.minorDigits ?? 2
        let parts = raw.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        guard let whole = Int64(parts[0]), whole >= 0, fraction.count <= digits, fraction.allSatisfy(\.isNumber),
              let fractionValue = Int64(fraction.isEmpty ? "0" : fraction + String(repeating: "0", count: digits - fraction.count))
        else {
            errors.append(FieldError(field: name, message: "must be an amount such as 12.50"))
            return nil
        }
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: scale)
        guard !overflow else {
            errors.append(FieldError(field: name, message: "is too large"))
            return nil
        }
        return scaled + fractionValue
    }
}
