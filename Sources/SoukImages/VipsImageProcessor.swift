import CVips
import NIOPosix
import SoukCore

/// ``ImageProcessor`` on libvips. libvips is initialised once per process; its calls block, so they
/// run on NIO's thread pool.
public struct VipsImageProcessor: ImageProcessor {
    let pool: NIOThreadPool

    public init(pool: NIOThreadPool = .singleton) throws {
        guard Self.initialised else { throw VipsError(message: "libvips could not start") }
        self.pool = pool
    }

    private static let initialised: Bool = souk_vips_init() == 0

    public func inspect(_ data: [UInt8]) async throws -> ImageInfo {
        guard data.count <= ImageLimits.maxBytes else { throw SoukError.payloadTooLarge(limit: ImageLimits.maxBytes) }
        guard let format = ImageFormat(sniffing: data) else { throw SoukError.unsupportedImageType }
        // The header first: a huge image is refused before anything is decoded.
        let (width, height) = try await pool.runIfActive {
            var width: Int32 = 0, height: Int32 = 0
            let status = data.withUnsafeBytes { souk_vips_header($0.baseAddress, $0.count, &width, &height) }
            guard status == 0 else { throw SoukError.invalidImage(Self.lastError(or: "its header cannot be read")) }
            return (Int(width), Int(height))
        }
        guard width > 0, height > 0, width <= ImageLimits.maxSide, height <= ImageLimits.maxSide, width * height <= ImageLimits.maxPixels else {
            throw SoukError.invalidImage("it is \(width) × \(height) pixels; at most \(ImageLimits.maxSide) on a side and \(ImageLimits.maxPixels / 1_000_000) megapixels")
        }
        try await pool.runIfActive {
            var width: Int32 = 0, height: Int32 = 0, average = 0.0
            let status = data.withUnsafeBytes { souk_vips_check($0.baseAddress, $0.count, &width, &height, &average) }
            guard status == 0 else { throw SoukError.invalidImage(Self.lastError(or: "it cannot be decoded")) }
        }
        return ImageInfo(format: format, width: width, height: height)
    }

    public func thumbnail(_ data: [UInt8], size: Int) async throws -> [UInt8] {
        try await pool.runIfActive {
            var output: UnsafeMutableRawPointer?
            var length = 0
            let status = data.withUnsafeBytes { souk_vips_thumbnail_jpeg($0.baseAddress, $0.count, Int32(size), 82, &output, &length) }
            guard status == 0, let output else { throw VipsError(message: Self.lastError(or: "thumbnail failed")) }
            defer { souk_g_free(output) }
            return Array(UnsafeRawBufferPointer(start: output, count: length))
        }
    }

    /// libvips keeps its error text per process; it is read and cleared right after a failure.
    static func lastError(or fallback: String) -> String {
        let text = souk_vips_error().map { String(cString: $0) }?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        souk_vips_error_clear()
        let firstLine = text.split(separator: "\n").first.map(String.init) ?? ""
        return firstLine.isEmpty ? fallback : String(firstLine.prefix(200))
    }
}

public struct VipsError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { "libvips: \(message)" }
}
