import NIOCore

/// A command as Redis receives it: an array of bulk strings.
public struct RESPCommand: Sendable, Hashable, CustomStringConvertible {
    public private(set) var arguments: [ByteBuffer]

    public init(_ name: String, _ arguments: [String] = []) {
        self.arguments = [ByteBuffer(string: name)] + arguments.map { ByteBuffer(string: $0) }
    }

    public init(arguments: [ByteBuffer]) {
        self.arguments = arguments
    }

    public mutating func append(_ argument: String) { arguments.append(ByteBuffer(string: argument)) }
    public mutating func append(_ argument: ByteBuffer) { arguments.append(argument) }
    public mutating func append(_ argument: some BinaryInteger) { arguments.append(ByteBuffer(string: String(argument))) }

    /// The command name, upper-cased, for logs and metrics (arguments may hold secrets).
    public var name: String { String(buffer: arguments.first ?? ByteBuffer()).uppercased() }

    public var description: String { name }

    /// Writes `*N\r\n$len\r\narg\r\n…`.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.readableBytes)\r\n")
            buffer.writeImmutableBuffer(argument)
            buffer.writeString("\r\n")
        }
    }
}

/// Frames the byte stream from the server into ``RESPToken``s, one complete value at a time,
/// however the bytes were split.
public struct RESPTokenDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = RESPToken

    public init() {}

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPToken? {
        try RESPToken.read(from: &buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPToken? {
        try decode(buffer: &buffer)
    }
}
