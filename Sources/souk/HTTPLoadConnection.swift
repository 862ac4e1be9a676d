import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A keep-alive HTTP/1.1 connection that sends one request at a time: `souk loadtest`'s client,
/// as plain as a load generator should be (Souk's calls to outside services use `OutboundHTTP`).
public final class HTTPLoadConnection: Sendable {
    public struct Reply: Sendable {
        public let status: Int
        public let body: String
    }

    let channel: any Channel
    let collector: ReplyCollector

    public static func connect(host: String, port: Int, timeout: Duration = .seconds(10)) async throws -> HTTPLoadConnection {
        let collector = ReplyCollector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(max(1, timeout.milliseconds)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: host, port: port).get()
        return HTTPLoadConnection(channel: channel, collector: collector)
    }

    init(channel: any Channel, collector: ReplyCollector) {
        self.channel = channel
        self.collector = collector
    }

    public func post(path: String, host: String, body: String) async throws -> Reply {
        try await send(method: .POST, path: path, host: host, body: body, token: nil)
    }

    public func send(method: HTTPMethod, path: String, host: String, body: String?, token: String?) async throws -> Reply {
        var headers = HTTPHeaders([("Host", host), ("Content-Length", String(body?.utf8.count ?? 0))])
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        return try await withCheckedThrowingContinuation { continuation in
            collector.expect(continuation)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
    }

    public func close() { channel.close(promise: nil) }

    final class ReplyCollector: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPClientResponsePart
        private struct State {
            var continuation: CheckedContinuation<Reply, any Error>?
            var status = 0
            var body = ByteBuffer()
        }
        private let state = NIOLockedValueBox(State())

        func expect(_ continuation: CheckedContinuation<Reply, any Error>) {
            state.withLockedValue { $0 = State(continuation: continuation) }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): state.withLockedValue { $0.status = Int(head.status.code) }
            case .body(var buffer): state.withLockedValue { $0.body.writeBuffer(&buffer) }
            case .end:
                let (continuation, reply) = state.withLockedValue { state in
                    defer { state.continuation = nil }
                    return (state.continuation, Reply(status: state.status, body: String(buffer: state.body)))
                }
                continuation?.resume(returning: reply)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            fail(ChannelError.ioOnClosedChannel)
        }

        private func fail(_ error: any Error) {
            let continuation = state.withLockedValue { state in
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(throwing: error)
        }
    }
}
