import Foundation
import Logging
import ServiceLifecycle
import SoukCore
import CoreMetrics

/// Does one kind of job. Handlers must be idempotent: a job may run again after a worker died.
public protocol JobHandler: Sendable {
    func run(_ job: Job) async throws
}

/// A failure that retrying cannot fix (a corrupt input): the job is dead-lettered at once.
public struct PermanentJobFailure: Error, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Runs jobs from the queue: `concurrency` loops each claim a job, run its handler, and complete it,
/// or hand it back for a retry after the policy's backoff, or dead-letter it with the reason once
/// its attempts are used up. A runner that is stopped leaves its current jobs to their leases.
public struct JobRunner: Service {
    let queue: any JobQueue
    let handlers: [String: any JobHandler]
    let worker: String
    let concurrency: Int
    let lease: Duration
    let policy: RetryPolicy
    let logger: Logger

    public init(
        queue: any JobQueue, handlers: [String: any JobHandler], worker: String, concurrency: Int = 2,
        lease: Duration = .seconds(60), policy: RetryPolicy = RetryPolicy(), logger: Logger
    ) {
        self.queue = queue
        self.handlers = handlers
        self.worker = worker
        self.concurrency = max(1, concurrency)
        self.lease = lease
        self.policy = policy
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<concurrency {
                    group.addTask { await loop(name: "\(worker)-\(index)") }
                }
            }
        }
    }

    func loop(name: String) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                guard let job = try await queue.claim(worker: name, lease: lease, wait: .seconds(1)) else { continue }
                try await perform(job)
                failures = 0
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                logger.warning("job runner retrying", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                try? await Task.sleep(for: PriceFeedProducer.backoff(failures))
            }
        }
    }

    /// Runs one claimed job and settles it.
    public func perform(_ job: Job) async throws {
        guard let handler = handlers[job.kind] else {
            try await queue.fail(job, reason: "no handler for jobs of kind \(job.kind)", retryAfter: nil)
            return
        }
        do {
            try await handler.run(job)
        } catch let error as CancellationError {
            throw error
        } catch let failure as PermanentJobFailure {
            Counter(label: "souk_jobs_dead_total", dimensions: [("kind", job.kind)]).increment()
            logger.error("job failed for good", metadata: ["job": "\(job.id)", "reason": "\(failure.reason)"])
            try await queue.fail(job, reason: failure.reason, retryAfter: nil)
            return
        } catch {
            let delay = policy.delay(afterAttempt: job.attempt)
            if delay == nil {
                Counter(label: "souk_jobs_dead_total", dimensions: [("kind", job.kind)]).increment()
                logger.error("job dead-lettered", metadata: ["job": "\(job.id)", "attempts": "\(job.attempt)", "error": "\(String(reflecting: error))"])
            } else {
                Counter(label: "souk_job_retries_total", dimensions: [("kind", job.kind)]).increment()
            }
            try await queue.fail(job, reason: "\(error)", retryAfter: delay)
            return
        }
        try await queue.complete(job)
    }
}

/// Makes a product's thumbnails from its uploaded image and marks it active. Thumbnails already
/// made are kept, and an image replaced meanwhile is left alone, so running twice is harmless.
public struct ThumbnailJob: JobHandler {
    public static let kind = ThumbnailJobs.kind
    let images: any ImageProcessor
    let media: any MediaStore
    let products: any ProductImageStore
    let invalidate: @Sendable (Int64) async -> Void
    let logger: Logger

    public init(
        images: any ImageProcessor, media: any MediaStore, products: any ProductImageStore, logger: Logger = Logger(label: "souk.jobs"),
        invalidate: @escaping @Sendable (Int64) async -> Void
    ) {
        self.logger = logger
        self.images = images
        self.media = media
        self.products = products
        self.invalidate = invalidate
    }

    public func run(_ job: Job) async throws {
        let parts = job.payload.split(separator: ":")
        guard parts.count == 2 || parts.count == 3, let productID = Int64(parts[0]) else { throw PermanentJobFailure("malformed payload \(job.payload)") }
        let key = String(parts[1])
        var logger = logger
        logger[metadataKey: "job"] = .string(job.id)
        if parts.count == 3 { logger[metadataKey: "request_id"] = .string(String(parts[2])) }
        guard let original = try await media.get(MediaNames.original(key)) else { throw PermanentJobFailure("the original image \(key) is missing") }
        for size in ImageLimits.thumbnailSizes where try await media.get(MediaNames.thumbnail(key, size: size)) == nil {
            let thumbnail: [UInt8]
            do {
                thumbnail = try await images.thumbnail(original, size: size)
            } catch {
                throw PermanentJobFailure("the image cannot be resized: \(error)")
            }
            try await media.put(MediaNames.thumbnail(key, size: size), thumbnail)
        }
        if let vendor = try await products.thumbnailsMade(productID: productID, imageKey: key, sizes: ImageLimits.thumbnailSizes) {
            await invalidate(vendor)
        }
        logger.info("thumbnails made", metadata: ["souk.product_id": "\(productID)", "attempt": "\(job.attempt)"])
    }
}

/// Finds products whose thumbnail job was lost (a crash between saving the image and queueing the
/// job) and queues it again; a job already queued is not doubled.
public struct ThumbnailSweeper: Service {
    let products: any ProductImageStore
    let queue: any JobQueue
    let grace: Duration
    let every: Duration

    public init(products: any ProductImageStore, queue: any JobQueue, grace: Duration = .seconds(60), every: Duration = .seconds(30)) {
        self.products = products
        self.queue = queue
        self.grace = grace
        self.every = every
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                _ = try? await sweep()
                try? await Task.sleep(for: every)
            }
        }
    }

    @discardableResult
    public func sweep() async throws -> Int {
        let stuck = try await products.productsAwaitingThumbnails(before: Date().addingTimeInterval(-Double(grace.components.seconds)), limit: 100)
        for (productID, key) in stuck {
            try await queue.enqueue(
                id: ThumbnailJobs.id(productID: productID, imageKey: key, upload: "sweep"), kind: ThumbnailJobs.kind,
                payload: ThumbnailJobs.payload(productID: productID, imageKey: key))
        }
        return stuck.count
    }
}
