import Foundation
import Logging
import ServiceLifecycle
import SoukCore
import SoukRedis
import SoukServer
import SoukSQL
import SoukWorkers

/// The composition root: which backend serves each port, given the configuration.
enum Wiring {
    /// Services for the HTTP roles, and the long-running parts (Redis client, invalidation
    /// listener) that must run and shut down with the server.
    /// - Parameter withWorkers: also run the flash-sale persisters and the reconciler in this
    ///   process (`souk run`); `souk serve` leaves them to `souk worker`.
    static func services(_ configuration: SoukConfiguration, database: any SQLDatabase, withWorkers: Bool, logger: Logger) async throws -> (SoukServices, [any Service]) {
        let storage = SQLStorage(database: database)
        var background: [any Service] = []
        var sessions: (any SessionStore)?
        var pageCache: (any PageCache)?
        var gate: (any FlashSaleGate)?
        let ttl = configuration.pageCacheTTL

        if let url = configuration.redisURL {
            let redis = try RedisClient(url: url, logger: logger)
            background.append(redis)
            gate = RedisFlashSaleGate(redis: redis, store: storage)
            if withWorkers { background += workers(redis: redis, storage: storage, consumers: 1, logger: logger) }
            sessions = RedisSessionStore(redis: redis, vendors: storage)
            switch configuration.pageCache {
            case .auto:
                let twoLayer = TwoLayerPageCache(local: InProcessPageCache(timeToLive: ttl), remote: RedisPageCache(redis: redis, timeToLive: ttl))
                background.append(BackgroundTask(name: "store-invalidations") { await twoLayer.listenForInvalidations() })
                pageCache = twoLayer
            case .redis: pageCache = RedisPageCache(redis: redis, timeToLive: ttl)
            case .local: pageCache = InProcessPageCache(timeToLive: ttl)
            case .off: pageCache = nil
            }
        } else {
            pageCache = configuration.pageCache == .off ? nil : InProcessPageCache(timeToLive: ttl)
            // Embedded: the in-process gate writes admissions straight to the database; only the
            // closing of ended sales is left to do in the background.
            background.append(PeriodicReconciler(reconciler: FlashSaleReconciler(redis: nil, store: storage, logger: logger)))
        }

        let services = try await SoukServices(
            storage: storage, hasher: BcryptPasswordHasher(), sessions: sessions, pageCache: pageCache,
            flashSaleGate: gate, cookies: configuration.cookies, logger: logger
        )
        return (services, background)
    }

    /// The worker role: persisters of admitted flash-sale orders and the periodic reconciler.
    static func workers(redis: RedisClient, storage: SQLStorage, consumers: Int, logger: Logger) -> [any Service] {
        let name = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        var services: [any Service] = (0..<max(1, consumers)).map {
            FlashSaleOrderPersister(redis: redis, store: storage, consumer: "\(name)-\($0)", logger: logger)
        }
        services.append(PeriodicReconciler(reconciler: FlashSaleReconciler(redis: redis, store: storage, logger: logger)))
        return services
    }
}

/// A loop that runs for the life of the service group and stops with it.
struct BackgroundTask: Service {
    let name: String
    let body: @Sendable () async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
    }
}
