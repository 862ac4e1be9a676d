import Hummingbird
import NIOCore

/// A server-sent event stream that sends a fresh event every `interval` for at most an hour: the
/// live pages (flash-sale counters, analytics) poll their source on the server, not in the browser.
enum ServerSentEvents {
    static func repeating(every interval: Duration, event: String, _ data: @escaping @Sendable () async throws -> String) -> Response {
        let body = ResponseBody { writer in
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(3_600) {
                var buffer = ByteBuffer(string: "event: \(event)\n")
                for line in try await data().split(separator: "\n", omittingEmptySubsequences: false) { buffer.writeString("data: \(line)\n") }
                buffer.writeString("\n")
                try await writer.write(buffer)
                try await Task.sleep(for: interval)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}
