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

    /// The date of an ISO 8601 date-time, with or without fractional seconds, whatever its range.
    public static func parseISO8601(_ raw: String) -> Date? {
        guard raw.utf8.count <= 64 else { return nil }
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
