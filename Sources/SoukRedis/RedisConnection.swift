import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RESP
import SoukCore

/// One TCP connection to Redis. Many callers share it: their commands are pipelined in the order
/// they were sent and replies are matched first-in, first-out. A timeout, a cancelled caller or
/// a protocol error closes it (a sent command cannot be taken back); the pool opens a new one.
public final class RedisConnection: Sendable {
    typealias Machine = RedisConnectionStateMachine<ReplySink>

    let channel: any Channel
    private let machine: NIOLockedValueBox<Machine>
    private let deadlineTimer: NIOLockedValueBox<RepeatedTask?>
    /// Requests waiting to be written, and whether a write is queued on the event loop: requests
    /// sent meanwhile go out with it, so a burst of callers costs one syscall instead of one each.
    private let outbox = NIOLockedValueBox(Outbox())

    struct Outbox {
        var buffers: [ByteBuffer] = []
        var queued = false
    }
    let commandTimeout: Duration

    private init(channel: any Channel, machine: NIOLockedValueBox<Machine>, commandTimeout: Duration) {
        self.channel = channel
        self.machine = machine
        self.commandTimeout = commandTimeout
        self.deadlineTimer = NIOLockedValueBox(nil)
    }

    public var isClosed: Bool { machine.withLockedValue { $0.isClosed } || !channel.isActive }

    /// Connects, then says `HELLO 3` (with AUTH when configured) and `SELECT`s the database.
    /// `onPush` receives RESP3 push messages (pub/sub), which answer no request.
    public static func connect(
        _ configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        onPush: @escaping @Sendable (RESPValue) -> Void = { _ in }
    ) async throws -> RedisConnection {
        let machine = NIOLockedValueBox(Machine())
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.nanoseconds(configuration.connectTimeout.nanoseconds))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPTokenDecoder()))
                        try channel.pipeline.syncOperations.addHandler(RedisReplyHandler(machine: machine, onPush: onPush, logger: logger))
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw RedisClientError(.connectionUnavailable, "\(configuration.host):\(configuration.port): \(error)")
        }
        let connection = RedisConnection(channel: channel, machine: machine, commandTimeout: configuration.commandTimeout)
        connection.startDeadlineTimer()
        do {
            var hello = RESPCommand("HELLO", ["3"])
            if let password = configuration.password {
                hello.append("AUTH")
                hello.append(configuration.username ?? "default")
                hello.append(password)
            }
            var handshake = [hello]
            if configuration.database != 0 { handshake.append(RESPCommand("SELECT", [String(configuration.database)])) }
            for reply in try await connection.execute(handshake) {
                if case .error(let error) = reply.value { throw error }
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Sends the commands in one write and returns their replies in order. Server error replies
    /// come back as `.error` values; the caller decides whether they are failures.
    public func execute(_ commands: [RESPCommand], timeout: Duration? = nil) async throws -> [RESPToken] {
        guard !commands.isEmpty else { return [] }
        if Task.isCancelled { throw RedisClientError(.cancelled) }
        let buffer = encode(commands)
        let id = NIOLockedValueBox<UInt64?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[RESPToken], any Error>) in
                id.withLockedValue { $0 = register(buffer, expecting: commands.count, timeout: timeout, to: .task(continuation)) }
            }
        } onCancel: {
            guard let assigned = id.withLockedValue({ $0 }) else { return }
            self.carryOut(machine.withLockedValue { $0.cancel(id: assigned) })
        }
    }

    /// Sends the commands in one write; the replies complete the future on this connection's event
    /// loop. For answers given on the event loop that read the request, which must not wait for a
    /// task (see ``RedisClient/connection(on:)``).
    public func submit(_ commands: [RESPCommand], timeout: Duration? = nil) -> EventLoopFuture<[RESPToken]> {
        let promise = channel.eventLoop.makePromise(of: [RESPToken].self)
        guard !commands.isEmpty else {
            promise.succeed([])
            return promise.futureResult
        }
        _ = register(encode(commands), expecting: commands.count, timeout: timeout, to: .loop(promise))
        return promise.futureResult
    }

    private func encode(_ commands: [RESPCommand]) -> ByteBuffer {
        var buffer = channel.allocator.buffer(capacity: 64 * commands.count)
        for command in commands { command.encode(into: &buffer) }
        return buffer
    }

    /// Registers the request and queues its bytes, or fails it at once on a closed connection;
    /// returns the request's id in the FIFO.
    private func register(_ buffer: ByteBuffer, expecting replies: Int, timeout: Duration?, to sink: ReplySink) -> UInt64? {
        let timeout = timeout ?? commandTimeout
        let deadline = NIODeadline.now().uptimeNanoseconds + UInt64(max(0, timeout.nanoseconds))
        let outcome: Result<UInt64, RedisClientError> = machine.withLockedValue { machine in
            switch machine.send(expecting: replies, deadline: deadline, promise: sink) {
            case .write(let assigned):
                // Queued under the lock, so the order of writes is the order of the FIFO.
                enqueue(buffer)
                return .success(assigned)
            case .fail(let error):
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let id): return id
        case .failure(let error):
            sink.resume(throwing: error)
            return nil
        }
    }

    private func enqueue(_ buffer: ByteBuffer) {
        let schedule = outbox.withLockedValue { outbox in
            outbox.buffers.append(buffer)
            defer { outbox.queued = true }
            return !outbox.queued
        }
        guard schedule else { return }
        channel.eventLoop.execute { [channel, outbox] in
            let buffers = outbox.withLockedValue { outbox in
                defer {
                    outbox.buffers.removeAll(keepingCapacity: true)
                    outbox.queued = false
                }
                return outbox.buffers
            }
            for buffer in buffers { channel.write(buffer, promise: nil) }
            channel.flush()
        }
    }

    /// Writes commands whose answers arrive as push messages (SUBSCRIBE and friends).
    public func send(_ commands: [RESPCommand]) {
        var buffer = channel.allocator.buffer(capacity: 64 * commands.count)
        for command in commands { command.encode(into: &buffer) }
        channel.writeAndFlush(buffer, promise: nil)
    }

    public func close() {
        deadlineTimer.withLockedValue { $0?.cancel() }
        channel.close(promise: nil)
    }

    /// Deadlines are checked every 20 ms on the channel's event loop rather than with a timer per command.
    private func startDeadlineTimer() {
        let task = channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(20), delay: .milliseconds(20)) { [machine, weak self] _ in
            let action = machine.withLockedValue { $0.checkDeadlines(now: NIODeadline.now().uptimeNanoseconds) }
            self?.carryOut(action)
        }
        deadlineTimer.withLockedValue { $0 = task }
        channel.closeFuture.whenComplete { [deadlineTimer] _ in deadlineTimer.withLockedValue { $0?.cancel() } }
    }

    private func carryOut(_ action: Machine.CloseAction) {
        guard case .close(let failing, let error) = action else { return }
        channel.close(promise: nil)
        for continuation in failing { continuation.resume(throwing: error) }
    }
}

/// Who waits for a request's replies: a suspended task, or a promise completed on the
/// connection's event loop.
enum ReplySink: Sendable {
    case task(CheckedContinuation<[RESPToken], any Error>)
    case loop(EventLoopPromise<[RESPToken]>)

    func resume(returning replies: [RESPToken]) {
        switch self {
        case .task(let continuation): continuation.resume(returning: replies)
        case .loop(let promise): promise.succeed(replies)
        }
    }

    func resume(throwing error: any Error) {
        switch self {
        case .task(let continuation): continuation.resume(throwing: error)
        case .loop(let promise): promise.fail(error)
        }
    }
}

/// Hands decoded replies to the state machine and push messages to their listener.
final class RedisReplyHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = RESPToken
    typealias Machine = RedisConnection.Machine

    let machine: NIOLockedValueBox<Machine>
    let onPush: @Sendable (RESPValue) -> Void
    let logger: Logger

    init(machine: NIOLockedValueBox<Machine>, onPush: @escaping @Sendable (RESPValue) -> Void, logger: Logger) {
        self.machine = machine
        self.onPush = onPush
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let token = unwrapInboundIn(data)
        if token.base.readableBytesView.first == UInt8(ascii: ">") {
            onPush(token.value)
            return
        }
        switch machine.withLockedValue({ $0.receive(token) }) {
        case .none: break
        case .succeed(let continuation, let replies): continuation.resume(returning: replies)
        case .close(let failing, let error):
            context.close(promise: nil)
            for continuation in failing { continuation.resume(throwing: error) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("redis connection error", metadata: ["error": "\(error)"])
        // Bytes that are not RESP are the server's fault; anything else (a reset, a refused write)
        // is the connection going away, which is temporary: the pool opens another.
        let failure = error is RESPParsingError ? RedisClientError(.protocolError, "\(error)") : RedisClientError(.connectionClosed, "\(error)")
        if case .close(let failing, let clientError) = machine.withLockedValue({ $0.failed(failure) }) {
            for continuation in failing { continuation.resume(throwing: clientError) }
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let failing = machine.withLockedValue { $0.closed() }
        let error = machine.withLockedValue { $0.closedBy } ?? RedisClientError(.connectionClosed)
        for continuation in failing { continuation.resume(throwing: error) }
        context.fireChannelInactive()
    }
}
