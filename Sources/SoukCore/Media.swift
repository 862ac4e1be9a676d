import Foundation

/// Where uploaded images and their thumbnails are kept, by name. Names are content hashes, so a
/// stored file never changes and can be cached forever.
public protocol MediaStore: Sendable {
    func put(_ name: String, _ bytes: [UInt8]) async throws
    func get(_ name: String) async throws -> [UInt8]?
}

/// Media in a directory (`SOUK_DATA_DIR/media`). Several instances must share the directory (or
/// use object storage behind this port).
public struct FileMediaStore: MediaStore {
    public let directory: URL

    public init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
    }

    /// Only names Souk makes: a hex hash, an optional size, an extension.
    public static func isValidName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, ["orig", "jpg"].contains(parts[1]) else { return false }
        let stem = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(stem.count), stem[0].count == 64, stem[0].allSatisfy(\.isHexDigit) else { return false }
        return stem.count == 1 || (stem[1].count <= 5 && stem[1].allSatisfy(\.isASCIIDigit))
    }

    public func put(_ name: String, _ bytes: [UInt8]) async throws {
        guard Self.isValidName(name) else { throw CocoaError(.fileWriteInvalidFileName) }
        try Data(bytes).write(to: directory.appendingPathComponent(name), options: .atomic)
    }

    public func get(_ name: String) async throws -> [UInt8]? {
        guard Self.isValidName(name) else { return nil }
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return Array(try Data(contentsOf: url))
    }
}

/// The names of a product image's files.
public enum MediaNames {
    public static func original(_ key: String) -> String { "\(key).orig" }
    public static func thumbnail(_ key: String, size: Int) -> String { "\(key)-\(size).jpg" }
    public static func url(_ name: String) -> String { "/media/\(name)" }
}
