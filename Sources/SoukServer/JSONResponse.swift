import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import SoukCore

/// JSON in and out, snake_case on the wire, dates as ISO 8601.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // ISO 8601 with milliseconds: results are pushed within milliseconds of being decided.
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    /// A date as every API body writes it: `2026-12-05T13:20:00.123Z`.
    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: try encoder.encode(value))))
    }

    /// Encoded bodies of errors without field details: the same few (`sold_out`, `not_found`) are
    /// answered tens of thousands of times a second under load, so they are encoded once.
    private static let encodedErrors = NIOLockedValueBox<[String: ByteBuffer]>([:])

    static func error(_ problem: ErrorMiddleware.Problem) -> Response {
        Response(status: problem.status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: errorBody(problem)))
    }

    /// `{"error":{"code","message","fields"?}}`; shared by the router and the fast lanes.
    static func errorBody(_ problem: ErrorMiddleware.Problem) -> ByteBuffer {
        let key = "\(problem.status.code)|\(problem.code)|\(problem.message)"
        if problem.fields.isEmpty, let body = encodedErrors.withLockedValue({ $0[key] }) { return body }
        // Encoding these plain strings cannot fail.
        let body = ByteBuffer(data: (try? encoder.encode(ErrorBody(problem))) ?? Data())
        if problem.fields.isEmpty {
            encodedErrors.withLockedValue { cache in
                if cache.count >= 512 { cache.removeAll(keepingCapacity: true) }
                cache[key] = body
            }
        }
        return body
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
            let fields: [FieldError]?
        }
        let error: Detail

        init(_ problem: ErrorMiddleware.Problem) {
            error = Detail(code: problem.code, message: problem.message, fields: problem.fields.isEmpty ? nil : problem.fields)
        }
    }

    /// Reads and decodes a JSON body; a body that is too large, malformed or of the wrong shape
    /// becomes a ``SoukError`` naming the field, never a 500.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: SoukRequestContext) async throws -> T {
        try decode(T.self, from: try await readBody(request, context: context))
    }

    static func decode<T: Decodable>(_ type: T.Type, from body: ByteBuffer) throws -> T {
        let data = Data(buffer: body)
        do {
            return try decoder.decode(T.self, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty, let fields = numbersThatFitNoInteger(in: data) {
                throw SoukError.validationFailed(fields)
            }
            throw Self.soukError(error)
        }
    }

    static func readBody(_ request: Request, context: SoukRequestContext) async throws -> ByteBuffer {
        try await readBody(request, limit: context.maxUploadSize)
    }

    /// The whole body, or ``SoukError/payloadTooLarge(limit:)`` past `limit` bytes.
    static func readBody(_ request: Request, limit: Int) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw SoukError.payloadTooLarge(limit: limit)
        } catch is NIOTooManyBytesError {
            throw SoukError.payloadTooLarge(limit: limit)
        }
    }

    /// The decoder reports a number that fits no integer (`12.5`, `1e30`) without naming its field,
    /// as if the JSON were broken; for a body that is valid JSON, this names the fields that hold
    /// such numbers (nil when there are none, or the body is not JSON at all).
    static func numbersThatFitNoInteger(in data: Data) -> [FieldError]? {
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return nil }
        var fields: [FieldError] = []
        func visit(_ value: Any, path: String) {
            switch value {
            case let dictionary as [String: Any]:
                for key in dictionary.keys.sorted() { visit(dictionary[key]!, path: path.isEmpty ? key : path + "." + key) }
            case let array as [Any]:
                for (index, element) in array.enumerated() { visit(element, path: path + "[\(index)]") }
            case is Bool: break
            case let number as NSNumber:
                if Int64(number.stringValue) == nil {
                    fields.append(FieldError(field: path, message: "must be a whole number from -9223372036854775808 to 9223372036854775807"))
                }
            default: break
            }
        }
        visit(object, path: "")
        return fields.isEmpty ? nil : fields
    }

    static func soukError(_ error: DecodingError) -> SoukError {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { key in key.intValue.map { "[\($0)]" } ?? "." + snakeCase(key.stringValue) }
                .joined().replacingOccurrences(of: ".[", with: "[").trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .validationFailed([FieldError(field: path(context.codingPath + [key]), message: "is required")])
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            guard !context.codingPath.isEmpty else { return .malformedRequest("expected a JSON object") }
            return .validationFailed([FieldError(field: path(context.codingPath), message: "must be \(describe(type))")])
        case .dataCorrupted(let context):
            guard !context.codingPath.isEmpty else {
                // Syntax errors, and numbers that fit no integer, surface here without a field.
                return .malformedRequest("the body is not valid UTF-8 JSON of the expected form (\(context.debugDescription))")
            }
            return .validationFailed([FieldError(field: path(context.codingPath), message: "has a value out of range or of the wrong form")])
        @unknown default:
            return .malformedRequest("the body could not be decoded")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type: "an integer"
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        default: "of another type"
        }
    }

    private static func snakeCase(_ key: String) -> String {
        var result = ""
        for character in key {
            if character.isUppercase {
                result += "_" + character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }
}
