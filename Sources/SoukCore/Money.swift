/// An ISO 4217 currency code that Souk knows how to display.
///
/// Prices are stored as integer minor units, so the currency must tell how many minor digits a
/// major unit has; a code we do not know is refused rather than guessed.
public struct Currency: Hashable, Sendable, CustomStringConvertible {
    public let code: String
    public let minorDigits: Int

    /// Codes accepted by Souk with their minor-unit exponent (ISO 4217).
    static let known: [String: Int] = [
        "AED": 2, "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EGP": 2,
        "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "JPY": 0, "KES": 2,
        "KRW": 0, "KWD": 3, "MAD": 2, "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2, "NZD": 2, "PHP": 2,
        "PKR": 2, "PLN": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TND": 3, "TRY": 2, "TWD": 2,
        "UAH": 2, "USD": 2, "VND": 0, "ZAR": 2,
    ]

    public init?(code: String) {
        guard let digits = Self.known[code] else { return nil }
        self.code = code
        self.minorDigits = digits
    }

    public var description: String { code }
}

/// An amount of money in integer minor units (cents, paise, …). Never a floating-point number.
public struct Money: Hashable, Sendable, CustomStringConvertible {
    public let minor: Int64
    public let currency: Currency

    public init(minor: Int64, currency: Currency) {
        self.minor = minor
        self.currency = currency
    }

    /// "12.50 EUR", "1200 JPY": exact, from the integer, without floating point.
    public var formatted: String {
        let digits = currency.minorDigits
        let sign = minor < 0 ? "-" : ""
        let magnitude = minor.magnitude
        guard digits > 0 else { return "\(sign)\(magnitude) \(currency.code)" }
        var divisor: UInt64 = 1
        for _ in 0..<digits { divisor *= 10 }
        let fraction = String(magnitude % divisor)
        let padded = String(repeating: "0", count: digits - fraction.count) + fraction
        return "\(sign)\(magnitude / divisor).\(padded) \(currency.code)"
    }

    public var description: String { formatted }
}
