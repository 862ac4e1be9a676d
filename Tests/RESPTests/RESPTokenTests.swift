import NIOCore
import NIOTestUtils
import RESP
import Testing

@Suite("RESP3 tokens")
struct RESPTokenTests {
    func decode(_ text: String) throws -> RESPValue? {
        var buffer = ByteBuffer(string: text)
        return try RESPToken.read(from: &buffer)?.value
    }

    @Test func everyRESP3TypeDecodes() throws {
        #expect(try decode("+OK\r\n") == .simpleString("OK"))
        #expect(try decode("-ERR unknown command\r\n") == .error(RESPServerError(message: "ERR unknown command")))
        #expect(try decode(":-42\r\n") == .integer(-42))
        #expect(try decode("$5\r\nhello\r\n") == .bulkString(ByteBuffer(string: "hello")))
        #expect(try decode("$0\r\n\r\n") == .bulkString(ByteBuffer()))
        #expect(try decode("_\r\n") == .null)
        #expect(try decode("#t\r\n") == .boolean(true))
        #expect(try decode(",3.25\r\n") == .double(3.25))
        #expect(try decode(",-inf\r\n") == .double(-.infinity))
        #expect(try decode("(3492890328409238509324850943850943825024385\r\n") == .bigNumber("3492890328409238509324850943850943825024385"))
        #expect(try decode("!21\r\nSYNTAX invalid syntax\r\n") == .error(RESPServerError(message: "SYNTAX invalid syntax")))
        #expect(try decode("=15\r\ntxt:Some string\r\n") == .bulkString(ByteBuffer(string: "Some string")))
        #expect(try decode("*2\r\n:1\r\n$1\r\na\r\n") == .array([.integer(1), .bulkString(ByteBuffer(string: "a"))]))
        #expect(try decode("~1\r\n+x\r\n") == .set([.simpleString("x")]))
        #expect(try decode(">2\r\n+message\r\n+hi\r\n") == .push([.simpleString("message"), .simpleString("hi")]))
        #expect(try decode("%1\r\n+key\r\n:7\r\n") == .map([.init(key: .simpleString("key"), value: .integer(7))]))
        // An attribute travels with the value it describes and is dropped.
        #expect(try decode("|1\r\n+ttl\r\n:3600\r\n:5\r\n") == .integer(5))
    }

    @Test func resp2NullsAreAccepted() throws {
        #expect(try decode("$-1\r\n") == .null)
        #expect(try decode("*-1\r\n") == .null)
    }

    @Test func incompleteInputConsumesNothing() throws {
        for text in ["", "+OK", "+OK\r", "$5\r\nhel", "$5\r\nhello\r", "*2\r\n:1\r\n", "%1\r\n+key\r\n", "|1\r\n+a\r\n+b\r\n"] {
            var buffer = ByteBuffer(string: text)
            #expect(try RESPToken.read(from: &buffer) == nil, "\(text.debugDescription)")
            #expect(buffer.readableBytes == text.utf8.count)
        }
    }

    @Test func malformedInputIsATypedError() {
        let cases: [(String, RESPParsingError.Code)] = [
            ("?what\r\n", .unknownType),
            (":12a\r\n", .invalidInteger),
            (",abc\r\n", .invalidDouble),
            ("#x\r\n", .invalidBoolean),
            ("$-2\r\n", .invalidLength),
            ("$abc\r\n", .invalidLength),
            ("*-5\r\n", .invalidLength),
            ("%-1\r\n", .invalidLength),
            ("$3\r\nabcXY", .missingCRLF),
            ("+OK\nnext", .missingCRLF),
            ("$999999999999\r\n", .tooLarge),
            ("_x\r\n", .invalidLength),
        ]
        for (text, code) in cases {
            var buffer = ByteBuffer(string: text)
            #expect(throws: RESPParsingError.self, "\(text.debugDescription)") { try RESPToken.read(from: &buffer) }
            do {
                _ = try RESPToken.read(from: &buffer)
            } catch {
                #expect(error.code == code, "\(text.debugDescription)")
            }
        }
    }

    @Test func nestingIsCapped() throws {
        let deep = String(repeating: "*1\r\n", count: RESPToken.maximumDepth + 2) + ":1\r\n"
        var buffer = ByteBuffer(string: deep)
        #expect(throws: RESPParsingError(.tooDeeplyNested, at: RESPToken.maximumDepth * 4 + 4)) { try RESPToken.read(from: &buffer) }
        let fine = String(repeating: "*1\r\n", count: RESPToken.maximumDepth) + ":1\r\n"
        var fineBuffer = ByteBuffer(string: fine)
        #expect(try RESPToken.read(from: &fineBuffer) != nil)
    }

    /// NIO's verifier feeds the decoder every way of splitting the bytes, one at a time and all at once.
    @Test func theDecoderHandlesSplitInput() throws {
        let values = [
            "+OK\r\n", ":12345\r\n", "$11\r\nhello world\r\n", "*3\r\n$3\r\nfoo\r\n_\r\n*1\r\n#f\r\n",
            "%2\r\n+a\r\n:1\r\n+b\r\n~2\r\n+x\r\n+y\r\n", ">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$7\r\npayload\r\n", "$-1\r\n",
        ]
        let pairs = values.map { text -> (ByteBuffer, [RESPToken]) in
            var buffer = ByteBuffer(string: text)
            let token = try! RESPToken.read(from: &buffer)!
            return (ByteBuffer(string: text), [token])
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            RESPTokenDecoder()
        }
    }

    @Test func commandsEncodeAsArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RESPCommand("SET", ["key", "vålue"]).encode(into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$6\r\nvålue\r\n")
        #expect(RESPCommand("get", ["k"]).name == "GET")
    }
}
