import NIOCore

/// A decoded RESP3 value. RESP2's null bulk string and null array both decode to ``null``.
public enum RESPValue: Hashable, Sendable {
    public struct Pair: Hashable, Sendable {
        public let key: RESPValue
        public let value: RESPValue

        public init(key: RESPValue, value: RESPValue) {
            self.key = key
            self.value = value
        }
    }

    case simpleString(String)
    case bulkString(ByteBuffer)
    case error(RESPServerError)
    case integer(Int64)
    case double(Double)
    case boolean(Bool)
    case bigNumber(String)
    case null
    case array([RESPValue])
    case set([RESPValue])
    case map([Pair])
    case push([RESPValue])

    /// The value as text, for simple, bulk and verbatim strings (and numbers, as Redis often sends them as strings).
    public var string: String? {
        switch self {
        case .simpleString(let text), .bigNumber(let text): text
        case .bulkString(let buffer): String(buffer: buffer)
        case .integer(let value): String(value)
        case .double(let value): String(value)
        default: nil
        }
    }

    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .simpleString, .bulkString: string.flatMap { Int64($0) }
        default: nil
        }
    }

    public var double: Double? {
        switch self {
        case .double(let value): value
        case .integer(let value): Double(value)
        case .simpleString, .bulkString: string.flatMap { Double($0) }
        default: nil
        }
    }

    /// Elements of arrays, sets and pushes; a RESP3 map flattened to key, value, key, value.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let values), .set(let values), .push(let values): values
        case .map(let pairs): pairs.flatMap { [$0.key, $0.value] }
        default: nil
        }
    }

    public var isNull: Bool { self == .null }
}
