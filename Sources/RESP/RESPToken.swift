import NIOCore

/// One complete RESP3 value as it came off the wire, validated but not yet decoded. Decoding to
/// a ``RESPValue`` happens only when the reply is read, and cannot fail.
public struct RESPToken: Hashable, Sendable {
    /// The raw bytes of exactly one value.
    public let base: ByteBuffer

    /// Deepest nesting of aggregates accepted; deeper input is refused instead of recursing.
    public static let maximumDepth = 64
    /// Largest bulk string or aggregate count accepted (Redis' own proto-max-bulk-len is 512 MB).
    public static let maximumLength = 512 * 1024 * 1024

    init(validated base: ByteBuffer) {
        self.base = base
    }

    /// Takes one complete value off the front of `buffer`, or returns nil (consuming nothing) when
    /// more bytes are needed. Malformed input throws and leaves the buffer as it was.
    public static func read(from buffer: inout ByteBuffer) throws(RESPParsingError) -> RESPToken? {
        var scanner = Scanner(bytes: buffer.readableBytesView)
        guard let length = try scanner.skipValue(depth: 0) else { return nil }
        let slice = buffer.readSlice(length: length)!
        return RESPToken(validated: slice)
    }

    /// The decoded value.
    public var value: RESPValue {
        var scanner = Scanner(bytes: base.readableBytesView)
        return scanner.decodeValidated()
    }

    /// A cursor over bytes that either validates (finding where a value ends) or decodes.
    struct Scanner {
        let bytes: ByteBufferView
        var index: ByteBufferView.Index

        init(bytes: ByteBufferView) {
            self.bytes = bytes
            self.index = bytes.startIndex
        }

        var offset: Int { index - bytes.startIndex }

        // MARK: Validation

        /// Advances past one value; returns the total length consumed from the start, or nil if incomplete.
        mutating func skipValue(depth: Int) throws(RESPParsingError) -> Int? {
            guard depth <= RESPToken.maximumDepth else { throw RESPParsingError(.tooDeeplyNested, at: offset) }
            guard index < bytes.endIndex else { return nil }
            let type = bytes[index]
            let typeOffset = offset
            index += 1
            switch type {
            case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "("):
                guard try line() != nil else { return nil }
            case UInt8(ascii: ":"):
                guard let line = try line() else { return nil }
                guard Self.integer(line) != nil else { throw RESPParsingError(.invalidInteger, at: typeOffset) }
            case UInt8(ascii: ","):
                guard let line = try line() else { return nil }
                guard Self.double(line) != nil else { throw RESPParsingError(.invalidDouble, at: typeOffset) }
            case UInt8(ascii: "#"):
                guard let line = try line() else { return nil }
                guard line.count == 1, line.first == UInt8(ascii: "t") || line.first == UInt8(ascii: "f") else {
                    throw RESPParsingError(.invalidBoolean, at: typeOffset)
                }
            case UInt8(ascii: "_"):
                guard let line = try line() else { return nil }
                guard line.isEmpty else { throw RESPParsingError(.invalidLength, at: typeOffset) }
            case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
                guard let length = try length(allowNull: type == UInt8(ascii: "$"), at: typeOffset) else { return nil }
                if length >= 0 {
                    guard bytes.endIndex - index >= length + 2 else { return nil }
                    index += length
                    guard bytes[index] == UInt8(ascii: "\r"), bytes[index + 1] == UInt8(ascii: "\n") else {
                        throw RESPParsingError(.missingCRLF, at: offset)
                    }
                    index += 2
                }
            case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
                guard let count = try length(allowNull: type == UInt8(ascii: "*"), at: typeOffset) else { return nil }
                let elements = (type == UInt8(ascii: "%") || type == UInt8(ascii: "|")) ? count * 2 : count
                for _ in 0..<max(0, elements) {
                    guard try skipValue(depth: depth + 1) != nil else { return nil }
                }
                // An attribute is metadata about the value that follows it; both form one token.
                if type == UInt8(ascii: "|") {
                    guard try skipValue(depth: depth + 1) != nil else { return nil }
                }
            default:
                throw RESPParsingError(.unknownType, at: typeOffset)
            }
            return offset
        }

        /// The bytes up to the next CRLF (consumed), or nil if no CRLF yet.
        mutating func line() throws(RESPParsingError) -> ByteBufferView.SubSequence? {
            var cursor = index
            while cursor < bytes.endIndex {
                if bytes[cursor] == UInt8(ascii: "\r") {
                    guard cursor + 1 < bytes.endIndex else { return nil }
                    guard bytes[cursor + 1] == UInt8(ascii: "\n") else { throw RESPParsingError(.missingCRLF, at: cursor - bytes.startIndex) }
                    let line = bytes[index..<cursor]
                    index = cursor + 2
                    return line
                }
                if bytes[cursor] == UInt8(ascii: "\n") { throw RESPParsingError(.missingCRLF, at: cursor - bytes.startIndex) }
                cursor += 1
            }
            return nil
        }

        /// A length line: -1 (RESP2 null) where allowed, otherwise 0...maximumLength.
        mutating func length(allowNull: Bool, at typeOffset: Int) throws(RESPParsingError) -> Int? {
            guard let line = try line() else { return nil }
            guard let value = Self.integer(line) else { throw RESPParsingError(.invalidLength, at: typeOffset) }
            if value == -1 && allowNull { return -1 }
            guard value >= 0 else { throw RESPParsingError(.invalidLength, at: typeOffset) }
            guard value <= RESPToken.maximumLength else { throw RESPParsingError(.tooLarge, at: typeOffset) }
            return Int(value)
        }

        static func integer(_ line: ByteBufferView.SubSequence) -> Int64? {
            guard !line.isEmpty, line.count <= 20 else { return nil }
            return Int64(String(decoding: line, as: UTF8.self))
        }

        static func double(_ line: ByteBufferView.SubSequence) -> Double? {
            let text = String(decoding: line, as: UTF8.self)
            switch text {
            case "inf": return .infinity
            case "-inf": return -.infinity
            case "nan": return .nan
            default: return Double(text)
            }
        }

        // MARK: Decoding (input already validated)

        mutating func decodeValidated() -> RESPValue {
            let type = bytes[index]
            index += 1
            switch type {
            case UInt8(ascii: "+"): return .simpleString(String(decoding: validLine(), as: UTF8.self))
            case UInt8(ascii: "-"): return .error(RESPServerError(message: String(decoding: validLine(), as: UTF8.self)))
            case UInt8(ascii: "("): return .bigNumber(String(decoding: validLine(), as: UTF8.self))
            case UInt8(ascii: ":"): return .integer(Self.integer(validLine())!)
            case UInt8(ascii: ","): return .double(Self.double(validLine())!)
            case UInt8(ascii: "#"): return .boolean(validLine().first == UInt8(ascii: "t"))
            case UInt8(ascii: "_"):
                _ = validLine()
                return .null
            case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
                let length = Int(Self.integer(validLine())!)
                if length < 0 { return .null }
                let start = index
                index += length + 2
                var content = ByteBuffer(bytes[start..<(start + length)])
                switch type {
                case UInt8(ascii: "!"): return .error(RESPServerError(message: content.readString(length: length) ?? ""))
                case UInt8(ascii: "="):
                    // Verbatim strings start with a three-letter format and a colon: "txt:".
                    let text = content.readString(length: length) ?? ""
                    return .bulkString(ByteBuffer(string: String(text.dropFirst(4))))
                default: return .bulkString(content)
                }
            case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
                let count = Int(Self.integer(validLine())!)
                if count < 0 { return .null }
                let elements = (0..<count).map { _ in decodeValidated() }
                switch type {
                case UInt8(ascii: "~"): return .set(elements)
                case UInt8(ascii: ">"): return .push(elements)
                default: return .array(elements)
                }
            case UInt8(ascii: "%"):
                let count = Int(Self.integer(validLine())!)
                return .map((0..<count).map { _ in (decodeValidated(), decodeValidated()) }.map { RESPValue.Pair(key: $0.0, value: $0.1) })
            case UInt8(ascii: "|"):
                let count = Int(Self.integer(validLine())!)
                for _ in 0..<(count * 2) { _ = decodeValidated() }
                return decodeValidated()  // attributes are dropped; the value they describe remains
            default:
                preconditionFailure("validated token holds an unknown type")
            }
        }

        mutating func validLine() -> ByteBufferView.SubSequence {
            var cursor = index
            while bytes[cursor] != UInt8(ascii: "\r") { cursor += 1 }
            let line = bytes[index..<cursor]
            index = cursor + 2
            return line
        }
    }
}
