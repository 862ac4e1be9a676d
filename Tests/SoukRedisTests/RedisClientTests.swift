import Foundation
import NIOCore
import NIOPosix
import RESP
import SoukCore
import SoukRedis
import SoukTesting
import Testing

/// The client against real redis-server processes: the shared one from scripts/test (keys under a
/// per-test prefix) and private ones that the tests kill and restart.
@Suite("Redis client")
struct RedisClientTests {
    /// "Not now" replies (found by the chaos run: a purchase right after a Redis restart got LOADING
    /// and was answered 500) are temporary, answered 503 with Retry-After; other error replies are not.
    @Test func notNowRepliesAreTemporaryFailures() {
        for message in ["LOADING Redis is loading the dataset in memory", "BUSY Redis is busy running a script", "TRYAGAIN Multiple keys request during rehashing"] {
            #expect((RESPServerError(message: message) as any Error as? any TemporaryFailure)?.isTemporary == true, "\(message)")
        }
        #expect((RESPServerError(message: "ERR unknown command") as any Error as? any TemporaryFailure)?.isTemporary == false)
        #expect(RedisClientError(.connectionClosed, "read: Connection reset by peer").isTemporary, "a reset connection is temporary")
    }

    @Test func stringsKeysHashesSetsAndSortedSets() async throws {
        try await RedisTestServer.withClient { redis in
            let p = RedisTestServer.prefix()
            #expect(try await redis.ping() == "PONG")
            #expect(try await redis.info("server").contains("redis_version"))

            #expect(try await redis.getString(p + "missing") == nil)
            #expect(try await redis.set(p + "s", "v1"))
            #expect(try await redis.set(p + "s", "v2", onlyIfAbsent: true) == false)
            #expect(try await redis.getString(p + "s") == "v1")
            #expect(try await redis.ttl(p + "s") == nil)
            #expect(try await redis.expire(p + "s", after: .seconds(100)))
            #expect((try await redis.ttl(p + "s") ?? 0) > 90_000)
            #expect(try await redis.set(p + "e", "x", expire: .milliseconds(50)))
            try await Task.sleep(for: .milliseconds(120))
            #expect(try await redis.exists(p + "e") == false)
            #expect(try await redis.incr(p + "n") == 1)
            #expect(try await redis.incr(p + "n", by: 41) == 42)
            #expect(try await redis.del([p + "s", p + "n", p + "nothing"]) == 2)

            #expect(try await redis.hset(p + "h", [("a", "1"), ("b", "two")]) == 2)
            #expect(try await redis.hget(p + "h", "b") == "two")
            #expect(try await redis.hincrby(p + "h", "a", by: 9) == 10)
            #expect(try await redis.hgetall(p + "h") == ["a": "10", "b": "two"])

            #expect(try await redis.sadd(p + "set", ["x", "y", "x"]) == 2)
            let hasY = try await redis.sismember(p + "set", "y")
            let hasZ = try await redis.sismember(p + "set", "z")
            #expect(hasY && !hasZ)
            #expect(try await redis.scard(p + "set") == 2)
            #expect(try await redis.smembers(p + "set") == ["x", "y"])
            #expect(try await redis.srem(p + "set", ["x"]) == 1)

            #expect(try await redis.zadd(p + "z", [(3, "c"), (1, "a"), (2, "b")]) == 3)
            #expect(try await redis.zadd(p + "z", [(9, "a")], onlyNew: true) == 0)
            let range = try await redis.zrangeByScore(p + "z", min: 2, max: .infinity)
            #expect(range.map(\.member) == ["b", "c"] && range.map(\.score) == [2, 3])
            #expect(try await redis.zrangeByScore(p + "z", min: -.infinity, max: .infinity, limit: 1).map(\.member) == ["a"])
            #expect(try await redis.zcard(p + "z") == 3)
            #expect(try await redis.zscore(p + "z", "c") == 3)
            #expect(try await redis.zrem(p + "z", ["a"]) == 1)

            await #expect(throws: RESPServerError.self) { try await redis.hget(p + "z", "x") }  // WRONGTYPE
            #expect(try await redis.ping() == "PONG", "a server error leaves the connection usable")
        }
    }

    @Test func manyCallersShareOnePipelinedConnection() async throws {
        try await RedisTestServer.withClient(poolSize: 1) { redis in
            let key = RedisTestServer.prefix() + "counter"
            let results = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<2_000 { group.addTask { try await redis.incr(key) } }
                return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
            }
            #expect(results == Set(1...2_000), "every caller got its own reply")
            let batch = try await redis.pipeline((0..<100).map { RESPCommand("ECHO", ["\($0)"]) })
            #expect(batch.compactMap(\.string) == (0..<100).map(String.init))
        }
    }

    @Test func multiExecIsAtomicAndAbortsWhole() async throws {
        try await RedisTestServer.withClient { redis in
            let p = RedisTestServer.prefix()
            let results = try await redis.transaction([RESPCommand("SET", [p + "a", "1"]), RESPCommand("INCR", [p + "a"]), RESPCommand("GET", [p + "a"])])
            #expect(results.map(\.string) == ["OK", "2", "2"])
            await #expect(throws: RESPServerError.self) {
                try await redis.transaction([RESPCommand("SET", [p + "b", "1"]), RESPCommand("NOT-A-COMMAND")])
            }
            #expect(try await redis.exists(p + "b") == false, "an aborted transaction wrote nothing")
        }
    }

    @Test func scriptsRunBySHAAndSurviveAScriptFlush() async throws {
        let server = try await PrivateRedisServer()
        let redis = try RedisClient(url: server.url, logger: TestLog.logger)
        defer { redis.shutdown() }
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await redis.evalsha(script, keys: ["n"], arguments: ["5"]) == .integer(5))
        try await redis.execute(RESPCommand("SCRIPT", ["FLUSH"]))
        #expect(try await redis.evalsha(script, keys: ["n"], arguments: ["5"]) == .integer(10), "NOSCRIPT reloads the script")
        await #expect(throws: RESPServerError.self) {
            try await redis.evalsha(RedisScript("return redis.call('NOPE')"), keys: [], arguments: [])
        }
    }

    @Test func streamsWithConsumerGroups() async throws {
        try await RedisTestServer.withClient { redis in
            let stream = RedisTestServer.prefix() + "stream"
            #expect(try await redis.xgroupCreate(stream, group: "workers", startingAt: "0"))
            #expect(try await redis.xgroupCreate(stream, group: "workers") == false, "BUSYGROUP means it exists")
            let first = try await redis.xadd(stream, fields: [("order", "1")])
            _ = try await redis.xadd(stream, fields: [("order", "2")])
            #expect(try await redis.xlen(stream) == 2)
            #expect(try await redis.xrange(stream).map { $0["order"] } == ["1", "2"])

            let delivered = try await redis.xreadgroup(group: "workers", consumer: "alice", stream: stream, count: 10)
            #expect(delivered.map { $0["order"] } == ["1", "2"] && delivered.first?.id == first)
            #expect(try await redis.xpendingCount(stream, group: "workers") == 2)
            #expect(try await redis.xack(stream, group: "workers", ids: [first]) == 1)
            #expect(try await redis.xpendingCount(stream, group: "workers") == 1)

            // Alice "dies": Bob claims what she left pending.
            try await Task.sleep(for: .milliseconds(30))
            let claimed = try await redis.xautoclaim(stream, group: "workers", consumer: "bob", minIdle: .milliseconds(20))
            #expect(claimed.entries.map { $0["order"] } == ["2"])
            #expect(try await redis.xreadgroup(group: "workers", consumer: "bob", stream: stream, id: "0").map { $0["order"] } == ["2"])

            // A blocking read waits on its own connection and wakes for a new entry.
            #expect(try await redis.xreadgroup(group: "workers", consumer: "bob", stream: stream, block: .milliseconds(100)).isEmpty)
            async let woken = redis.xreadgroup(group: "workers", consumer: "bob", stream: stream, block: .seconds(5))
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await redis.ping() == "PONG", "the pool is not held up by the blocked read")
            _ = try await redis.xadd(stream, fields: [("order", "3")])
            #expect(try await woken.map { $0["order"] } == ["3"])
        }
    }

    @Test func publishAndSubscribe() async throws {
        try await RedisTestServer.withClient { redis in
            let channel = RedisTestServer.prefix() + "events"
            var events = RedisSubscription.subscribe(redis, channels: [channel]).makeAsyncIterator()
            #expect(await events.next() == .subscribed)
            let receivers = try await redis.publish(channel, "hello")
            #expect(receivers == 1)
            #expect(await events.next() == .message(channel: channel, payload: "hello"))
        }
    }

    @Test func aTimeoutClosesTheConnectionAndThePoolReplacesIt() async throws {
        try await RedisTestServer.withClient(poolSize: 1) { redis in
            let key = RedisTestServer.prefix() + "list"
            let started = ContinuousClock.now
            await #expect(throws: RedisClientError(.timeout)) {
                try await redis.execute(RESPCommand("BLPOP", [key, "30"]), timeout: .milliseconds(100))
            }
            // Far below BLPOP's 30 s, with room for a busy machine.
            #expect(ContinuousClock.now - started < .seconds(10))
            let pong = try await redis.ping()
            #expect(pong == "PONG")
        }
    }

    @Test func cancellingACallerFailsItPromptly() async throws {
        try await RedisTestServer.withClient(poolSize: 1) { redis in
            let key = RedisTestServer.prefix() + "list"
            let task = Task { try await redis.execute(RESPCommand("BLPOP", [key, "30"])) }
            try await Task.sleep(for: .milliseconds(100))
            let started = ContinuousClock.now
            task.cancel()
            await #expect(throws: RedisClientError(.cancelled)) { try await task.value }
            // Far below BLPOP's 30 s, with room for a busy machine.
            #expect(ContinuousClock.now - started < .seconds(10))
            let pong = try await redis.ping()
            #expect(pong == "PONG")
        }
    }

    @Test func theClientRidesOutARedisRestart() async throws {
        let server = try await PrivateRedisServer()
        var configuration = try RedisConfiguration(url: server.url)
        configuration.poolSize = 2
        let redis = RedisClient(configuration: configuration, logger: TestLog.logger)
        defer { redis.shutdown() }
        try await redis.set("k", "before")
        var events = RedisSubscription.subscribe(redis, channels: ["news"]).makeAsyncIterator()
        #expect(await events.next() == .subscribed)

        let inFlight = Task { try await redis.execute(RESPCommand("BLPOP", ["never", "30"]), timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(100))
        server.kill9()
        await #expect(throws: RedisClientError.self, "in-flight commands fail") { try await inFlight.value }
        await #expect(throws: RedisClientError.self, "commands fail while Redis is down") { try await redis.ping() }

        try await server.start()
        var recovered = false
        for _ in 0..<100 where !recovered {
            recovered = (try? await redis.ping()) == "PONG"
            if !recovered { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(recovered, "the client reconnected by itself")
        #expect(try await redis.getString("k") == nil, "a fresh server (no persistence here)")
        #expect(await events.next() == .resubscribed)
        let receivers = try await redis.publish("news", "back")
        #expect(receivers == 1)
        #expect(await events.next() == .message(channel: "news", payload: "back"))
    }

    @Test func credentialsAndDatabaseComeFromTheURL() async throws {
        let server = try await PrivateRedisServer(arguments: ["--requirepass", "s3cret"])
        let redis = try RedisClient(url: "redis://:s3cret@127.0.0.1:\(server.port)/3", logger: TestLog.logger)
        defer { redis.shutdown() }
        try await redis.set("where", "db3")
        #expect(try await redis.execute(RESPCommand("CLIENT", ["INFO"])).string?.contains("db=3") == true)
        let wrong = try RedisClient(url: "redis://:nope@127.0.0.1:\(server.port)/0", logger: TestLog.logger)
        defer { wrong.shutdown() }
        await #expect(throws: RESPServerError.self) { try await wrong.ping() }
    }

    @Test func garbageFromTheServerIsAProtocolErrorNotAHang() async throws {
        // A fake server that answers anything with bytes that are not RESP.
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.pipeline.addHandler(GarbageHandler()) }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let redis = try RedisClient(url: "redis://127.0.0.1:\(server.localAddress!.port!)/0", logger: TestLog.logger)
        defer { redis.shutdown() }
        let error = await #expect(throws: RedisClientError.self) { try await redis.ping() }
        #expect(error?.code != .timeout, "a protocol error at once, not a hang until the deadline: \(String(describing: error))")
    }
}

final class GarbageHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "?not resp at all\r\n")), promise: nil)
    }
}
