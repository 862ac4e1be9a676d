import Foundation
import NIOCore
import SoukTesting
import Testing
@testable import SoukServer

/// Connections that keep the server waiting are closed; answers still owed are not cut.
@Suite("Connection timeouts")
struct ConnectionTimeoutTests {
    @Test func theLimitsAreOnWhatTheClientSends() {
        let timeouts = HTTPTimeouts(idle: .seconds(60), body: .seconds(30), read: .seconds(300))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }
        func breach(now: Int64, started: Int64?, unanswered: Int = 0, last: Int64) -> String? {
            ConnectionTimeoutHandler.breach(now: at(now), requestStarted: started.map(at), unanswered: unanswered, lastActivity: at(last), timeouts: timeouts)
        }
        #expect(breach(now: 59, started: nil, last: 0) == nil)
        #expect(breach(now: 61, started: nil, last: 0) == "idle")
        #expect(breach(now: 3_600, started: nil, unanswered: 1, last: 0) == nil, "an answer still owed (an event stream) is not cut")
        #expect(breach(now: 29, started: 0, unanswered: 1, last: 0) == nil)
        #expect(breach(now: 31, started: 0, unanswered: 1, last: 0) == "body", "a body that stalls")
        #expect(breach(now: 31, started: 0, unanswered: 0, last: 0) == "body", "…also once it was answered early (a 401 before the body)")
        #expect(breach(now: 299, started: 0, unanswered: 1, last: 290) == nil, "a body that trickles steadily")
        #expect(breach(now: 301, started: 0, unanswered: 1, last: 300) == "read", "…but not forever")
        #expect(breach(now: 400, started: 0, unanswered: 2, last: 0) == nil, "pipelined behind an owed answer, it is not read yet")
    }

    @Test func aRealServerClosesStalledAndIdleConnectionsAndKeepsStreams() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-timeouts-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let souk = try await SoukProcess.start(["run", "--data-dir", directory.path, "--idle-timeout", "2s", "--body-timeout", "1s", "--read-timeout", "4s"])
        defer { souk.stop() }
        let port = souk.baseURL.port ?? 80
        // Headers and 5 of 100 announced body bytes, then nothing.
        let stalled = try await RawHTTP.send("POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"use", port: port)
        // A connection that never sends a request, and one whose head never completes.
        let silent = try await RawHTTP.send("", port: port)
        let halfHead = try await RawHTTP.send("GET /healthz HTTP/1.1\r\nHost: x\r\n", port: port)
        // A body trickling one byte a second: within the body timeout each time, not within the read timeout.
        let trickle = try await RawHTTP.send("POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", port: port)
        // Answered before its body arrived (no session: 401), then the body: the connection is idle after.
        let early = try await RawHTTP.send("POST /api/v1/products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n", port: port)
        try await Task.sleep(for: .milliseconds(300))
        try await early.write("{}")
        // An event stream: an answer owed for as long as it runs.
        let login = try await HTTPTestClient(baseURL: souk.baseURL).send("POST", "/api/v1/sessions", json: #"{"username":"demo","password":"demo1234"}"#)
        let token = try #require(login.json["token"] as? String)
        let stream = try await RawHTTP.open(souk.baseURL, path: "/dashboard/analytics/events", headers: ["Cookie": "souk_session=\(token)"])
        defer { stream.close() }
        let started = ContinuousClock.now
        var stalledClosedAfter: Duration?
        while ContinuousClock.now - started < .seconds(6) {
            if stalledClosedAfter == nil, !stalled.isOpen { stalledClosedAfter = ContinuousClock.now - started }
            if trickle.isOpen { try? await trickle.write(" ") }
            try await Task.sleep(for: .milliseconds(500))
        }
        let closedAfter = try #require(stalledClosedAfter, "the stalled body was dropped")
        #expect(closedAfter < .seconds(3), "within the body timeout and a check: \(closedAfter)")
        #expect(!silent.isOpen && !halfHead.isOpen, "idle and half-sent heads are closed")
        #expect(!trickle.isOpen, "a trickle is cut at the read timeout")
        #expect(early.text.hasPrefix("HTTP/1.1 401") && !early.isOpen, "answered early, then idle: closed")
        #expect(stream.isOpen && stream.text.contains("event: analytics"), "the event stream is still served")
        #expect(try await HTTPTestClient(baseURL: souk.baseURL).send("GET", "/healthz").status == 200)
    }
}
