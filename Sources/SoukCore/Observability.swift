/// A gauge's value read when metrics are scraped (sale counters, queue depths, stream lag): things
/// whose truth lives in a database or Redis rather than in this process.
public struct MetricSample: Sendable, Equatable {
    public let name: String
    public let labels: [String: String]
    public let value: Double

    public init(_ name: String, _ labels: [String: String] = [:], _ value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }
}

/// Something that can report gauges at scrape time.
public protocol MetricsSource: Sendable {
    func samples() async throws -> [MetricSample]
}

/// Each open flash sale's admitted, persisted and pending orders.
public struct FlashSaleMetrics: MetricsSource {
    let flashSales: FlashSales

    public init(flashSales: FlashSales) {
        self.flashSales = flashSales
    }

    public func samples() async throws -> [MetricSample] {
        var samples: [MetricSample] = []
        for sale in try await flashSales.store.openFlashSales() {
            let stats = try await flashSales.stats(sale)
            let labels = ["sale": String(sale.id)]
            samples += [
                MetricSample("souk_flash_sale_admitted", labels, Double(stats.admitted)),
                MetricSample("souk_flash_sale_persisted", labels, Double(stats.persisted)),
                MetricSample("souk_flash_sale_pending", labels, Double(stats.pending)),
                MetricSample("souk_flash_sale_remaining", labels, Double(stats.remaining)),
            ]
        }
        return samples
    }
}

/// The job queue's queued, running and dead jobs.
public struct JobQueueMetrics: MetricsSource {
    let queue: any JobQueue

    public init(queue: any JobQueue) {
        self.queue = queue
    }

    public func samples() async throws -> [MetricSample] {
        let counts = try await queue.counts()
        return [
            MetricSample("souk_jobs", ["state": "queued"], Double(counts.queued)),
            MetricSample("souk_jobs", ["state": "running"], Double(counts.running)),
            MetricSample("souk_jobs", ["state": "dead"], Double(counts.dead)),
        ]
    }
}
