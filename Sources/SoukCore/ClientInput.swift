import Foundation

/// The range of dates Souk takes from clients: 1970-01-01T00:00:00Z through 9999-12-31T23:59:59Z.
/// Dates are stored as microseconds since 1970 in a 64-bit integer, and every date a shop needs
/// (sale windows, coupon expiry, price history) lies well inside; anything outside is a client's
/// mistake, answered with a field error rather than a conversion that could trap.
public enum ClientDates {
    public static let earliest = Date(timeIntervalSince1970: 0)
    public static let latest = Date(timeIntervalSince1970: 253_402_300_799)
    public static let rangeMessage = "must be between 1970-01-01 and 9999-12-31 (UTC)"

    public static func contains(_ date: Date) -> Bool {
        date >= earliest && date <= latest
    }

    /// An ISO 8601 date-time (`2026-11-21T18:00:00Z`, fractional seconds allowed) in the accepted
    /// range; nil for no value, a field error naming `field` for anything else.
    public static func iso8601(_ raw: String?, field: String) throws(SoukError) -> Date? {
        guard let raw else { return nil }
        guard let date = parseISO8601(raw) else {
            throw .validationFailed([FieldError(field: field, message: "must be an ISO 8601 date-time such as 2026-11-21T18:00:00Z")])
        }
        guard contains(date) else { throw .validationFailed([FieldError(field: field, message: rangeMessage)]) }
        return date
    }

    /// Whether `raw` is `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`: the formatter alone read a
    /// five-digit year such as `12000-…` as another date inside the range (found by the property tests).
    static func hasDateTimeShape(_ raw: String) -> Bool {
        let bytes = Array(raw.utf8)
        func digits(_ range: Range<Int>) -> Bool { range.upperBound <= bytes.count && bytes[range].allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        func byte(_ index: Int, _ character: Character) -> Bool { index < bytes.count && bytes[index] == character.asciiValue! }
        guard digits(0..<4), byte(4, "-"), digits(5..<7), byte(7, "-"), digits(8..<10), byte(10, "T"),
              digits(11..<13), byte(13, ":"), digits(14..<16), byte(16, ":"), digits(17..<19) else { return false }
        var index = 19
        if byte(index, ".") {
            let start = index + 1
            index = start
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            guard (1...9).contains(index - start) else { return false }
        }
        if byte(index, "Z") { return index + 1 == bytes.count }
        return (byte(index, "+") || byte(index, "-")) && digits((index + 1)..<(index + 3)) && byte(index + 3, ":")
            && digits((index + 4)..<(index + 6)) && index + 6 == bytes.count
    }

    /// The date of an ISO 8601 date-time, with or without fractional seconds, in the shape above.
    public static func parseISO8601(_ raw: String) -> Date? {
        guard raw.utf8.count <= 64, hasDateTimeShape(raw) else { return nil }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: raw) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: raw)
    }

    /// Seconds since 1970 as a date, or nil when the number is not a date in the accepted range.
    public static func date(secondsSince1970 seconds: Double) -> Date? {
        guard seconds.isFinite else { return nil }
        let date = Date(timeIntervalSince1970: seconds)
        return contains(date) ? date : nil
    }
}

extension Int64 {
    /// The Int64 nearest to `value` (NaN as zero): a conversion that never traps, for values that
    /// were range-checked where they entered but must not kill the process if one slipped past.
    public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9_223_372_036_854_775_807.0 {
            self = .max
        } else if value <= -9_223_372_036_854_775_808.0 {
            self = .min
        } else {
            self = Int64(value)
        }
    }
}
