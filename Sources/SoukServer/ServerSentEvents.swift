import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// Server-sent event streams. Each ends by itself after a while, and at once when the server
/// starts shutting down (SIGTERM), so that an open browser tab never holds up a shutdown: the
/// browser's EventSource reconnects, to another instance.
enum ServerSentEvents {
    /// `X-Accel-Buffering: no` tells nginx (deploy/nginx) to pass each event on as it comes.
    static let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"]

    /// How often a stream opened in a session asks whether the session is still open.
    static let sessionCheckInterval: Duration = .seconds(5)

    /// A fresh event every `interval` for at most an hour: the live pages (flash-sale counters,
    /// analytics) poll their source on the server, not in the browser. A stream opened in a
    /// session ends within ``sessionCheckInterval`` (plus one interval) of the session ending
    /// (logout, expiry): `sessionIsOpen` is asked that often.
    static func repeating(every interval: Duration, event: String, sessionIsOpen: (@Sendable () async throws -> Bool)? = nil,
                          _ data: @escaping @Sendable () async throws -> String) -> Response {
        let body = ResponseBody { writer in
            let started = ContinuousClock.now
            var checked = started
            while ContinuousClock.now - started < .seconds(3_600) {
                if let sessionIsOpen, ContinuousClock.now - checked >= sessionCheckInterval {
                    guard try await sessionIsOpen() else { break }
                    checked = ContinuousClock.now
                }
                var buffer = ByteBuffer(string: "event: \(event)\n")
                for line in try await data().split(separator: "\n", omittingEmptySubsequences: false) { buffer.writeString("data: \(line)\n") }
                buffer.writeString("\n")
                try await writer.write(buffer)
                guard try await untilShutdown({ try await Task.sleep(for: interval) }) != nil else { break }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// `operation`'s result, or nil if the server starts shutting down first (the operation is then cancelled).
    static func untilShutdown<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T? {
        if Task.isShuttingDownGracefully { return nil }
        do {
            return try await cancelWhenGracefulShutdown(operation)
        } catch is CancellationError where Task.isShuttingDownGracefully {
            return nil
        }
    }
}
