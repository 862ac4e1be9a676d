import Foundation

/// Small checks shared by every validated input; each returns a message, or nil when the value is fine.
enum Validate {
    static func text(_ value: String, min: Int, max: Int) -> String? {
        if value.count < min { return min == 1 ? "must not be empty" : "must be at least \(min) characters" }
        if value.count > max { return "must be at most \(max) characters" }
        // Control characters other than newlines and tabs have no place in names or addresses.
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && !["\n", "\r", "\t"].contains($0) }) {
            return "must not contain control characters"
        }
        return nil
    }

    static func range<T: Comparable>(_ value: T, _ range: ClosedRange<T>) -> String? {
        range.contains(value) ? nil : "must be between \(range.lowerBound) and \(range.upperBound)"
    }
}

extension URL {
    /// An outside service Souk may call (the checkout verifier, a price source): http or https,
    /// with a host. Checked when the configuration is read and again by the client that calls it.
    public var isOutsideService: Bool {
        (scheme == "http" || scheme == "https") && host?.isEmpty == false
    }
}
