import Foundation

/// One observed price of a feed item. Times are whole milliseconds since 1970 so that a tick's
/// identity is exact on every backend.
public struct PriceTick: Sendable, Hashable {
    public let item: String
    public let at: Int64
    public let priceMinor: Int64

    public init(item: String, at: Int64, priceMinor: Int64) {
        self.item = item
        self.at = at
        self.priceMinor = priceMinor
    }

    public var date: Date { Date(timeIntervalSince1970: Double(at) / 1_000) }

    /// The tick's deterministic id: the same observation always has the same id, so publishing or
    /// applying it again changes nothing.
    public func id(source: String) -> String { "\(source)|\(item)|\(at)" }
}

/// The ticks one source answered for one interval: the unit that is published atomically.
public struct PriceBatch: Sendable, Equatable {
    public let source: String
    /// Start of the interval, in ms since 1970.
    public let interval: Int64
    public let ticks: [PriceTick]
    /// Rows the source sent that failed validation; counted, never published.
    public let rejected: Int

    public init(source: String, interval: Int64, ticks: [PriceTick], rejected: Int = 0) {
        self.source = source
        self.interval = interval
        self.ticks = ticks
        self.rejected = rejected
    }
}

/// What a source answered for an interval.
public struct PriceFetch: Sendable, Equatable {
    public var ticks: [PriceTick]
    public var rejected: [String]

    public init(ticks: [PriceTick], rejected: [String] = []) {
        self.ticks = ticks
        self.rejected = rejected
    }
}

/// Where prices come from.
public protocol PriceSource: Sendable {
    /// A stable name; part of every tick's id and the key of the producer's checkpoint.
    var name: String { get }
    /// Whether the source can still answer for an interval that has passed, so that a producer
    /// back from downtime can fill the gap.
    var answersForThePast: Bool { get }
    /// The ticks of the interval `[start, start + length)` (ms). Throws when the source is
    /// unavailable; bad rows are returned as rejected, not thrown.
    func fetch(interval start: Int64, length: Int64) async throws -> PriceFetch
}

/// The durable log between the producer and the consumers (a Redis stream, or a SQL table in
/// embedded mode), together with the producer's checkpoint.
public protocol PriceFeedLog: Sendable {
    /// The start of the newest interval published from `source`, or nil before the first.
    func checkpoint(source: String) async throws -> Int64?
    /// Appends the batch and moves the source's checkpoint to its interval in one atomic step. A
    /// batch at or before the checkpoint is refused (returns false), so a producer that crashed
    /// after publishing but before learning so cannot publish an interval twice.
    func publish(_ batch: PriceBatch) async throws -> Bool
    /// Entries not yet acknowledged, for one consumer of the shared group: its own or a dead
    /// consumer's first, then new ones, waiting up to `wait` for any.
    func read(consumer: String, count: Int, wait: Duration) async throws -> [PriceLogEntry]
    /// Marks entries applied; they are not delivered again.
    func acknowledge(_ entries: [PriceLogEntry]) async throws
}

/// One entry of the price log: part of (or all of) one published batch.
public struct PriceLogEntry: Sendable, Equatable {
    public let id: String
    public let source: String
    public let interval: Int64
    public let ticks: [PriceTick]

    public init(id: String, source: String, interval: Int64, ticks: [PriceTick]) {
        self.id = id
        self.source = source
        self.interval = interval
        self.ticks = ticks
    }
}

/// The per-item price lists, oldest first, one price per item and time.
public protocol PriceHistory: Sendable {
    /// Stores ticks; a tick already stored for the same item and time is replaced, never doubled.
    func apply(_ ticks: [PriceTick]) async throws
    /// Ticks of `item` with `from <= at <= to`, oldest first, at most `limit`.
    func ticks(item: String, from: Int64, to: Int64, limit: Int) async throws -> [PriceTick]
    func latest(item: String) async throws -> PriceTick?
}

/// Products that follow a feed item's price.
public protocol PriceFollowers: Sendable {
    /// Sets the price of every product following one of these items to the item's tick, when the
    /// tick is newer than the one the product last took; returns the vendors whose products changed.
    func follow(_ latest: [PriceTick]) async throws -> Set<Int64>
    /// Items that at least one product follows (the consumer asks now and then, to skip the rest).
    func followedItems() async throws -> Set<String>
}

/// Compact text for a list of ticks (`item,at,price` lines): the payload of a log entry.
public enum PriceTickCoding {
    public static func encode(_ ticks: some Sequence<PriceTick>) -> String {
        var text = ""
        for tick in ticks {
            if !text.isEmpty { text += "\n" }
            text += "\(tick.item),\(tick.at),\(tick.priceMinor)"
        }
        return text
    }

    /// Nil when any line is malformed: a log entry is taken whole or not at all.
    public static func decode(_ text: String) -> [PriceTick]? {
        guard !text.isEmpty else { return [] }
        var ticks: [PriceTick] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let parts = line.split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count == 3, PriceItem.isValid(parts[0]), let at = Int64(parts[1]), let price = Int64(parts[2]) else { return nil }
            ticks.append(PriceTick(item: String(parts[0]), at: at, priceMinor: price))
        }
        return ticks
    }
}

/// Rules for feed item names: short, printable, no separators.
public enum PriceItem {
    public static let maxLength = 64

    public static func isValid(_ name: some StringProtocol) -> Bool {
        !name.isEmpty && name.utf8.count <= maxLength && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x3A
        }
    }
}

/// Interval arithmetic: intervals start at multiples of their length since 1970, so every
/// process agrees on them without talking to each other.
public struct FeedSchedule: Sendable, Equatable {
    /// Interval length in ms.
    public let length: Int64

    public init(length: Duration) {
        self.length = max(1, length.milliseconds)
    }

    /// The start of the interval containing `ms`.
    public func interval(containing ms: Int64) -> Int64 {
        let remainder = ms % length
        return ms - (remainder < 0 ? remainder + length : remainder)
    }

    public static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)) }
}
