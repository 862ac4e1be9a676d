import Crypto
import Foundation
import Hummingbird
import NIOCore
import SoukCore

/// Product images: `PUT /api/v1/products/{id}/image` takes a JPEG, PNG or WebP (checked by content,
/// decoded in full, size-limited), stores it under its content hash, marks the product
/// `processing` and queues the thumbnail job; `GET /media/{name}` serves thumbnails for a year.
struct ImageController: Sendable {
    let services: SoukServices

    func addRoutes(api: RouterGroup<SoukRequestContext>, root: RouterGroup<SoukRequestContext>) {
        api.group().add(middleware: RequireVendorMiddleware()).put("products/:id/image", use: upload)
        root.get("media/:name", use: media)
    }

    @Sendable func upload(_ request: Request, context: SoukRequestContext) async throws -> Response {
        let vendor = try context.requireVendor()
        let id = try APIController.id(context, of: "Product")
        guard try await services.storage.product(id: id, vendorID: vendor.id) != nil else { throw SoukError.notFound("Product") }
        let body = try await JSONResponse.readBody(request, limit: ImageLimits.maxBytes)
        let product = try await services.attachImage(Array(buffer: body), productID: id, vendorID: vendor.id, requestID: context.requestID)
        return try JSONResponse.make(API.ProductBody(product), status: .accepted)
    }

    @Sendable func media(_ request: Request, context: SoukRequestContext) async throws -> Response {
        guard let name = context.parameters.get("name"), name.hasSuffix(".jpg"), let store = services.media,
              let bytes = try await store.get(name)
        else { throw SoukError.notFound("Image") }
        let etag = "\"\(name)\""
        if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
        return Response(
            status: .ok,
            headers: [.contentType: "image/jpeg", .cacheControl: "public, max-age=31536000, immutable", .eTag: etag],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension SoukServices {
    /// Checks the image, keeps it, points the product at it and queues its thumbnails. Nothing about
    /// the product changes unless the image is good.
    func attachImage(_ bytes: [UInt8], productID: Int64, vendorID: Int64, requestID: String) async throws -> Product {
        guard let images, let media, let jobs, let store = storage as? any ProductImageStore else { throw SoukError.notFound("Image uploads") }
        _ = try await images.inspect(bytes)
        let key = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        if let current = try await storage.product(id: productID, vendorID: vendorID), current.imageKey == key,
           Set(current.thumbnailSizes) == Set(ImageLimits.thumbnailSizes) {
            return current  // the same image again: its thumbnails are made already
        }
        try await media.put(MediaNames.original(key), bytes)
        guard let product = try await store.setImage(productID: productID, vendorID: vendorID, imageKey: key) else { throw SoukError.notFound("Product") }
        // If this process dies here, the worker's sweeper finds the product still processing and queues the job.
        try await jobs.enqueue(
            id: ThumbnailJobs.id(productID: productID, imageKey: key, upload: SessionTokens.randomToken().prefix(12).description),
            kind: ThumbnailJobs.kind, payload: ThumbnailJobs.payload(productID: productID, imageKey: key, requestID: requestID.isEmpty ? nil : requestID))
        return product
    }
}
