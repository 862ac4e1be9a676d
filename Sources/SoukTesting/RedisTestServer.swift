import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SoukRedis

/// The Redis started by `scripts/test` (shared: tests isolate by key prefix, never FLUSHALL), and
/// private redis-server processes for tests that kill, restart or reconfigure the server.
public enum RedisTestServer {
    public static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SOUK_TEST_REDIS_URL"], !url.isEmpty else {
            throw TestEnvironmentError.missing("SOUK_TEST_REDIS_URL")
        }
        return url
    }

    /// A key prefix no other test uses.
    public static func prefix() -> String { "test:\(UUID().uuidString.prefix(12)):" }

    /// Runs `body` with a client of the shared test server, shut down afterwards.
    public static func withClient<T: Sendable>(poolSize: Int = 2, _ body: (RedisClient) async throws -> T) async throws -> T {
        var configuration = try RedisConfiguration(url: try url())
        configuration.poolSize = poolSize
        // The whole suite shares two cores: a command may queue for seconds; tests of timeouts set their own.
        configuration.commandTimeout = .seconds(30)
        let client = RedisClient(configuration: configuration, logger: TestLog.logger)
        defer { client.shutdown() }
        return try await body(client)
    }

    /// A free TCP port on loopback, found by binding port 0, and never one handed out before in
    /// this test process: two private servers started at once could otherwise be given the same
    /// port, and the one that lost the bind would look alive through the other.
    public static func freePort() async throws -> Int {
        while true {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            let port = channel.localAddress?.port ?? 0
            try await channel.close()
            if handedOut.withLockedValue({ $0.insert(port).inserted }) { return port }
        }
    }

    private static let handedOut = NIOLockedValueBox<Set<Int>>([])
}

/// Whether something accepts connections on `port` of the loopback address within `attempts`
/// tries, giving up early once `alive` says the server exited.
func waitUntilListening(port: Int, attempts: Int, every interval: Duration, while alive: () -> Bool) async throws -> Bool {
    for _ in 0..<attempts where alive() {
        if (try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get().close()) != nil {
            return true
        }
        try await Task.sleep(for: interval)
    }
    return false
}

/// A redis-server of the test's own, on its own port and directory, that the test may kill and restart.
public final class PrivateRedisServer: @unchecked Sendable {
    public private(set) var port: Int
    public let directory: URL
    let extraArguments: [String]
    private var process: ChildProcess?

    /// Starts the server on a free port; if something else took that port first (the server
    /// exits when it cannot bind), on another.
    public init(arguments: [String] = []) async throws {
        self.port = try await RedisTestServer.freePort()
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-redis-\(UUID().uuidString)")
        self.extraArguments = arguments
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for _ in 1..<5 {
            if (try? await start()) != nil { return }
            port = try await RedisTestServer.freePort()
        }
        try await start()
    }

    public var url: String { "redis://127.0.0.1:\(port)/0" }

    public static func binary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["SOUK_TEST_REDIS_SERVER"], !path.isEmpty { return path }
        for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw TestEnvironmentError.missing("SOUK_TEST_REDIS_SERVER")
    }

    /// Starts (or restarts) the server and waits until it answers.
    public func start() async throws {
        let process = try ChildProcess(try Self.binary(), ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory.path, "--logfile", ""] + extraArguments)
        self.process = process
        // Listening, and still ours a moment later: one that lost the bind to another exits.
        let listening = try await waitUntilListening(port: port, attempts: 200, every: .milliseconds(25), while: { process.isRunning })
        if listening { try await Task.sleep(for: .milliseconds(50)) }
        guard listening, process.isRunning else {
            kill9()
            throw TestEnvironmentError.missing("a redis-server answering on port \(port)")
        }
    }

    /// SIGKILL: the server vanishes without closing anything politely.
    public func kill9() {
        guard let process, process.isRunning else { return }
        process.send(SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        kill9()
        try? FileManager.default.removeItem(at: directory)
    }
}
