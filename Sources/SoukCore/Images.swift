/// The image formats Souk accepts, recognised by their first bytes (never by a file name or a
/// client's Content-Type).
public enum ImageFormat: String, Sendable, Equatable {
    case jpeg, png, webp

    public init?(sniffing bytes: some Collection<UInt8>) {
        let head = Array(bytes.prefix(12))
        if head.starts(with: [0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if head.count == 12, head[0..<4] == [0x52, 0x49, 0x46, 0x46], head[8..<12] == [0x57, 0x45, 0x42, 0x50] {
            self = .webp
        } else {
            return nil
        }
    }
}

public struct ImageInfo: Sendable, Equatable {
    public let format: ImageFormat
    public let width: Int
    public let height: Int

    public init(format: ImageFormat, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }
}

public enum ImageLimits {
    public static let maxBytes = 8 * 1024 * 1024
    public static let maxSide = 8_000
    public static let maxPixels = 40_000_000
    /// Thumbnail widths (and heights: they fit in a square), smallest first.
    public static let thumbnailSizes = [200, 400, 800]
}

/// Decodes and resizes images. The work is slow and blocking, so implementations run it off the
/// cooperative pool.
public protocol ImageProcessor: Sendable {
    /// Checks an upload completely (type by content, size limits, every pixel decodable); throws
    /// ``SoukError/unsupportedImageType`` or ``SoukError/invalidImage(_:)``.
    func inspect(_ data: [UInt8]) async throws -> ImageInfo
    /// A JPEG that fits in `size` × `size`, never enlarged.
    func thumbnail(_ data: [UInt8], size: Int) async throws -> [UInt8]
}

/// How thumbnail jobs are named, shared by the upload (which queues them) and the worker.
public enum ThumbnailJobs {
    public static let kind = "thumbnails"

    /// Every upload queues a job of its own (`upload` tells them apart), so an upload that lands
    /// while the previous job of the same image is finishing still gets its thumbnails recorded.
    public static func id(productID: Int64, imageKey: String, upload: String) -> String { "\(prefix(productID: productID, imageKey: imageKey))\(upload)" }
    public static func prefix(productID: Int64, imageKey: String) -> String { "\(kind):\(productID):\(imageKey):" }
    /// `product:key`, or `product:key:request-id` when queued by a request (the id follows the upload into the job's logs).
    public static func payload(productID: Int64, imageKey: String, requestID: String? = nil) -> String {
        requestID.map { "\(productID):\(imageKey):\($0)" } ?? "\(productID):\(imageKey)"
    }
}
