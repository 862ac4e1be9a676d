import Foundation

/// A self-signed certificate for 127.0.0.1 and localhost, made with the `openssl` command in a
/// temporary directory: a test's HTTPS server presents it, and a client trusts it (or not).
public struct TestCertificate: Sendable {
    public let certificateFile: String
    public let keyFile: String

    public static func make() throws -> TestCertificate {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("souk-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("certificate.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let openssl = try ChildProcess("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=souk test",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        guard openssl.waitUntilExit() == .exit(0) else { throw TestCertificateError() }
        return TestCertificate(certificateFile: certificate, keyFile: key)
    }
}

struct TestCertificateError: Error, CustomStringConvertible {
    var description: String { "openssl could not make a test certificate" }
}
