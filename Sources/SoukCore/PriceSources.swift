import Foundation

/// The built-in market: every item's price at any time is a pure function of the seed, the item
/// and the interval, so any past interval can be answered again (backfill) and tests can compute
/// the exact series a run must have produced.
public struct SimulatedMarket: PriceSource {
    public let seed: UInt64
    public let items: Int
    public var name: String { "simulated" }
    public var answersForThePast: Bool { true }

    public init(seed: UInt64 = 1, items: Int) {
        self.seed = seed
        self.items = max(1, items)
    }

    /// `SIM-0001` … : zero-padded to four digits, or more when there are more items.
    public static func itemName(_ index: Int, of count: Int) -> String {
        let digits = max(4, String(count).count)
        let number = String(index)
        return "SIM-" + String(repeating: "0", count: max(0, digits - number.count)) + number
    }

    public var itemNames: [String] { (1...items).map { Self.itemName($0, of: items) } }

    /// The price of item number `index` (1-based) in the interval starting at `at`. Integer
    /// arithmetic only, so the value is the same on every machine.
    public func price(index: Int, at: Int64) -> Int64 {
        let itemHash = Self.mix(seed ^ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        let base = Int64(1_000 + itemHash % 99_000)
        let period = Int64(60 + (itemHash >> 20) % 180)
        let phase = (at / 60_000 + Int64((itemHash >> 40) % 1_000)) % period  // minutes: a wave over hours
        let triangle = abs(phase * 2 - period)  // 0…period, a slow wave
        let wave = base * triangle / (period * 8)
        let noiseSpan = UInt64(base / 50 + 1)
        let noise = Int64(Self.mix(itemHash ^ UInt64(bitPattern: at)) % noiseSpan) - Int64(noiseSpan / 2)
        return max(1, base + wave + noise)
    }

    public func fetch(interval start: Int64, length: Int64) async throws -> PriceFetch {
        PriceFetch(ticks: (1...items).map { PriceTick(item: Self.itemName($0, of: items), at: start, priceMinor: price(index: $0, at: start)) })
    }

    /// SplitMix64's finaliser: a cheap, well-spread hash.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Validation of price rows from outside (HTTP answers, CSV files): every row is either a good
/// tick or a rejection with its reason; nothing half-valid gets through.
public enum PriceRows {
    /// Parses `item,price,timestamp` lines (a header line is allowed). `price` is a decimal in
    /// major units with at most two decimals; `timestamp` is ISO 8601 or seconds since 1970.
    /// Rows stamped after `notAfter` (ms) are rejected: a source cannot know the future.
    public static func parseCSV(_ text: String, notAfter: Int64) -> PriceFetch {
        var fetch = PriceFetch(ticks: [])
        for (number, rawLine) in text.split(whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if number == 0, fields.first?.lowercased() == "item" { continue }
            guard fields.count == 3 else {
                fetch.rejected.append("line \(number + 1): expected item,price,timestamp")
                continue
            }
            switch tick(item: fields[0], price: fields[1], timestamp: fields[2], notAfter: notAfter) {
            case .success(let tick): fetch.ticks.append(tick)
            case .failure(let reason): fetch.rejected.append("line \(number + 1): \(reason.message)")
            }
        }
        return fetch
    }

    /// Parses a JSON array of `{"item", "price", "timestamp"}` objects (or `{"ticks": [...]}`);
    /// prices and timestamps may be numbers or strings. A body that is not such JSON is one rejection.
    public static func parseJSON(_ data: Data, notAfter: Int64) -> PriceFetch {
        let decoder = JSONDecoder()
        guard let rows = (try? decoder.decode([JSONRow].self, from: data)) ?? (try? decoder.decode(JSONRows.self, from: data))?.ticks else {
            return PriceFetch(ticks: [], rejected: ["body: expected a JSON array of {item, price, timestamp}"])
        }
        var fetch = PriceFetch(ticks: [])
        for (index, row) in rows.enumerated() {
            guard let item = row.item, let price = row.price?.text, let timestamp = row.timestamp?.text else {
                fetch.rejected.append("row \(index + 1): expected {item, price, timestamp}")
                continue
            }
            switch tick(item: item, price: price, timestamp: timestamp, notAfter: notAfter) {
            case .success(let tick): fetch.ticks.append(tick)
            case .failure(let reason): fetch.rejected.append("row \(index + 1): \(reason.message)")
            }
        }
        return fetch
    }

    struct JSONRows: Decodable { let ticks: [JSONRow] }

    /// A row whose fields may each be missing or of the wrong type: that rejects the row, not the body.
    struct JSONRow: Decodable {
        let item: String?
        let price: NumberOrString?
        let timestamp: NumberOrString?

        init(from decoder: any Decoder) throws {
            let container = try? decoder.container(keyedBy: CodingKeys.self)
            item = try? container?.decodeIfPresent(String.self, forKey: .item)
            price = try? container?.decodeIfPresent(NumberOrString.self, forKey: .price)
            timestamp = try? container?.decodeIfPresent(NumberOrString.self, forKey: .timestamp)
        }

        enum CodingKeys: String, CodingKey { case item, price, timestamp }
    }

    /// A JSON number kept as its exact decimal text, or a string.
    struct NumberOrString: Decodable {
        let text: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let string = try? container.decode(String.self) {
                text = string
            } else {
                text = "\(try container.decode(Decimal.self))"
            }
        }
    }

    struct Rejection: Error { let message: String }

    static func tick(item: String, price: String, timestamp: String, notAfter: Int64) -> Result<PriceTick, Rejection> {
        guard PriceItem.isValid(item) else { return .failure(Rejection(message: "item must be 1–64 letters, digits or . _ - :")) }
        guard let minor = minorUnits(price), ProductLimits.price.contains(minor), minor > 0 else {
            return .failure(Rejection(message: "price must be a positive decimal with at most two decimals"))
        }
        guard let at = milliseconds(timestamp), at > 0 else { return .failure(Rejection(message: "timestamp must be ISO 8601 or seconds since 1970")) }
        guard at <= notAfter else { return .failure(Rejection(message: "timestamp is in the future")) }
        return .success(PriceTick(item: item, at: at, priceMinor: minor))
    }

    /// "12", "12.3", "12.34" → 1200, 1230, 1234; anything else nil.
    static func minorUnits(_ text: String) -> Int64? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts[0].count <= 12, parts[0].allSatisfy(\.isASCIIDigit),
              let whole = Int64(parts[0])
        else { return nil }
        var fraction: Int64 = 0
        if parts.count == 2 {
            let digits = parts[1]
            guard (1...2).contains(digits.count), digits.allSatisfy(\.isASCIIDigit), let value = Int64(digits) else { return nil }
            fraction = digits.count == 1 ? value * 10 : value
        }
        return whole * 100 + fraction
    }

    /// A query's time: ISO 8601 or seconds since 1970, in ms.
    public static func timestamp(_ text: String) -> Int64? { milliseconds(text) }

    static func milliseconds(_ text: String) -> Int64? {
        // Seconds up to the end of year 9999, so that every time can be written back as ISO 8601.
        if text.allSatisfy(\.isASCIIDigit), !text.isEmpty, text.count <= 12, let seconds = Int64(text), seconds <= 253_402_300_799 { return seconds * 1_000 }
        guard let date = ClientDates.parseISO8601(text), ClientDates.contains(date) else { return nil }
        return Int64((date.timeIntervalSince1970 * 1_000).rounded())
    }

}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// A CSV file of ticks replayed by interval: it answers for any interval its rows cover.
public struct FilePriceSource: PriceSource {
    public let path: String
    public var name: String { "file:\(path)" }
    public var answersForThePast: Bool { true }

    public init(path: String) {
        self.path = path
    }

    public func fetch(interval start: Int64, length: Int64) async throws -> PriceFetch {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let all = PriceRows.parseCSV(text, notAfter: .max)
        // Rejected rows have no trustworthy time: they are reported once, with the file's first interval.
        let first = all.ticks.map(\.at).min().map { $0 - $0 % max(1, length) }
        return PriceFetch(ticks: all.ticks.filter { $0.at >= start && $0.at < start + length }, rejected: first == start ? all.rejected : [])
    }
}
