import Logging
import ServiceLifecycle
import SoukCore
import SoukRedis
import SoukServer
import SoukSQL

/// The composition root: which backend serves each port, given the configuration.
enum Wiring {
    /// Services for the HTTP roles, and the long-running parts (Redis client, invalidation
    /// listener) that must run and shut down with the server.
    static func services(_ configuration: SoukConfiguration, database: any SQLDatabase, logger: Logger) async throws -> (SoukServices, [any Service]) {
        let storage = SQLStorage(database: database)
        var background: [any Service] = []
        var sessions: (any SessionStore)?
        var pageCache: (any PageCache)?
        let ttl = configuration.pageCacheTTL

        if let url = configuration.redisURL {
            let redis = try RedisClient(url: url, logger: logger)
            background.append(redis)
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
        }

        let services = try await SoukServices(
            storage: storage, hasher: BcryptPasswordHasher(), sessions: sessions, pageCache: pageCache,
            cookies: configuration.cookies, logger: logger
        )
        return (services, background)
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
