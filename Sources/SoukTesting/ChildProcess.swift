#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A program a test starts (souk, redis-server, postgres, openssl), spawned with `posix_spawn`.
///
/// Foundation's `Process` on Linux crashed the whole test process now and then when tests started
/// and reaped many children at once (its environment copy, its manager thread's run loop); this is
/// the little the tests need, with nothing shared between children: the child's end of its output
/// pipe is close-on-exec everywhere else, and only this object reaps its child.
public final class ChildProcess: @unchecked Sendable {
    /// How a child ended.
    public enum Termination: Equatable, Sendable {
        case exit(Int32)
        case signal(Int32)
    }

    /// Where the child's standard output and error go.
    public enum Output: Sendable {
        case discard
        /// Each chunk as it arrives, on a reader thread of its own.
        case stream(@Sendable ([UInt8]) -> Void)
    }

    public let processIdentifier: pid_t
    private let lock = NSLock()
    private var ended: Termination?
    private var outputOpen: Bool

    /// Starts `executable` (an absolute path) with `arguments`; `environment` nil inherits this
    /// process's.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                output: Output = .discard) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        // Default signal dispositions and an empty mask: the child must not inherit an ignored
        // SIGPIPE or a blocked SIGTERM from the test runner.
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        var noSignal = sigset_t()
        sigemptyset(&noSignal)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setsigmask(&attributes, &noSignal)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var pipeEnds: [Int32] = [-1, -1]
        switch output {
        case .discard:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .stream:
            guard pipe(&pipeEnds) == 0 else { throw ChildProcessError.spawn(executable, errno) }
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environment = environment ?? ProcessInfo.processInfo.environment
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }

        var pid: pid_t = 0
        let result = spawnLock.withLock {
            // Close-on-exec before any other child can be spawned, so none but this one holds the
            // write end (the reader would wait for that other child's end to see end of file).
            if case .stream = output {
                _ = fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC)
                _ = fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC)
            }
            return posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        if case .stream = output { close(pipeEnds[1]) }
        guard result == 0 else {
            if case .stream = output { close(pipeEnds[0]) }
            throw ChildProcessError.spawn(executable, result)
        }
        self.processIdentifier = pid
        self.outputOpen = { if case .stream = output { true } else { false } }()

        if case .stream(let deliver) = output {
            let readEnd = pipeEnds[0]
            Thread.detachNewThread { [self] in
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                    if count > 0 { deliver(Array(buffer[0..<count])); continue }
                    if count < 0 && errno == EINTR { continue }
                    break
                }
                close(readEnd)
                lock.withLock { outputOpen = false }
            }
        }
    }

    /// How the child ended, or nil while it runs. Reaps it the first time it is seen ended.
    public var termination: Termination? {
        lock.withLock {
            if let ended { return ended }
            var status: Int32 = 0
            guard waitpid(processIdentifier, &status, WNOHANG) == processIdentifier else { return nil }
            // The wait status: the low 7 bits are the signal that ended it (0 for an exit), the
            // next byte the exit code.
            let signal = status & 0x7f
            ended = signal == 0 ? .exit((status >> 8) & 0xff) : .signal(signal)
            return ended
        }
    }

    public var isRunning: Bool { termination == nil }

    /// Blocks the calling thread until the child has ended: for a test's cleanup, never on the
    /// cooperative pool in a loop (use ``exited()`` there).
    @discardableResult
    public func waitUntilExit() -> Termination {
        while true {
            if let termination { return termination }
            usleep(2_000)
        }
    }

    /// Waits, without blocking a thread, until the child has ended and its output is all delivered.
    @discardableResult
    public func exited() async -> Termination {
        while true {
            if let termination, !lock.withLock({ outputOpen }) { return termination }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Sends `signal` to the child unless it has been reaped (its pid could be another's by then).
    public func send(_ signal: Int32) {
        lock.withLock {
            if ended == nil { _ = kill(processIdentifier, signal) }
        }
    }
}

/// Pipes are made and children spawned one at a time (see the close-on-exec above).
private let spawnLock = NSLock()

public enum ChildProcessError: Error, CustomStringConvertible {
    case spawn(String, Int32)

    public var description: String {
        switch self {
        case .spawn(let executable, let code): "could not start \(executable): \(String(cString: strerror(code)))"
        }
    }
}
