import Foundation
import SoukCore

/// A value bound to a statement parameter. Timestamps travel as Int64 microseconds since 1970.
public enum SQLValue: Sendable, Hashable {
    case int(Int64)
    case text(String)
    case bool(Bool)
    case null
    /// Arrays, for PostgreSQL's `unnest`: a batch of any size is one statement of one shape, so it
    /// is planned once. SQLite has no arrays; statements for it never bind them.
    case ints([Int64])
    case texts([String])
}

/// A statement written once for both dialects: values are interpolated as bind parameters
/// (`$1`, `$2`, …), never spliced into the text.
///
///     let sql: SQL = "SELECT name FROM products WHERE id = \(id) AND vendor_id = \(vendorID)"
public struct SQL: Sendable, ExpressibleByStringInterpolation {
    public private(set) var text: String
    public private(set) var binds: [SQLValue]
    /// Planned once per connection and reused (PostgreSQL), for the hottest statements, whose
    /// planning cost as much as their execution. Only for statements of a fixed shape.
    public private(set) var isPrepared = false

    /// This statement, planned once per connection (see ``isPrepared``).
    public func prepared() -> SQL {
        var copy = self
        copy.isPrepared = true
        return copy
    }

    public init(stringLiteral value: String) {
        self.text = value
        self.binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        self.text = stringInterpolation.text
        self.binds = stringInterpolation.binds
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var text = ""
        var binds: [SQLValue] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) { text += literal }

        public mutating func appendInterpolation(_ value: SQLValue) {
            binds.append(value)
            text += "$\(binds.count)"
        }

        public mutating func appendInterpolation(_ value: Int64) { appendInterpolation(.int(value)) }
        public mutating func appendInterpolation(_ value: Int) { appendInterpolation(.int(Int64(value))) }
        public mutating func appendInterpolation(_ value: String) { appendInterpolation(.text(value)) }
        public mutating func appendInterpolation(_ value: Bool) { appendInterpolation(.bool(value)) }
        public mutating func appendInterpolation(_ value: Date) { appendInterpolation(.int(value.sqlMicroseconds)) }
        public mutating func appendInterpolation(_ value: Int64?) { appendInterpolation(value.map(SQLValue.int) ?? .null) }
        public mutating func appendInterpolation(_ value: String?) { appendInterpolation(value.map(SQLValue.text) ?? .null) }
        public mutating func appendInterpolation(_ value: Bool?) { appendInterpolation(value.map(SQLValue.bool) ?? .null) }
        public mutating func appendInterpolation(_ values: [Int64]) { appendInterpolation(.ints(values)) }
        public mutating func appendInterpolation(_ values: [String]) { appendInterpolation(.texts(values)) }
        /// A fixed piece of statement text shared by several statements (it binds no values).
        public mutating func appendInterpolation(fragment: SQL) {
            precondition(fragment.binds.isEmpty, "a fragment binds no values")
            text += fragment.text
        }

    }

    /// Appends another statement's text and binds, renumbering its parameters after ours; this is
    /// how a multi-row INSERT or an IN list is built without splicing values into the text.
    public mutating func append(_ other: SQL) {
        let offset = binds.count
        var bytes = Array(other.text.utf8)[...]
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count + 8)
        while let byte = bytes.popFirst() {
            result.append(byte)
            guard byte == UInt8(ascii: "$") else { continue }
            var number = 0
            var digits = 0
            while let digit = bytes.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) {
                number = number * 10 + Int(digit - UInt8(ascii: "0"))
                digits += 1
                bytes.removeFirst()
            }
            if digits > 0 { result += Array(String(number + offset).utf8) }
        }
        text += String(decoding: result, as: UTF8.self)
        binds += other.binds
    }

    /// The text with `$n` parameters rewritten as SQLite's `?n` (our statements hold no `$` otherwise).
    var sqliteText: String {
        var bytes = Array(text.utf8)
        for index in bytes.indices.dropLast() where bytes[index] == UInt8(ascii: "$") {
            if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index + 1]) {
                bytes[index] = UInt8(ascii: "?")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// One result row, read by column name.
public struct SQLRow: Sendable {
    let values: [String: SQLValue]

    init(_ values: [String: SQLValue]) { self.values = values }

    func value(_ column: String) throws -> SQLValue {
        guard let value = values[column] else { throw SQLDatabaseError.missingColumn(column) }
        return value
    }

    public func int(_ column: String) throws -> Int64 {
        switch try value(column) {
        case .int(let value): return value
        case .bool(let value): return value ? 1 : 0
        default: throw SQLDatabaseError.typeMismatch(column: column, expected: "integer")
        }
    }

    public func optionalInt(_ column: String) throws -> Int64? {
        if case .null = try value(column) { return nil }
        return try int(column)
    }

    public func optionalString(_ column: String) throws -> String? {
        if case .null = try value(column) { return nil }
        return try string(column)
    }

    public func string(_ column: String) throws -> String {
        guard case .text(let value) = try value(column) else {
            throw SQLDatabaseError.typeMismatch(column: column, expected: "text")
        }
        return value
    }

    public func bool(_ column: String) throws -> Bool {
        switch try value(column) {
        case .bool(let value): return value
        case .int(let value): return value != 0
        default: throw SQLDatabaseError.typeMismatch(column: column, expected: "boolean")
        }
    }

    public func date(_ column: String) throws -> Date { Date(sqlMicroseconds: try int(column)) }

    public func optionalDate(_ column: String) throws -> Date? { try optionalInt(column).map(Date.init(sqlMicroseconds:)) }
}

/// Failures of the SQL layer itself. A database's own message is logged, never shown to a client.
public enum SQLDatabaseError: Error, CustomStringConvertible {
    case missingColumn(String)
    case typeMismatch(column: String, expected: String)
    case invalidURL(String)
    case schemaOutOfDate(pending: [String])
    case schemaNewerThanBinary(version: Int)
    case unsupported(String)

    public var description: String {
        switch self {
        case .missingColumn(let column): "result has no column \(column)"
        case .typeMismatch(let column, let expected): "column \(column) is not \(expected)"
        case .invalidURL(let why): "invalid database URL: \(why)"
        case .schemaOutOfDate(let pending): "the database needs migrations (run `souk migrate`): \(pending.joined(separator: ", "))"
        case .schemaNewerThanBinary(let version): "the database has migration \(version), which this souk does not know; upgrade souk"
        case .unsupported(let what): what
        }
    }
}

extension Date {
    /// Microseconds since 1970. Saturates instead of trapping: client dates are checked against
    /// ``DateRange`` where they enter, so this only guards against a date that slipped past.
    var sqlMicroseconds: Int64 { Int64(saturating: (timeIntervalSince1970 * 1_000_000).rounded()) }
    init(sqlMicroseconds: Int64) { self.init(timeIntervalSince1970: Double(sqlMicroseconds) / 1_000_000) }
}
