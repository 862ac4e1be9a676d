import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SoukCore
import SoukImages
import SoukTesting
import SoukWorkers
import Testing

@Suite("Product images and thumbnails")
struct ProductImageTests {
    static func upload(_ app: TestApp, product: Int64, token: String, _ bytes: [UInt8]) async throws -> TestApp.Reply {
        try await app.send(.put, "/api/v1/products/\(product)/image", body: ByteBuffer(bytes: bytes), token: token)
    }

    static func runJobs(_ app: TestApp) async throws -> Int {
        let runner = JobRunner(
            queue: app.jobs, handlers: [ThumbnailJob.kind: ThumbnailJob(images: try VipsImageProcessor(), media: app.media, products: app.storage) { _ in }],
            worker: "test", logger: TestLog.logger)
        var ran = 0
        while let job = try await app.jobs.claim(worker: "test", lease: .seconds(30), wait: .zero) {
            try await runner.perform(job)
            ran += 1
        }
        return ran
    }

    /// The upload's request id goes with its job, so one id finds both in the logs.
    @Test func theRequestIDFollowsTheUploadIntoItsJob() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let id = try await app.product(token: token, name: "Tagine")
            var headers: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "image/png"]
            headers[HTTPField.Name("X-Request-Id")!] = "upload-req-0001"
            let accepted = try await app.send(.put, "/api/v1/products/\(id)/image", body: ByteBuffer(bytes: TestImages.png(width: 300, height: 200)), headers: headers)
            #expect(accepted.status == .accepted, "\(accepted.body)")
            let job = try #require(try await app.jobs.claim(worker: "test", lease: .seconds(30), wait: .zero))
            #expect(job.payload.hasSuffix(":upload-req-0001"), "\(job.payload)")
            let runner = JobRunner(
                queue: app.jobs, handlers: [ThumbnailJob.kind: ThumbnailJob(images: try VipsImageProcessor(), media: app.media, products: app.storage) { _ in }],
                worker: "test", logger: TestLog.logger)
            try await runner.perform(job)
            #expect(try await app.json(.get, "/api/v1/products/\(id)", token: token).json["status"] as? String == "active")
        }
    }

    @Test func aRealImageGoesInAndThumbnailsOfTheRightSizesComeOut() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let id = try await app.product(token: token, name: "Tagine")
            let accepted = try await Self.upload(app, product: id, token: token, TestImages.png(width: 1200, height: 900))
            #expect(accepted.status == .accepted, "\(accepted.body)")
            #expect(accepted.json["status"] as? String == "processing", "the request answers at once; the work is queued")
            #expect(accepted.json["thumbnails"] == nil)

            #expect(try await Self.runJobs(app) == 1)
            let product = try await app.json(.get, "/api/v1/products/\(id)", token: token)
            #expect(product.json["status"] as? String == "active")
            let thumbnails = try #require(product.json["thumbnails"] as? [String: String])
            #expect(Set(thumbnails.keys) == ["200", "400", "800"])
            let images = try VipsImageProcessor()
            for (size, expected) in [("200", (200, 150)), ("400", (400, 300)), ("800", (800, 600))] {
                let url = try #require(thumbnails[size])
                let served = try await app.send(.get, url)
                #expect(served.status == .ok && served.headers[.contentType] == "image/jpeg")
                #expect(served.headers[.cacheControl] == "public, max-age=31536000, immutable")
                let info = try await images.inspect(served.bytes)
                #expect(info.format == .jpeg && info.width == expected.0 && info.height == expected.1, "\(size): \(info)")
            }
            let store = try await app.send(.get, "/s/amina")
            #expect(store.body.contains(thumbnails["200"]!), "the store page shows the thumbnail")
            // A JPEG is taken as well (the 400 px thumbnail, uploaded to another product).
            let jpeg = try await app.send(.get, try #require(thumbnails["400"]))
            let other = try await app.product(token: token, name: "Lantern")
            #expect(try await Self.upload(app, product: other, token: token, jpeg.bytes).status == .accepted)
            #expect(try await Self.runJobs(app) == 1)
            #expect(try await Self.runJobs(app) == 0, "the jobs are done and gone")
        }
    }

    @Test func badUploadsGetA4xxAndLeaveTheProductUnchanged() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let id = try await app.product(token: token, name: "Tagine")
            let before = try await app.json(.get, "/api/v1/products/\(id)", token: token).body
            let good = TestImages.png(width: 300, height: 200)
            let cases: [(String, [UInt8], HTTPResponse.Status, String)] = [
                ("truncated", Array(good.prefix(good.count / 2)), .unprocessableContent, "invalid_image"),
                ("PNG magic, then garbage", Array(good.prefix(8)) + Array(repeating: 0x41, count: 500), .unprocessableContent, "invalid_image"),
                ("too many pixels", TestImages.pngHeaderOnly(width: 9_000, height: 9_000), .unprocessableContent, "invalid_image"),
                ("a GIF", Array("GIF89a".utf8) + Array(repeating: 0, count: 100), .unsupportedMediaType, "unsupported_media_type"),
                ("text named like an image", Array("hello.png".utf8), .unsupportedMediaType, "unsupported_media_type"),
                ("empty", [], .unsupportedMediaType, "unsupported_media_type"),
                ("over 8 MiB", Array(good.prefix(8)) + Array(repeating: 0, count: ImageLimits.maxBytes), .contentTooLarge, "payload_too_large"),
            ]
            for (name, bytes, status, code) in cases {
                let reply = try await Self.upload(app, product: id, token: token, bytes)
                #expect(reply.status == status && reply.errorCode == code, "\(name): \(reply.status) \(reply.body)")
            }
            #expect(try await app.json(.get, "/api/v1/products/\(id)", token: token).body == before, "nothing changed")
            #expect(try await app.jobs.counts() == JobCounts(), "nothing queued")

            let other = try await app.vendorToken("bilal")
            let stranger = try await Self.upload(app, product: id, token: other, good)
            #expect(stranger.status == .notFound, "another vendor's product is not found")
            #expect(try await Self.upload(app, product: id, token: "nope", good).status == .unauthorized)
        }
    }

    @Test func aCorruptImageThatPassedTheChecksIsDeadLetteredWithItsReason() async throws {
        try await TestApp.run { app in
            let token = try await app.vendorToken("amina")
            let id = try await app.product(token: token, name: "Tagine")
            // The original goes missing after the upload (a lost disk): the job cannot succeed.
            #expect(try await Self.upload(app, product: id, token: token, TestImages.png(width: 50, height: 50)).status == .accepted)
            for file in try FileManager.default.contentsOfDirectory(at: app.media.directory, includingPropertiesForKeys: nil) {
                try FileManager.default.removeItem(at: file)
            }
            #expect(try await Self.runJobs(app) == 1)
            let dead = try await app.jobs.deadJobs(limit: 10)
            #expect(dead.count == 1 && dead[0].reason.contains("missing") && dead[0].attempts == 1, "\(dead)")
            #expect(try await app.json(.get, "/api/v1/products/\(id)", token: token).json["status"] as? String == "processing")
        }
    }
}

@Suite("Product images on the dashboard")
struct ProductImagePageTests {
    static func multipart(csrf: String, image: [UInt8], boundary: String = "souk-test-boundary") -> (ByteBuffer, String) {
        var body: [UInt8] = []
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n\(csrf)\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"photo.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
        body += image
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        return (ByteBuffer(bytes: body), "multipart/form-data; boundary=\(boundary)")
    }

    @Test func aVendorUploadsAnImageOnTheFormAndSeesErrorsThere() async throws {
        try await TestApp.run { app in
            let vendor = Browser(app)
            _ = try await vendor.get("/signup")
            _ = try await vendor.post("/signup", [("username", "amina"), ("password", "sesame1234"), ("store_name", "Amina's Souk")])
            _ = try await vendor.post("/dashboard/products", [("name", "Tagine"), ("price", "49.99"), ("currency", "USD"), ("stock", "3"), ("available", "yes")])
            let product = try #require(try await app.storage.products(vendorID: 1, availableOnly: false).first)
            let edit = try await vendor.get("/dashboard/products/\(product.id)/edit")
            #expect(edit.body.contains(#"enctype="multipart/form-data""#) && edit.body.contains(#"type="file" name="image""#))

            let (corrupt, type) = Self.multipart(csrf: vendor.csrf, image: Array(TestImages.png(width: 100, height: 100).prefix(60)))
            let refused = try await vendor.request(.post, "/dashboard/products/\(product.id)/image", body: corrupt, contentType: type)
            #expect(refused.status == .unprocessableContent && refused.body.contains("The image cannot be used"), "shown on the form")
            #expect(try await app.storage.product(id: product.id, vendorID: 1)?.imageKey == nil)

            let (forged, _) = Self.multipart(csrf: "forged", image: TestImages.png(width: 100, height: 100))
            #expect(try await vendor.request(.post, "/dashboard/products/\(product.id)/image", body: forged, contentType: type).status == .forbidden)

            let (good, _) = Self.multipart(csrf: vendor.csrf, image: TestImages.png(width: 640, height: 480))
            let uploaded = try await vendor.request(.post, "/dashboard/products/\(product.id)/image", body: good, contentType: type)
            #expect(uploaded.status == .found)
            #expect(try await app.storage.product(id: product.id, vendorID: 1)?.status == .processing)
            #expect(try await vendor.get("/dashboard").body.contains("processing"))
            #expect(try await ProductImageTests.runJobs(app) == 1)
            let done = try await vendor.get("/dashboard")
            #expect(done.body.contains("-200.jpg") && !done.body.contains(#"<span class="status">processing"#))
        }
    }
}
