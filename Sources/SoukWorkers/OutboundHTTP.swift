import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL
import ServiceLifecycle

/// Souk's calls to services outside it (the purchase verifier, price endpoints; the payment
/// provider next): `http` or `https` with the system's trust roots (and a private CA's, when
/// configured), pooled connections, a deadline per call, redirects not followed (a POST must not be
/// sent somewhere else), and answers read up to ``maximumBody``. One per process, shut down with it.
public final class OutboundHTTP: Service, Sendable {
    /// An answer: its status and its body as text.
    public struct Reply: Sendable {
        public let status: Int
        public let body: String
    }

    /// The largest answer read; a longer one is an error (an outside service cannot fill memory).
    public static let maximumBody = 1 << 20

    let configuration: HTTPClient.Configuration
    let logger: Logger
    /// The client, made by the first call (a process that never calls out never holds one), and
    /// whether ``shutdown()`` has run.
    private let state = NIOLockedValueBox<(client: HTTPClient?, isShutDown: Bool)>((nil, false))

    /// - Parameter trustedCertificates: a PEM file of certificates trusted for HTTPS besides the
    ///   system's (`SOUK_CA_FILE`: a private certificate authority).
    public init(trustedCertificates: String? = nil, logger: Logger) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let trustedCertificates {
            tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(trustedCertificates))]
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(5))
        configuration.connectionPool = .init(idleTimeout: .seconds(60))
        self.configuration = configuration
        self.logger = logger
    }

    private func client() throws -> HTTPClient {
        try state.withLockedValue { state in
            guard !state.isShutDown else { throw OutboundHTTPError(description: "Souk is shutting down: no more calls out") }
            if let client = state.client { return client }
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration, backgroundActivityLogger: logger)
            state.client = client
            return client
        }
    }

    /// Whether Souk can call this URL: `http` or `https`, with a host.
    public static func accepts(_ url: URL) -> Bool {
        url.isOutsideService
    }

    /// Sends one request and reads the whole answer before `timeout` has passed; throws
    /// ``HTTPTimeout`` when it has, ``OutboundHTTPError`` for an answer too long, and the client's
    /// errors otherwise (no connection, a certificate not trusted: the caller may try again in time).
    public func send(_ method: HTTPMethod, _ url: URL, body: String? = nil, headers: [(String, String)] = [], timeout: Duration) async throws -> Reply {
        let request = Self.request(method, url, body: body, headers: headers)
        let client = try client()
        // The client's deadline ends when the head arrives; the body is raced against the same one,
        // so a service that answers a head and then stalls is cut too, and the caller is answered at
        // the deadline whatever the client is still doing.
        let deadline = ContinuousClock.now + timeout
        let answered = try await answer(by: deadline) { () async throws -> Reply? in
            do {
                let response = try await client.execute(request, deadline: NIODeadline.now() + .nanoseconds(timeout.nanoseconds))
                let bytes = try await response.body.collect(upTo: Self.maximumBody)
                return Reply(status: Int(response.status.code), body: String(buffer: bytes))
            } catch let error as NIOTooManyBytesError {
                throw OutboundHTTPError(description: "\(url.host ?? "the service") answered more than \(Self.maximumBody) bytes (\(error))")
            } catch where ContinuousClock.now >= deadline || (error as? HTTPClientError) == .deadlineExceeded {
                // The client tries to connect until the deadline, then reports its last
                // connection error: for the caller, that is the deadline passing.
                return nil
            }
        }
        guard let reply = answered ?? nil else { throw HTTPTimeout(timeout: timeout) }
        return reply
    }

    static func request(_ method: HTTPMethod, _ url: URL, body: String?, headers: [(String, String)]) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        return request
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await shutdown()
    }

    /// Closes the connections; later calls fail.
    public func shutdown() async throws {
        let client = state.withLockedValue { state in
            state.isShutDown = true
            return state.client
        }
        try await client?.shutdown()
    }
}

public struct OutboundHTTPError: Error, CustomStringConvertible {
    public let description: String
}

/// A request that got no complete answer in time.
public struct HTTPTimeout: Error, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "no answer within \(timeout)" }
}
