import Foundation
import NIOCore
import NIOPosix

/// A PostgreSQL server of the test's own (initdb in a temporary directory, a free loopback port)
/// that the test may kill with SIGKILL and start again, as an operator's crash would. As root it
/// runs as the `postgres` user (PostgreSQL refuses root), through `setpriv`, which replaces
/// itself with the server: the process the test holds is the postmaster.
public final class PrivatePostgresServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    private let binaries: URL
    private var process: ChildProcess?

    public var url: String { "postgres://souk@127.0.0.1:\(port)/postgres" }

    public init() async throws {
        self.binaries = try Self.binaries()
        self.port = try await RedisTestServer.freePort()
        self.directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("souk-pg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if Self.isRoot { try Self.runToEnd("/bin/chown", ["postgres:", directory.path], asPostgres: false) }
        try Self.runToEnd(binaries.appendingPathComponent("initdb").path,
                          ["-D", directory.appendingPathComponent("data").path, "--auth=trust", "-U", "souk", "-E", "UTF8", "--no-locale", "--no-sync"])
        try await start()
    }

    static var isRoot: Bool { getuid() == 0 }

    /// The highest installed PostgreSQL's binaries (Debian keeps them out of PATH).
    static func binaries() throws -> URL {
        let root = URL(fileURLWithPath: "/usr/lib/postgresql")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let bin = root.appendingPathComponent(version).appendingPathComponent("bin")
            if FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("postgres").path) { return bin }
        }
        throw TestEnvironmentError.missing("PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    }

    /// A process running `path`, as the `postgres` user when this is root (and `asPostgres`);
    /// through `setpriv`, which becomes the program itself, so the process is the program's.
    static func process(_ path: String, _ arguments: [String], asPostgres: Bool = true) throws -> ChildProcess {
        // `env -C /` runs it from the root directory, which the postgres user may enter.
        let command = ["/usr/bin/env", "-C", "/", path] + arguments
        if isRoot && asPostgres {
            return try ChildProcess("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + command)
        }
        return try ChildProcess(command[0], Array(command.dropFirst()))
    }

    /// Runs a command to completion; throws when it fails.
    static func runToEnd(_ path: String, _ arguments: [String], asPostgres: Bool = true) throws {
        let process = try process(path, arguments, asPostgres: asPostgres)
        guard process.waitUntilExit() == .exit(0) else { throw TestEnvironmentError.missing("\(path) \(arguments.joined(separator: " ")) succeeding") }
    }

    /// Starts the server and waits until it accepts connections. After a SIGKILL the old server's
    /// backends may hold its shared memory for a moment: the start is retried until they are gone.
    public func start() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let process = try Self.process(binaries.appendingPathComponent("postgres").path, [
                "-D", directory.appendingPathComponent("data").path, "-p", String(port), "-k", directory.path,
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
            ])
            if try await waitUntilListening(port: port, attempts: 100, every: .milliseconds(50), while: { process.isRunning }) {
                self.process = process
                try await Task.sleep(for: .milliseconds(300))  // past the startup's recovery
                return
            }
            process.send(SIGKILL)
            process.waitUntilExit()
            try await Task.sleep(for: .milliseconds(300))
        }
        throw TestEnvironmentError.missing("a PostgreSQL server answering on port \(port)")
    }

    /// SIGKILL to the postmaster: its backends end their sessions (FATAL) and exit by themselves.
    public func kill9() {
        guard let process, process.isRunning else { return }
        thaw()  // a frozen backend would hold the shared memory past the restart
        process.send(SIGKILL)
        process.waitUntilExit()
    }

    /// SIGSTOP to the postmaster and every backend: the server keeps its connections open and
    /// answers nothing (a frozen host, a stalled disk) until ``thaw()``.
    public func freeze() { signalEveryProcess(SIGSTOP) }

    /// SIGCONT to the postmaster and every backend.
    public func thaw() { signalEveryProcess(SIGCONT) }

    private func signalEveryProcess(_ signal: Int32) {
        guard let process, process.isRunning else { return }
        let postmaster = process.processIdentifier
        kill(postmaster, signal)
        for child in Self.children(of: postmaster) { kill(child, signal) }
    }

    /// The processes whose parent is `parent`, read from /proc.
    static func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { return nil }
            // pid (comm) state ppid ...: the name may hold spaces, so fields start after the last ")".
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == parent else { return nil }
            return pid
        }
    }

    /// Stops the server at once and removes its directory (its backends, told by the postmaster's
    /// death, exit by themselves).
    public func stop() {
        kill9()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
