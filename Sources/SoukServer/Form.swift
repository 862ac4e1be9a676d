import Foundation
import Hummingbird
import NIOCore
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
        let (total, overflowAgain) = scaled.addingReportingOverflow(fractionValue)
        guard !overflow, !overflowAgain else {
            errors.append(FieldError(field: name, message: "is too large"))
            return nil
        }
        return total
    }
}

/// A `multipart/form-data` body (a form with a file): its text fields and its files' bytes.
struct MultipartForm: Sendable {
    var form = Form()
    var files: [String: [UInt8]] = [:]

    /// Reads the body up to `limit` bytes and verifies the CSRF field, like ``Form/read(_:context:)``.
    static func read(_ request: Request, context: SoukRequestContext, limit: Int) async throws -> MultipartForm {
        guard let type = request.headers[.contentType], type.lowercased().hasPrefix("multipart/form-data"),
              let boundary = type.split(separator: ";").lazy.map({ $0.trimmingCharacters(in: .whitespaces) })
                  .first(where: { $0.lowercased().hasPrefix("boundary=") })
                  .map({ String($0.dropFirst("boundary=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }),
              !boundary.isEmpty, boundary.utf8.count <= 70
        else { throw SoukError.malformedRequest("expected a multipart/form-data body") }
        let body = try await JSONResponse.readBody(request, limit: limit)
        let parsed = try parse(Array(buffer: body), boundary: boundary)
        try CSRFMiddleware.verify(parsed.form["csrf"], context: context)
        return parsed
    }

    static func parse(_ bytes: [UInt8], boundary: String) throws(SoukError) -> MultipartForm {
        let delimiter = Array("--\(boundary)".utf8)
        var result = MultipartForm()
        guard var position = find(delimiter, in: bytes, from: 0) else { throw .malformedRequest("the multipart body has no parts") }
        while true {
            position += delimiter.count
            if bytes[position...].starts(with: [0x2D, 0x2D]) { return result }  // "--": the end
            guard bytes[position...].starts(with: [0x0D, 0x0A]), let headerEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: bytes, from: position + 2),
                  let next = find([0x0D, 0x0A] + delimiter, in: bytes, from: headerEnd + 4)
            else { throw .malformedRequest("a multipart part is broken") }
            guard let headers = String(validating: bytes[(position + 2)..<headerEnd], as: UTF8.self) else {
                throw .malformedRequest("a multipart header is not UTF-8")
            }
            let content = Array(bytes[(headerEnd + 4)..<next])
            let disposition = headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-disposition:") } ?? ""
            guard let name = parameter("name", in: disposition) else { throw .malformedRequest("a multipart part has no name") }
            if parameter("filename", in: disposition) != nil {
                result.files[name] = content
            } else {
                guard let text = String(validating: content, as: UTF8.self) else { throw .malformedRequest("a form field is not UTF-8") }
                result.form.set(name, text)
            }
            position = next + 2
        }
    }

    static func parameter(_ name: String, in header: Substring) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == name { return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return nil
    }

    /// The first occurrence of `needle` at or after `start`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, needle.count <= haystack.count else { return nil }
        var index = start
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first, haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}

extension Form {
    mutating func set(_ name: String, _ value: String) { fields[name] = value }
}
