import SoukCore

/// Lag and pending entries of every consumer group Souk reads: each open sale's admitted orders
/// (persisters), the price log (appliers) and the job queue (job workers). Lag is what a group
/// has not been given yet; pending is what it was given and has not acknowledged.
public struct RedisStreamMetrics: MetricsSource {
    let redis: RedisClient
    let sales: any FlashSaleStore

    public init(redis: RedisClient, sales: any FlashSaleStore) {
        self.redis = redis
        self.sales = sales
    }

    public func samples() async throws -> [MetricSample] {
        var streams: [(label: String, key: String)] = [("price_log", RedisKeys.feedLog), ("jobs", RedisKeys.Jobs.queue)]
        for sale in try await sales.openFlashSales() {
            streams.append(("flash_sale_\(sale.id)", RedisKeys.sale(sale.id).admitted))
        }
        var samples: [MetricSample] = []
        for stream in streams {
            for group in try await redis.xinfoGroups(stream.key) {
                let labels = ["stream": stream.label, "group": group.name]
                samples.append(MetricSample("souk_stream_pending", labels, Double(group.pending)))
                if let lag = group.lag { samples.append(MetricSample("souk_stream_lag", labels, Double(lag))) }
            }
        }
        return samples
    }
}
