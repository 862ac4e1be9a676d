import NIOCore
import RESP
import SoukCore

/// Rate limits shared by every Souk instance: the GCRA of ``RateLimit/decide(tat:now:)`` as one
/// script, timed by the Redis server's clock so that instances with skewed clocks agree. Every
/// rate key has the hash tag `{rate}`, so one script may check several (Redis Cluster: one slot).
public struct RedisRateLimiter: RateLimiter, EventLoopRateLimiter {
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

    /// The same count on `eventLoop`'s own connection, its reply read there (for Souk's admission
    /// lane); nil when that connection is not open yet. The counts asked for in one turn of the loop
    /// go to Redis together, as one script call, each decided as if sent alone and in turn.
    public func hit(_ checks: [RateCheck], on eventLoop: any EventLoop) -> EventLoopFuture<RateDecision>? {
        guard !checks.isEmpty else { return eventLoop.makeSucceededFuture(.allowed) }
        guard redis.connection(on: eventLoop) != nil else { return nil }
        let promise = eventLoop.makePromise(of: RateDecision.self)
        gathered.add(GatheredHit(checks: checks, promise: promise), under: 0, on: eventLoop) { [redis] batches in
            let hits = batches[0] ?? []
            guard let connection = redis.connection(on: eventLoop) else {
                for hit in hits { hit.promise.fail(RedisClientError(.connectionClosed, "the loop's Redis connection closed")) }
                return
            }
            for start in stride(from: 0, to: hits.count, by: Self.maximumBatch) {
                let batch = Array(hits[start..<min(start + Self.maximumBatch, hits.count)])
                let (keys, arguments) = Self.batchScript(batch.map(\.checks))
                func decide(_ reply: Result<[RESPToken], any Error>) throws -> [RateDecision] {
                    guard let reply = try reply.get().first?.value else { throw RedisClientError(.unexpectedReply, "no reply to the rate limit script") }
                    return try Self.decisions(from: reply, count: batch.count)
                }
                func answer(_ decisions: Result<[RateDecision], any Error>) {
                    switch decisions {
                    case .success(let decisions): for (hit, decision) in zip(batch, decisions) { hit.promise.succeed(decision) }
                    case .failure(let error): for hit in batch { hit.promise.fail(error) }
                    }
                }
                connection.submit([Self.hitEachScript.evalsha(keys: keys, arguments: arguments)]).whenComplete { reply in
                    do {
                        answer(.success(try decide(reply)))
                    } catch let error as RESPServerError where error.code == "NOSCRIPT" {
                        // Not in this Redis's script cache (a first use, or a restarted Redis): nothing
                        // ran, so the batch is sent again with the script's source, which caches it.
                        connection.submit([Self.hitEachScript.eval(keys: keys, arguments: arguments)]).whenComplete { reply in
                            answer(Result { try decide(reply) })
                        }
                    } catch {
                        answer(.failure(error))
                    }
                }
            }
        }
        return promise.futureResult
    }

    struct GatheredHit: Sendable {
        let checks: [RateCheck]
        let promise: EventLoopPromise<RateDecision>
    }

    /// Counts asked for on each event loop, waiting for the end of the loop's turn (one group: 0).
    private let gathered = TurnBatches<Int, GatheredHit>()
    /// At most this many counts in one script call, so Redis is never held long by one.
    static let maximumBatch = 64

    /// ``hitScript`` for several requests at once: KEYS every request's keys in turn; ARGV per
    /// request the number of its keys, then interval and window (ms) per key. One wait per request
    /// (0: allowed and recorded), each decided after the ones before it.
    static let hitEachScript = RedisScript("""
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local known, changed, results = {}, {}, {}
        local k, a = 1, 1
        while a <= #ARGV do
          local n = tonumber(ARGV[a])
          a = a + 1
          local wait, arrivals = 0, {}
          for i = 0, n - 1 do
            local key = KEYS[k + i]
            local tat = known[key] or tonumber(redis.call('GET', key) or now)
            if tat < now then tat = now end
            local nextTAT = tat + tonumber(ARGV[a + 2 * i])
            local excess = nextTAT - now - tonumber(ARGV[a + 2 * i + 1])
            if excess > wait then wait = excess end
            arrivals[i + 1] = nextTAT
          end
          if wait == 0 then
            for i = 0, n - 1 do
              known[KEYS[k + i]] = arrivals[i + 1]
              changed[KEYS[k + i]] = true
            end
          end
          results[#results + 1] = wait
          k = k + n
          a = a + 2 * n
        end
        for key in pairs(changed) do redis.call('SET', key, known[key], 'PX', known[key] - now) end
        return results
        """)

    static func batchScript(_ requests: [[RateCheck]]) -> (keys: [String], arguments: [String]) {
        var keys: [String] = [], arguments: [String] = []
        for checks in requests {
            arguments.append(String(checks.count))
            for check in checks {
                keys.append(RedisKeys.rateLimit(check.key))
                arguments += [String(check.limit.intervalMilliseconds), String(check.limit.windowMilliseconds)]
            }
        }
        return (keys, arguments)
    }

    static func decisions(from reply: RESPValue, count: Int) throws -> [RateDecision] {
        if case .error(let error) = reply { throw error }
        guard let waits = reply.elements, waits.count == count else {
            throw RedisClientError(.unexpectedReply, "rate limit script returned \(reply) for \(count) requests")
        }
        return try waits.map(decision(from:))
    }

    static func script(_ checks: [RateCheck], mode: String = "hit") -> (keys: [String], arguments: [String]) {
        (checks.map { RedisKeys.rateLimit($0.key) }, checks.flatMap { [String($0.limit.intervalMilliseconds), String($0.limit.windowMilliseconds)] } + [mode])
    }

    static func decision(from reply: RESPValue) throws -> RateDecision {
        guard let wait = reply.int else { throw RedisClientError(.unexpectedReply, "rate limit script returned \(reply)") }
        return wait > 0 ? .limited(retryAfter: .milliseconds(wait)) : .allowed
    }
}
