import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An SMTP relay on loopback that keeps every message it accepts (the DATA as sent, dots and all),
/// or refuses recipients on cue: what a test needs to see Souk's mail leave.
public final class StubSMTPServer: Sendable {
    public struct Message: Sendable {
        public let from: String
        public let to: [String]
        public let data: String
    }

    private let channel: any Channel
    private let state: NIOLockedValueBox<State>

    struct State {
        var messages: [Message] = []
        var refuseRecipients = false
    }

    public var port: Int { channel.localAddress?.port ?? 0 }
    public var url: String { "smtp://127.0.0.1:\(port)" }
    public var messages: [Message] { state.withLockedValue { $0.messages } }

    public init() async throws {
        let state = NIOLockedValueBox(State())
        self.state = state
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Session(state: state)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// From now on, answers `550` to every recipient.
    public func refuseRecipients() { state.withLockedValue { $0.refuseRecipients = true } }

    public func close() { channel.close(promise: nil) }

    final class Session: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let state: NIOLockedValueBox<State>
        var pending = ""
        var inData = false
        var from = ""
        var to: [String] = []
        var data = ""

        init(state: NIOLockedValueBox<State>) { self.state = state }

        func channelActive(context: ChannelHandlerContext) {
            reply("220 stub ready", context)
        }

        func channelRead(context: ChannelHandlerContext, data buffer: NIOAny) {
            pending += String(buffer: unwrapInboundIn(buffer))
            while let end = pending.range(of: "\r\n") {
                let line = String(pending[..<end.lowerBound])
                pending.removeSubrange(..<end.upperBound)
                handle(line, context)
            }
        }

        private func handle(_ line: String, _ context: ChannelHandlerContext) {
            if inData {
                if line == "." {
                    inData = false
                    let message = Message(from: from, to: to, data: data)
                    state.withLockedValue { $0.messages.append(message) }
                    reply("250 queued", context)
                } else {
                    data += line + "\r\n"
                }
                return
            }
            let verb = line.prefix(4).uppercased()
            switch verb {
            case "EHLO", "HELO": reply("250-stub\r\n250 8BITMIME", context)
            case "MAIL":
                (from, to, data) = (String(line.dropFirst(10)), [], "")
                reply("250 ok", context)
            case "RCPT":
                if state.withLockedValue({ $0.refuseRecipients }) { reply("550 no such mailbox", context); return }
                to.append(String(line.dropFirst(8)))
                reply("250 ok", context)
            case "DATA":
                inData = true
                reply("354 go ahead", context)
            case "QUIT":
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "221 bye\r\n"))).whenComplete { _ in context.close(promise: nil) }
            default: reply("502 unknown command", context)
            }
        }

        private func reply(_ text: String, _ context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
        }
    }
}
