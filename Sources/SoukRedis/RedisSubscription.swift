import Logging
import NIOConcurrencyHelpers
import NIOCore
import RESP

/// Pub/sub on a connection of its own. The subscription survives Redis restarts: it reconnects
/// with backoff and subscribes again, and says so with ``Event/resubscribed``, since messages
/// published meanwhile were lost and the listener may need to catch up.
public enum RedisSubscription {
    public enum Event: Sendable, Hashable {
        /// The subscription is active: messages published from now on will arrive.
        case subscribed
        /// Active again after the connection was lost; earlier messages may be missing.
        case resubscribed
        case message(channel: String, payload: String)
    }

    /// Subscribes to `channels`; the stream ends when the consuming task stops iterating.
    public static func subscribe(_ client: RedisClient, channels: [String]) -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(10_000))
        let task = Task {
            var first = true
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await session(client, channels: channels, first: first, continuation: continuation)
                    failures = 0
                } catch {
                    client.logger.debug("redis subscription lost", metadata: ["error": "\(error)"])
                    failures += 1
                }
                first = false
                let delay = min(Duration.seconds(2), .milliseconds(25) * (1 << min(failures, 7)))
                try? await Task.sleep(for: delay)
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// One connection's life: subscribe, forward messages, return when the connection closes.
    private static func session(_ client: RedisClient, channels: [String], first: Bool, continuation: AsyncStream<Event>.Continuation) async throws {
        let confirmed = NIOLockedValueBox(Set<String>())
        let (pushes, pushContinuation) = AsyncStream.makeStream(of: RESPValue.self)
        let connection = try await RedisConnection.connect(client.configuration, eventLoopGroup: client.eventLoopGroup, logger: client.logger) { push in
            pushContinuation.yield(push)
        }
        connection.channel.closeFuture.whenComplete { _ in pushContinuation.finish() }
        try await withTaskCancellationHandler {
            connection.send([RESPCommand("SUBSCRIBE", channels)])
            var announced = false
            for await push in pushes {
                guard let parts = push.elements, parts.count >= 3, let kind = parts[0].string?.lowercased() else { continue }
                switch kind {
                case "subscribe":
                    if let channel = parts[1].string { confirmed.withLockedValue { _ = $0.insert(channel) } }
                    if !announced, confirmed.withLockedValue({ $0.isSuperset(of: channels) }) {
                        announced = true
                        continuation.yield(first ? .subscribed : .resubscribed)
                    }
                case "message":
                    if let channel = parts[1].string, let payload = parts[2].string {
                        continuation.yield(.message(channel: channel, payload: payload))
                    }
                default:
                    continue
                }
            }
        } onCancel: {
            connection.close()
        }
        connection.close()
        throw RedisClientError(.connectionClosed)
    }
}
