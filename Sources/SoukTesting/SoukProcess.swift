import Foundation
import NIOCore
import NIOPosix
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real `souk` binary started by a test, as a person would start it. `scripts/test` builds it and
/// exports `SOUK_BINARY`; without that, the debug build folder beside the package is used.
public final class SoukProcess: @unchecked Sendable {
    public let process: ChildProcess
    public let baseURL: URL
    private let output: OutputCollector

    public static func binary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["SOUK_BINARY"], !path.isEmpty { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent(".build/debug/souk").path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw TestEnvironmentError.missing("SOUK_BINARY") }
        return path
    }

    /// This process's environment with rate limits off: end-to-end tests storm Souk from one
    /// address (a test that wants them passes `SOUK_RATE_LIMITS`).
    static var defaultEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["SOUK_RATE_LIMITS"] = environment["SOUK_RATE_LIMITS"] ?? "off"
        return environment
    }

    /// Runs `souk` to completion (migrate, seed, a refused start) and returns its exit code and output.
    public static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let collector = OutputCollector()
        let process = try ChildProcess(try binary(), arguments, environment: Self.defaultEnvironment.merging(environment) { $1 },
                                       output: .stream { collector.append($0) })
        let status: Int32 = switch await process.exited() {
        case .exit(let code): code
        case .signal(let signal): 128 + signal
        }
        return (status, collector.text)
    }

    /// Starts a long-running `souk` (run or serve) on a free port and waits until it announces its URL.
    /// For roles without HTTP (`worker`), pass the line they print when ready as `announcement`.
    public static func start(_ arguments: [String], environment: [String: String] = [:], announcement: String? = nil, timeout: Duration = .seconds(60)) async throws -> SoukProcess {
        let collector = OutputCollector()
        let process = try ChildProcess(
            try binary(), arguments + (announcement == nil ? ["--port", "0"] : []) + ["--log-level", "warning"],
            environment: Self.defaultEnvironment.merging(environment) { $1 }, output: .stream { collector.append($0) })
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let announcement, collector.text.contains(announcement) {
                return SoukProcess(process: process, baseURL: URL(string: "http://127.0.0.1")!, output: collector)
            }
            if announcement == nil, let url = collector.announcedURL() {
                return SoukProcess(process: process, baseURL: url, output: collector)
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.send(SIGKILL)
        process.waitUntilExit()
        throw SoukProcessError.didNotStart(collector.text)
    }

    private init(process: ChildProcess, baseURL: URL, output: OutputCollector) {
        self.process = process
        self.baseURL = baseURL
        self.output = output
    }

    public var outputText: String { output.text }
    /// Whether the process has not exited (or been killed).
    public var isRunning: Bool { process.isRunning }

    /// SIGTERM, then wait for a graceful exit (SIGKILL after 15 s, so a stuck shutdown cannot hang a test).
    public func stop() {
        guard process.isRunning else { return }
        process.send(SIGTERM)
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill9() }
    }

    /// SIGKILL: the process dies mid-flight, with no chance to clean up.
    public func kill9() {
        guard process.isRunning else { return }
        process.send(SIGKILL)
        process.waitUntilExit()
    }

    deinit { kill9() }
}

public enum SoukProcessError: Error, CustomStringConvertible {
    case didNotStart(String)

    public var description: String {
        switch self {
        case .didNotStart(let output): "souk did not announce its URL; it printed:\n\(output)"
        }
    }
}

/// Collects a child's output from its reader thread.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ chunk: [UInt8]) {
        lock.lock()
        data.append(contentsOf: chunk)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }

    /// The first `http://host:port` printed after "Souk is".
    func announcedURL() -> URL? {
        let text = self.text
        guard let marker = text.range(of: "Souk is") else { return nil }
        let rest = text[marker.upperBound...]
        guard let start = rest.range(of: "http://") else { return nil }
        let candidate = rest[start.lowerBound...].prefix { !$0.isWhitespace }
        let base = candidate.components(separatedBy: "/").prefix(3).joined(separator: "/")
        return URL(string: base)
    }
}

/// A small HTTP client for tests against real processes.
public struct HTTPTestClient: Sendable {
    public let baseURL: URL
    public var token: String?

    public init(baseURL: URL, token: String? = nil) {
        self.baseURL = baseURL
        self.token = token
    }

    public struct Reply: Sendable {
        public let status: Int
        public let body: String
        /// Lowercased names.
        public var headers: [String: String] = [:]
        public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    public func send(_ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:]) async throws -> Reply {
        var request = URLRequest(url: URL(string: path, relativeTo: baseURL)!)
        request.httpMethod = method
        request.timeoutInterval = 30
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return Self.reply(data, response)
    }

    static func reply(_ data: Data, _ response: URLResponse) -> Reply {
        let http = response as? HTTPURLResponse
        var headers: [String: String] = [:]
        for (name, value) in http?.allHeaderFields ?? [:] { headers[String(describing: name).lowercased()] = String(describing: value) }
        return Reply(status: http?.statusCode ?? 0, body: String(decoding: data, as: UTF8.self), headers: headers)
    }

    /// Sends any bytes as the body, with the given content type.
    public func send(_ method: String, _ path: String, body: [UInt8], contentType: String, headers: [String: String] = [:]) async throws -> Reply {
        var request = URLRequest(url: URL(string: path, relativeTo: baseURL)!)
        request.httpMethod = method
        request.timeoutInterval = 30
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.httpBody = Data(body)
        request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        return Self.reply(data, response)
    }
}

/// Raw HTTP/1.1 over a plain connection: the first bytes of a streamed response (server-sent
/// events), or pipelined requests written exactly as given.
public enum RawHTTP {
    public static func read(_ base: URL, path: String, headers: [String: String] = [:], for duration: Duration) async throws -> String {
        let stream = try await open(base, path: path, headers: headers)
        try await Task.sleep(for: duration)
        stream.close()
        return stream.text
    }

    /// Opens a streamed GET and keeps collecting what arrives, with the time of the latest chunk.
    public static func open(_ base: URL, path: String, headers: [String: String] = [:]) async throws -> OpenStream {
        var request = "GET \(path) HTTP/1.1\r\nHost: \(base.host ?? "")\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        return try await send(request, host: base.host ?? "127.0.0.1", port: base.port ?? 80)
    }

    /// Writes `requests` exactly as given, in one write (so several are pipelined), and collects the
    /// connection's bytes.
    public static func send(_ requests: String, host: String = "127.0.0.1", port: Int) async throws -> OpenStream {
        let collector = ByteCollector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) } }
            .connect(host: host, port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: requests))
        return OpenStream(channel: channel, collector: collector)
    }

    public struct Reply: Sendable {
        public let status: Int
        /// Lowercased names.
        public let headers: [String: String]
        public let body: String
    }

    /// Sends `requests` pipelined on one connection and returns the first `count` responses, in the
    /// order they arrived (bodies framed by Content-Length).
    public static func exchange(port: Int, _ requests: String, expecting count: Int, timeout: Duration = .seconds(10)) async throws -> [Reply] {
        let stream = try await send(requests, port: port)
        defer { stream.close() }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let replies = responses(in: stream.collector.bytes)
            if replies.count >= count { return replies }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestEnvironmentError.missing("\(count) responses; got: \(stream.text.prefix(2_000))")
    }

    /// The complete responses in `bytes`; a partial one at the end is left out.
    static func responses(in bytes: [UInt8]) -> [Reply] {
        var replies: [Reply] = []
        var rest = bytes[...]
        let separator = Array("\r\n\r\n".utf8)
        while let end = rest.firstRange(of: separator) {
            let head = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            var headers: [String: String] = [:]
            for line in head.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            guard rest.distance(from: end.upperBound, to: rest.endIndex) >= length else { break }
            let bodyEnd = rest.index(end.upperBound, offsetBy: length)
            let status = Int(head[0].split(separator: " ").dropFirst().first ?? "") ?? 0
            replies.append(Reply(status: status, headers: headers, body: String(decoding: rest[end.upperBound..<bodyEnd], as: UTF8.self)))
            rest = rest[bodyEnd...]
        }
        return replies
    }

    public struct OpenStream: Sendable {
        let channel: any Channel
        let collector: ByteCollector
        public var text: String { collector.text }
        public var lastChunkAt: Date { collector.lastChunkAt }
        /// Whether the server has not closed the connection (yet).
        public var isOpen: Bool { channel.isActive }
        public func close() { channel.close(promise: nil) }
        /// Sends more bytes on the connection.
        public func write(_ text: String) async throws { try await channel.writeAndFlush(ByteBuffer(string: text)) }
    }

    final class ByteCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private let lock = NSLock()
        private var buffer = ByteBuffer()
        private var last = Date.distantPast

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var chunk = unwrapInboundIn(data)
            let now = Date()
            lock.withLock {
                _ = buffer.writeBuffer(&chunk)
                last = now
            }
        }

        var text: String { lock.withLock { String(buffer: buffer) } }
        var bytes: [UInt8] { lock.withLock { Array(buffer.readableBytesView) } }
        var lastChunkAt: Date { lock.withLock { last } }
    }
}
