/// Why bytes from the server could not be read as RESP. Distinct from the server's own `-ERR`
/// replies (``RESPServerError``) and from connection failures.
public struct RESPParsingError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unknownType
        case invalidLength
        case invalidInteger
        case invalidDouble
        case invalidBoolean
        case missingCRLF
        case tooDeeplyNested
        case tooLarge
    }

    public let code: Code
    /// Offset of the offending byte from the start of the token being read.
    public let offset: Int

    public init(_ code: Code, at offset: Int) {
        self.code = code
        self.offset = offset
    }

    public var description: String { "RESP parsing error \(code.rawValue) at byte \(offset)" }
}

/// An error reply from the server (`-ERR …` or a bulk error `!…`): the command failed, the
/// connection is fine.
public struct RESPServerError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String

    public init(message: String) { self.message = message }

    /// The first word of the message: `ERR`, `WRONGTYPE`, `NOSCRIPT`, `BUSYGROUP`, …
    public var code: String { String(message.prefix { $0 != " " }) }

    public var description: String { message }
}
