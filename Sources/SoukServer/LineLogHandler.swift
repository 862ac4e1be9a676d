import Foundation
import Logging
import NIOConcurrencyHelpers

/// Writes one line per log entry to standard output, in the shape of swift-log's `StreamLogHandler`.
///
/// Why not `StreamLogHandler` itself: it formats all metadata again each time one key is set, and
/// every request sets two (Hummingbird's request id and ours), so a busy server paid for formatting
/// lines it never wrote. This handler keeps metadata as it is and formats only what it writes.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let output: LineOutput

    public init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil, output: LineOutput = .standardOutput) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        output.write(Self.line(event, label: label, metadata: metadata, provided: metadataProvider?.get()))
    }

    /// `2026-11-21T13:49:14+0000 info souk: request_id=… [SoukServer] message`, metadata sorted by key.
    static func line(_ event: LogEvent, label: String, metadata: Logger.Metadata, provided: Logger.Metadata?, now: Date = Date()) -> String {
        var all = metadata
        if let provided { all.merge(provided) { own, _ in own } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        var line = "\(timestamp(now)) \(event.level) \(label):"
        for (key, value) in all.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        line += " [\(event.source)] \(event.message)\n"
        return line
    }

    static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [Int8](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S+0000", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Where log lines go: standard output (whole lines, never interleaved), or a collector in tests.
public struct LineOutput: Sendable {
    let write: @Sendable (String) -> Void

    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    public func write(_ line: String) { write(line) }

    public static let standardOutput: LineOutput = {
        let lock = NIOLock()
        return LineOutput { line in
            lock.withLock { FileHandle.standardOutput.write(Data(line.utf8)) }
        }
    }()
}
