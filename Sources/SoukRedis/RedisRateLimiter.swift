import RESP
import SoukCore

/// Rate limits shared by every Souk instance: the GCRA of ``RateLimit/decide(tat:now:)`` as one
/// script, timed by the Redis server's clock so that instances with skewed clocks agree. Every
/// rate key has the hash tag `{rate}`, so one script may check several (Redis Cluster: one slot).
public struct RedisRateLimiter: RateLimiter {
    let redis: RedisClient

    public init(redis: RedisClient) {
        self.redis = redis
    }

    /// KEYS the checks' arrival times (ms); ARGV interval and window (ms) per key, then `hit` or
    /// `peek`. Returns 0 when allowed (and, for `hit`, records every key), or the longest wait in
    /// milliseconds (recording nothing).
    static let hitScript = RedisScript("""
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local wait = 0
        local arrivals = {}
        for i = 1, #KEYS do
          local tat = tonumber(redis.call('GET', KEYS[i]) or now)
          if tat < now then tat = now end
          local nextTAT = tat + tonumber(ARGV[2 * i - 1])
          local excess = nextTAT - now - tonumber(ARGV[2 * i])
          if excess > wait then wait = excess end
          arrivals[i] = nextTAT
        end
        if wait > 0 or ARGV[2 * #KEYS + 1] == 'peek' then return wait end
        for i = 1, #KEYS do
          redis.call('SET', KEYS[i], arrivals[i], 'PX', arrivals[i] - now)
        end
        return 0
        """)

    public func hit(_ checks: [RateCheck]) async throws -> RateDecision {
        guard !checks.isEmpty else { return .allowed }
        let (keys, arguments) = Self.script(checks)
        return try Self.decision(from: try await redis.evalsha(Self.hitScript, keys: keys, arguments: arguments))
    }

    public func peek(_ checks: [RateCheck]) async throws -> RateDecision {
        guard !checks.isEmpty else { return .allowed }
        let (keys, arguments) = Self.script(checks, mode: "peek")
        return try Self.decision(from: try await redis.evalsha(Self.hitScript, keys: keys, arguments: arguments))
    }

    static func script(_ checks: [RateCheck], mode: String = "hit") -> (keys: [String], arguments: [String]) {
        (checks.map { RedisKeys.rateLimit($0.key) }, checks.flatMap { [String($0.limit.intervalMilliseconds), String($0.limit.windowMilliseconds)] } + [mode])
    }

    static func decision(from reply: RESPValue) throws -> RateDecision {
        guard let wait = reply.int else { throw RedisClientError(.unexpectedReply, "rate limit script returned \(reply)") }
        return wait > 0 ? .limited(retryAfter: .milliseconds(wait)) : .allowed
    }
}
