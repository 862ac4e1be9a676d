import Foundation
import NIOCore
import NIOPosix
import SoukCore

/// Sends mail to an SMTP relay (`SOUK_SMTP_URL=smtp://host:port`): the mail server beside Souk
/// (Postfix, a provider's relay reached through it) takes the message and delivers it. One
/// connection per message: verification mail is rare, and a relay that is down fails that message
/// only (the customer asks for a new code).
public struct SMTPMailer: Mailer {
    public let host: String
    public let port: Int
    /// The envelope and `From:` address.
    public let from: String
    let timeout: Duration

    /// Nil unless `url` is `smtp://host[:port]` (port 25 by default) and `from` is an address.
    public init?(url: String, from: String, timeout: Duration = .seconds(10)) {
        guard let components = URLComponents(string: url), components.scheme == "smtp", let host = components.host, !host.isEmpty,
              CustomerSignup.isEmail(from.lowercased())
        else { return nil }
        self.host = host
        self.port = components.port ?? 25
        self.from = from
        self.timeout = timeout
    }

    public enum Failure: Error, CustomStringConvertible {
        /// The relay answered a command with something other than what the protocol expects.
        case refused(command: String, reply: String)
        case unsafeAddress(String)
        case closed
        case timedOut

        public var description: String {
            switch self {
            case .refused(let command, let reply): "SMTP relay refused \(command): \(reply)"
            case .unsafeAddress(let address): "not a mailbox SMTP can carry: \(address)"
            case .closed: "SMTP relay closed the connection"
            case .timedOut: "SMTP relay did not answer in time"
            }
        }
    }

    public func send(_ mail: Mail) async throws {
        // An address or subject with a line break would let a sender add headers or commands.
        for address in [mail.to, from] where address.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "<" || $0 == ">" }) || !CustomerSignup.isEmail(address.lowercased()) {
            throw Failure.unsafeAddress(address)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await converse(mail) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw Failure.timedOut
            }
            try await group.next()
            group.cancelAll()
        }
    }

    private func converse(_ mail: Mail) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        try await channel.executeThenClose { inbound, outbound in
            var replies = SMTPReplies(inbound.makeAsyncIterator())
            func command(_ line: String, expecting codes: Set<Int>, name: String? = nil) async throws {
                try await outbound.write(ByteBuffer(string: line + "\r\n"))
                try await replies.expect(codes, after: name ?? line)
            }
            try await replies.expect([220], after: "connecting")
            try await command("EHLO souk", expecting: [250])
            try await command("MAIL FROM:<\(from)>", expecting: [250])
            try await command("RCPT TO:<\(mail.to)>", expecting: [250, 251])
            try await command("DATA", expecting: [354])
            try await command(Self.message(mail, from: from), expecting: [250], name: "the message")
            try? await command("QUIT", expecting: [221])
        }
    }

    /// The message as DATA carries it: headers, a blank line, the body with lines that start with
    /// a dot doubled, CRLF line ends, and the closing dot.
    static func message(_ mail: Mail, from: String, date: Date = Date()) -> String {
        let subject = mail.subject.filter { $0 != "\r" && $0 != "\n" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let headers = [
            "From: \(from)", "To: \(mail.to)", "Subject: \(subject)", "Date: \(formatter.string(from: date))",
            "Message-ID: <\(UUID().uuidString.lowercased())@souk>", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
        ]
        let body = mail.body.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(".") ? "." + $0 : String($0) }
        return (headers + [""] + body).joined(separator: "\r\n") + "\r\n."
    }
}

/// SMTP replies read off a connection: a reply is one or more lines `ddd-text`, the last `ddd text`.
struct SMTPReplies {
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var pending = ""

    init(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) {
        self.inbound = inbound
    }

    mutating func expect(_ codes: Set<Int>, after command: String) async throws {
        let (code, text) = try await next()
        guard codes.contains(code) else { throw SMTPMailer.Failure.refused(command: command, reply: "\(code) \(text)") }
    }

    mutating func next() async throws -> (code: Int, text: String) {
        var text: [String] = []
        while true {
            while let end = pending.range(of: "\r\n") {
                let line = String(pending[..<end.lowerBound])
                pending.removeSubrange(..<end.upperBound)
                guard line.utf8.count >= 3, let code = Int(line.prefix(3)) else { throw SMTPMailer.Failure.refused(command: "reading", reply: line) }
                text.append(String(line.dropFirst(4)))
                if line.utf8.count == 3 || line.dropFirst(3).first == " " { return (code, text.joined(separator: " ")) }
            }
            guard pending.utf8.count < 65_536, let buffer = try await inbound.next() else { throw SMTPMailer.Failure.closed }
            pending += String(buffer: buffer)
        }
    }
}
