import Crypto
import Foundation
import NIOCore
import RESP
import SoukCore

/// The commands Souk uses, hand-written with typed replies.
extension RedisClient {
    // MARK: Connection and server

    public func ping() async throws -> String {
        try await execute(RESPCommand("PING")).string ?? ""
    }

    public func info(_ section: String = "server") async throws -> String {
        try await execute(RESPCommand("INFO", [section])).string ?? ""
    }

    // MARK: Strings and keys

    public func get(_ key: String) async throws -> ByteBuffer? {
        let reply = try await execute(RESPCommand("GET", [key]))
        if case .bulkString(let buffer) = reply { return buffer }
        return nil
    }

    public func getString(_ key: String) async throws -> String? {
        try await get(key).map { String(buffer: $0) }
    }

    /// SET with an optional expiry; with `onlyIfAbsent` (NX) returns false when the key existed.
    @discardableResult
    public func set(_ key: String, _ value: ByteBuffer, expire: Duration? = nil, onlyIfAbsent: Bool = false) async throws -> Bool {
        var command = RESPCommand("SET", [key])
        command.append(value)
        if let expire {
            command.append("PX")
            command.append(Self.milliseconds(expire))
        }
        if onlyIfAbsent { command.append("NX") }
        return try await execute(command) != .null
    }

    @discardableResult
    public func set(_ key: String, _ value: String, expire: Duration? = nil, onlyIfAbsent: Bool = false) async throws -> Bool {
        try await set(key, ByteBuffer(string: value), expire: expire, onlyIfAbsent: onlyIfAbsent)
    }

    @discardableResult
    public func incr(_ key: String, by amount: Int64 = 1) async throws -> Int64 {
        try Self.integer(await execute(RESPCommand("INCRBY", [key, String(amount)])))
    }

    @discardableResult
    public func del(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return Int(try Self.integer(await execute(RESPCommand("DEL", keys))))
    }

    public func exists(_ key: String) async throws -> Bool {
        try Self.integer(await execute(RESPCommand("EXISTS", [key]))) == 1
    }

    @discardableResult
    public func expire(_ key: String, after duration: Duration) async throws -> Bool {
        try Self.integer(await execute(RESPCommand("PEXPIRE", [key, String(Self.milliseconds(duration))]))) == 1
    }

    /// Remaining time to live in milliseconds: nil when the key does not exist or never expires.
    public func ttl(_ key: String) async throws -> Int64? {
        let value = try Self.integer(await execute(RESPCommand("PTTL", [key])))
        return value < 0 ? nil : value
    }

    // MARK: Hashes

    @discardableResult
    public func hset(_ key: String, _ fields: [(String, String)]) async throws -> Int {
        Int(try Self.integer(await execute(RESPCommand("HSET", [key] + fields.flatMap { [$0.0, $0.1] }))))
    }

    public func hget(_ key: String, _ field: String) async throws -> String? {
        try await execute(RESPCommand("HGET", [key, field])).string
    }

    public func hlen(_ key: String) async throws -> Int {
        Int(try Self.integer(await execute(RESPCommand("HLEN", [key]))))
    }

    public func hgetall(_ key: String) async throws -> [String: String] {
        try Self.pairs(await execute(RESPCommand("HGETALL", [key])))
    }

    @discardableResult
    public func hincrby(_ key: String, _ field: String, by amount: Int64) async throws -> Int64 {
        try Self.integer(await execute(RESPCommand("HINCRBY", [key, field, String(amount)])))
    }

    // MARK: Sets

    @discardableResult
    public func sadd(_ key: String, _ members: [String]) async throws -> Int {
        Int(try Self.integer(await execute(RESPCommand("SADD", [key] + members))))
    }

    @discardableResult
    public func srem(_ key: String, _ members: [String]) async throws -> Int {
        Int(try Self.integer(await execute(RESPCommand("SREM", [key] + members))))
    }

    public func sismember(_ key: String, _ member: String) async throws -> Bool {
        let reply = try await execute(RESPCommand("SISMEMBER", [key, member]))
        return reply == .boolean(true) || reply.int == 1
    }

    public func scard(_ key: String) async throws -> Int {
        Int(try Self.integer(await execute(RESPCommand("SCARD", [key]))))
    }

    public func smembers(_ key: String) async throws -> Set<String> {
        Set(try Self.strings(await execute(RESPCommand("SMEMBERS", [key]))))
    }

    // MARK: Sorted sets

    @discardableResult
    public func zadd(_ key: String, _ members: [(score: Double, member: String)], onlyNew: Bool = false) async throws -> Int {
        var arguments = [key]
        if onlyNew { arguments.append("NX") }
        arguments += members.flatMap { [Self.score($0.score), $0.member] }
        return Int(try Self.integer(await execute(RESPCommand("ZADD", arguments))))
    }

    /// Members with scores in [min, max], lowest score first.
    public func zrangeByScore(_ key: String, min: Double, max: Double, limit: Int? = nil) async throws -> [(member: String, score: Double)] {
        var arguments = [key, Self.score(min), Self.score(max), "BYSCORE"]
        if let limit { arguments += ["LIMIT", "0", String(limit)] }
        arguments.append("WITHSCORES")
        let reply = try await execute(RESPCommand("ZRANGE", arguments))
        guard let elements = reply.elements else { throw RedisClientError(.unexpectedReply, "ZRANGE") }
        // RESP3 answers [[member, score], …]; RESP2 a flat list.
        if elements.allSatisfy({ $0.elements?.count == 2 }) {
            return try elements.map { pair in
                guard let member = pair.elements?[0].string, let score = pair.elements?[1].double else { throw RedisClientError(.unexpectedReply, "ZRANGE") }
                return (member, score)
            }
        }
        return try stride(from: 0, to: elements.count - 1, by: 2).map { index in
            guard let member = elements[index].string, let score = elements[index + 1].double else { throw RedisClientError(.unexpectedReply, "ZRANGE") }
            return (member, score)
        }
    }

    public func zcard(_ key: String) async throws -> Int {
        Int(try Self.integer(await execute(RESPCommand("ZCARD", [key]))))
    }

    public func zscore(_ key: String, _ member: String) async throws -> Double? {
        try await execute(RESPCommand("ZSCORE", [key, member])).double
    }

    @discardableResult
    public func zrem(_ key: String, _ members: [String]) async throws -> Int {
        Int(try Self.integer(await execute(RESPCommand("ZREM", [key] + members))))
    }

    // MARK: Scripts

    /// Runs a Lua script by its SHA-1, loading it first if the server does not know it (after a
    /// restart or SCRIPT FLUSH).
    public func evalsha(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RESPValue {
        let command = script.evalsha(keys: keys, arguments: arguments)
        do {
            return try await execute(command)
        } catch let error as RESPServerError where error.code == "NOSCRIPT" {
            try await load(script)
            return try await execute(command)
        }
    }

    /// Puts the script into Redis's script cache, for callers that send `EVALSHA` themselves.
    public func load(_ script: RedisScript) async throws {
        let loaded = try await execute(RESPCommand("SCRIPT", ["LOAD", script.source])).string
        guard loaded == script.sha1 else { throw RedisClientError(.unexpectedReply, "SCRIPT LOAD returned \(loaded ?? "nothing")") }
    }

    // MARK: Streams

    /// Appends an entry and returns its id; `maxLength` trims the stream approximately.
    @discardableResult
    public func xadd(_ key: String, id: String = "*", fields: [(String, String)], maxLength: Int? = nil) async throws -> String {
        var arguments = [key]
        if let maxLength { arguments += ["MAXLEN", "~", String(maxLength)] }
        arguments.append(id)
        arguments += fields.flatMap { [$0.0, $0.1] }
        guard let id = try await execute(RESPCommand("XADD", arguments)).string else { throw RedisClientError(.unexpectedReply, "XADD") }
        return id
    }

    /// Creates a consumer group (and the stream, with MKSTREAM); false if the group already exists.
    @discardableResult
    public func xgroupCreate(_ key: String, group: String, startingAt id: String = "$") async throws -> Bool {
        do {
            try await execute(RESPCommand("XGROUP", ["CREATE", key, group, id, "MKSTREAM"]))
            return true
        } catch let error as RESPServerError where error.code == "BUSYGROUP" {
            return false
        }
    }

    /// Reads entries for a consumer of a group: new ones with `">"`, or its own pending ones with `"0"`.
    /// With `block`, it waits up to that long on a dedicated connection, so that the pool is not held up.
    public func xreadgroup(group: String, consumer: String, stream key: String, id: String = ">", count: Int = 100, block: Duration? = nil) async throws -> [RedisStreamEntry] {
        var arguments = ["GROUP", group, consumer, "COUNT", String(count)]
        if let block { arguments += ["BLOCK", String(Self.milliseconds(block))] }
        arguments += ["STREAMS", key, id]
        let command = RESPCommand("XREADGROUP", arguments)
        let reply: RESPValue
        if let block {
            reply = try await withDedicatedConnection { connection in
                try await connection.execute([command], timeout: block + configuration.commandTimeout)[0].value
            }
            if case .error(let error) = reply { throw error }
        } else {
            reply = try await execute(command)
        }
        return try Self.streamReadReply(reply)
    }

    /// Reads like ``xreadgroup(group:consumer:stream:id:count:block:)`` on a connection the caller owns.
    public static func xreadgroup(on connection: RedisConnection, group: String, consumer: String, stream key: String, id: String = ">", count: Int = 100, block: Duration) async throws -> [RedisStreamEntry] {
        let command = RESPCommand("XREADGROUP", ["GROUP", group, consumer, "COUNT", String(count), "BLOCK", String(milliseconds(block)), "STREAMS", key, id])
        let reply = try await connection.execute([command], timeout: block + connection.commandTimeout)[0].value
        if case .error(let error) = reply { throw error }
        return try streamReadReply(reply)
    }

    /// Reads new entries for a consumer from several streams at once on a connection the caller
    /// owns, blocking up to `block` until any has some; returns them by stream key.
    public static func xreadgroup(on connection: RedisConnection, group: String, consumer: String, streams keys: [String], count: Int, block: Duration) async throws -> [String: [RedisStreamEntry]] {
        guard !keys.isEmpty else { return [:] }
        let command = RESPCommand("XREADGROUP", ["GROUP", group, consumer, "COUNT", String(count), "BLOCK", String(milliseconds(block)), "STREAMS"] + keys + keys.map { _ in ">" })
        let reply = try await connection.execute([command], timeout: block + connection.commandTimeout)[0].value
        switch reply {
        case .null: return [:]
        case .error(let error): throw error
        case .map(let pairs):
            var result: [String: [RedisStreamEntry]] = [:]
            for pair in pairs { if let key = pair.key.string { result[key] = try entries(pair.value) } }
            return result
        case .array(let streams):
            var result: [String: [RedisStreamEntry]] = [:]
            for stream in streams {
                guard let parts = stream.elements, parts.count == 2, let key = parts[0].string else { throw RedisClientError(.unexpectedReply, "XREADGROUP") }
                result[key] = try entries(parts[1])
            }
            return result
        default: throw RedisClientError(.unexpectedReply, "XREADGROUP returned \(reply)")
        }
    }

    @discardableResult
    public func xack(_ key: String, group: String, ids: [String]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return Int(try Self.integer(await execute(RESPCommand("XACK", [key, group] + ids))))
    }

    /// Takes over entries pending longer than `minIdle` for another consumer (a dead worker's).
    /// Returns the cursor for the next call ("0-0" when the scan is complete) and the entries.
    public func xautoclaim(_ key: String, group: String, consumer: String, minIdle: Duration, start: String = "0-0", count: Int = 100) async throws -> (next: String, entries: [RedisStreamEntry]) {
        let reply = try await execute(RESPCommand("XAUTOCLAIM", [key, group, consumer, String(Self.milliseconds(minIdle)), start, "COUNT", String(count)]))
        guard let parts = reply.elements, parts.count >= 2, let next = parts[0].string else { throw RedisClientError(.unexpectedReply, "XAUTOCLAIM") }
        return (next, try Self.entries(parts[1]))
    }

    /// How many entries a group has delivered but not yet acknowledged.
    public func xpendingCount(_ key: String, group: String) async throws -> Int {
        let reply = try await execute(RESPCommand("XPENDING", [key, group]))
        guard let count = reply.elements?.first?.int else { throw RedisClientError(.unexpectedReply, "XPENDING") }
        return Int(count)
    }

    /// One consumer group of a stream as `XINFO GROUPS` reports it.
    public struct StreamGroupInfo: Sendable, Equatable {
        public let name: String
        public let pending: Int
        /// Entries not yet delivered to the group (nil when Redis cannot tell, e.g. after a trim).
        public let lag: Int?
    }

    /// The stream's consumer groups; none when the stream does not exist.
    public func xinfoGroups(_ key: String) async throws -> [StreamGroupInfo] {
        let reply: RESPValue
        do {
            reply = try await execute(RESPCommand("XINFO", ["GROUPS", key]))
        } catch let error as RESPServerError where error.message.lowercased().contains("no such key") {
            return []
        }
        guard let groups = reply.elements else { throw RedisClientError(.unexpectedReply, "XINFO GROUPS") }
        return groups.compactMap { group in
            guard let fields = group.elements else { return nil }
            var values: [String: RESPValue] = [:]
            var index = 0
            while index + 1 < fields.count {
                if let name = fields[index].string { values[name] = fields[index + 1] }
                index += 2
            }
            guard let name = values["name"]?.string else { return nil }
            return StreamGroupInfo(name: name, pending: Int(values["pending"]?.int ?? 0), lag: values["lag"]?.int.map { Int($0) })
        }
    }

    public func xlen(_ key: String) async throws -> Int {
        Int(try Self.integer(await execute(RESPCommand("XLEN", [key]))))
    }

    public func xrange(_ key: String, from start: String = "-", to end: String = "+", count: Int? = nil) async throws -> [RedisStreamEntry] {
        var arguments = [key, start, end]
        if let count { arguments += ["COUNT", String(count)] }
        return try Self.entries(await execute(RESPCommand("XRANGE", arguments)))
    }

    // MARK: Pub/sub

    /// Publishes and returns how many subscribers received the message.
    @discardableResult
    public func publish(_ channel: String, _ message: String) async throws -> Int {
        Int(try Self.integer(await execute(RESPCommand("PUBLISH", [channel, message]))))
    }

    // MARK: Reply shapes

    static func integer(_ reply: RESPValue) throws -> Int64 {
        guard let value = reply.int else { throw RedisClientError(.unexpectedReply, "expected an integer, got \(reply)") }
        return value
    }

    static func strings(_ reply: RESPValue) throws -> [String] {
        guard let elements = reply.elements else { throw RedisClientError(.unexpectedReply, "expected a list, got \(reply)") }
        return elements.compactMap(\.string)
    }

    static func pairs(_ reply: RESPValue) throws -> [String: String] {
        let flat = try strings(reply)
        var result: [String: String] = [:]
        for index in stride(from: 0, to: flat.count - 1, by: 2) { result[flat[index]] = flat[index + 1] }
        return result
    }

    static func entries(_ reply: RESPValue) throws -> [RedisStreamEntry] {
        guard let elements = reply.elements else { return [] }
        return try elements.compactMap { element in
            // XAUTOCLAIM can list an entry deleted meanwhile as null fields.
            guard let parts = element.elements, parts.count == 2, let id = parts[0].string else {
                if element.isNull { return nil }
                throw RedisClientError(.unexpectedReply, "stream entry \(element)")
            }
            let flat = parts[1].elements?.compactMap(\.string) ?? []
            let fields = stride(from: 0, to: flat.count - 1, by: 2).map { (flat[$0], flat[$0 + 1]) }
            return RedisStreamEntry(id: id, fields: fields)
        }
    }

    static func streamReadReply(_ reply: RESPValue) throws -> [RedisStreamEntry] {
        switch reply {
        case .null: return []
        case .map(let pairs): return try pairs.flatMap { try entries($0.value) }
        case .array(let streams):
            return try streams.flatMap { stream -> [RedisStreamEntry] in
                guard let parts = stream.elements, parts.count == 2 else { throw RedisClientError(.unexpectedReply, "XREADGROUP") }
                return try entries(parts[1])
            }
        default: throw RedisClientError(.unexpectedReply, "XREADGROUP returned \(reply)")
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.milliseconds
    }

    static func score(_ value: Double) -> String {
        if value == .infinity { return "+inf" }
        if value == -.infinity { return "-inf" }
        return value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// One entry of a Redis stream.
public struct RedisStreamEntry: Sendable, Hashable {
    public let id: String
    public let fields: [(String, String)]

    public init(id: String, fields: [(String, String)]) {
        self.id = id
        self.fields = fields
    }

    public subscript(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.id == rhs.id && lhs.fields.map(\.0) == rhs.fields.map(\.0) && lhs.fields.map(\.1) == rhs.fields.map(\.1)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

/// A Lua script known by its SHA-1, so calls send the digest instead of the source.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Data(source.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// `EVALSHA` of this script, for a pipeline or a connection of its own (a missing script comes
    /// back as a `NOSCRIPT` error there; ``RedisClient/evalsha(_:keys:arguments:)`` loads it).
    public func evalsha(keys: [String], arguments: [String]) -> RESPCommand {
        RESPCommand("EVALSHA", [sha1, String(keys.count)] + keys + arguments)
    }

    /// `EVAL` of this script: its whole source, which also puts it into Redis's script cache.
    public func eval(keys: [String], arguments: [String]) -> RESPCommand {
        RESPCommand("EVAL", [source, String(keys.count)] + keys + arguments)
    }
}
