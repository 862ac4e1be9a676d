import Foundation
import SoukCore
import SoukTesting
import SoukWorkers
import Testing

/// Souk's calls to outside services (the checkout verifier here): HTTPS with a certificate the
/// process trusts, refused without it, a deadline, and answers read up to a limit.
@Suite("Outbound HTTP")
struct OutboundHTTPTests {
    /// Runs `body` with a client that trusts `certificate` (or only the system's roots), shut down after.
    static func withClient(trusting certificate: TestCertificate?, _ body: (OutboundHTTP) async throws -> Void) async throws {
        let http = try OutboundHTTP(trustedCertificates: certificate?.certificateFile, logger: TestLog.logger)
        do {
            try await body(http)
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    @Test func theVerifierIsAskedOverHTTPSWhenItsCertificateIsTrusted() async throws {
        let certificate = try TestCertificate.make()
        let stub = try await StubHTTPServer([.answer(status: 200, body: #"{"verified":true}"#), .answer(status: 200, body: #"{"verified":false}"#)], certificate: certificate)
        defer { stub.close() }
        #expect(stub.url.scheme == "https")
        try await Self.withClient(trusting: certificate) { http in
            let verifier = try HTTPVerifier(url: stub.url, http: http)
            #expect(try await verifier.verify(buyerID: "cu_1", orderID: "o-1", timeout: .seconds(10)) == true)
            #expect(try await verifier.verify(buyerID: "cu_2", orderID: "o-2", timeout: .seconds(10)) == false)
            #expect(stub.requests == 2)
        }
    }

    @Test func aCertificateNobodyVouchesForIsRefusedBeforeAnythingIsSent() async throws {
        let stub = try await StubHTTPServer([.answer(status: 200, body: #"{"verified":true}"#)], certificate: try TestCertificate.make())
        defer { stub.close() }
        try await Self.withClient(trusting: nil) { http in
            let verifier = try HTTPVerifier(url: stub.url, http: http)
            await #expect(throws: (any Error).self) { try await verifier.verify(buyerID: "cu_1", orderID: "o-1", timeout: .seconds(2)) }
            #expect(stub.requests == 0, "no request reached a server whose certificate is not trusted")
        }
    }

    @Test func aVerifierThatDoesNotAnswerInTimeIsATimeoutAndGarbageIsNoVerdict() async throws {
        let stub = try await StubHTTPServer([.stall])
        defer { stub.close() }
        try await Self.withClient(trusting: nil) { http in
            let verifier = try HTTPVerifier(url: stub.url, http: http)
            let started = ContinuousClock.now
            await #expect(throws: VerifierTimeout.self) { try await verifier.verify(buyerID: "cu_1", orderID: "o-1", timeout: .milliseconds(500)) }
            #expect(ContinuousClock.now - started < .seconds(5), "the deadline holds")
            stub.play([.stallBody])
            let head = ContinuousClock.now
            await #expect(throws: VerifierTimeout.self) { try await verifier.verify(buyerID: "cu_1", orderID: "o-3", timeout: .milliseconds(500)) }
            #expect(ContinuousClock.now - head < .seconds(5), "a body that stops coming is cut at the same deadline")
            stub.play([.answer(status: 200, body: "<html>maintenance</html>")])
            await #expect(throws: VerifierUnavailable.self) { try await verifier.verify(buyerID: "cu_1", orderID: "o-2", timeout: .seconds(10)) }
            stub.play([.answer(status: 200, body: String(repeating: "x", count: OutboundHTTP.maximumBody + 1))])
            await #expect(throws: OutboundHTTPError.self) { try await http.send(.GET, stub.url, timeout: .seconds(10)) }
        }
    }

    /// A verifier that cannot be reached is tried again until the deadline (the saga's), and only
    /// then is it a timeout: never sooner, with time left.
    @Test func anUnreachableVerifierIsTriedUntilTheDeadline() async throws {
        // Port 1 on loopback: nothing listens there, and no test's server can be given it.
        let url = URL(string: "http://127.0.0.1:1/verify")!
        try await Self.withClient(trusting: nil) { http in
            let verifier = try HTTPVerifier(url: url, http: http)
            let started = ContinuousClock.now
            await #expect(throws: VerifierTimeout.self) { try await verifier.verify(buyerID: "cu_1", orderID: "o-1", timeout: .seconds(2)) }
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(1_900) && waited < .seconds(6), "\(waited)")
        }
    }

    @Test func onlyHTTPAndHTTPSAddressesAreAccepted() throws {
        for good in ["http://127.0.0.1:8080/verify", "https://verify.example.com/check?x=1"] {
            #expect(OutboundHTTP.accepts(URL(string: good)!), "\(good)")
        }
        for bad in ["ftp://example.com/x", "file:///etc/passwd", "https:///nohost"] {
            #expect(!OutboundHTTP.accepts(URL(string: bad)!), "\(bad)")
        }
    }
}
