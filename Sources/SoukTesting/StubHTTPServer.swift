import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An HTTP server on loopback that plays a script: each request gets the next reply (the last one
/// repeats), so tests can make an outside service fail, stall or answer garbage on cue. With a
/// certificate it speaks HTTPS.
public final class StubHTTPServer: Sendable {
    public enum Reply: Sendable {
        case answer(status: Int, body: String)
        /// Reads the request and never answers.
        case stall
        /// Answers a head and the start of a body, and never the rest.
        case stallBody
    }

    private let channel: any Channel
    private let state: NIOLockedValueBox<(script: [Reply], requests: Int)>
    private let scheme: String

    public var port: Int { channel.localAddress?.port ?? 0 }
    public var url: URL { URL(string: "\(scheme)://127.0.0.1:\(port)/prices")! }
    public var requests: Int { state.withLockedValue { $0.requests } }

    public init(_ script: [Reply], certificate: TestCertificate? = nil) async throws {
        let state = NIOLockedValueBox((script: script, requests: 0))
        self.state = state
        scheme = certificate == nil ? "http" : "https"
        let tls = try certificate.map { certificate in
            try NIOSSLContext(configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificateFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.keyFile, format: .pem))))
        }
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// Replaces the rest of the script.
    public func play(_ script: [Reply]) {
        state.withLockedValue { $0.script = script }
    }

    public func close() { channel.close(promise: nil) }

    final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: NIOLockedValueBox<(script: [Reply], requests: Int)>

        init(state: NIOLockedValueBox<(script: [Reply], requests: Int)>) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let reply = state.withLockedValue { state -> Reply in
                state.requests += 1
                return state.script.count > 1 ? state.script.removeFirst() : state.script.first ?? .stall
            }
            if case .stallBody = reply {
                let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "1000"])
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: #"{"verified":"#)))), promise: nil)
                return
            }
            guard case .answer(let status, let body) = reply else { return }
            let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: ["Content-Length": String(body.utf8.count)])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
