/// A tiny inline SVG line of a price series, drawn on the server so pages need no script for it.
enum Sparkline {
    static let width = 120
    static let height = 28

    /// Nil for fewer than two points. The output holds only numbers we format, so it is safe to
    /// insert unescaped.
    static func svg(_ values: [Int64], label: String) -> String? {
        guard values.count >= 2, let low = values.min(), let high = values.max() else { return nil }
        // In Double: prices come from a feed, and two extreme ones must not overflow a subtraction.
        let span = max(1, Double(high) - Double(low))
        let step = Double(width - 2) / Double(values.count - 1)
        var points = ""
        for (index, value) in values.enumerated() {
            let x = 1 + Double(index) * step
            let y = 1 + Double(height - 2) * (1 - (Double(value) - Double(low)) / span)
            if !points.isEmpty { points += " " }
            points += "\(Int((x * 10).rounded()) / 10).\(Int((x * 10).rounded()) % 10),\(Int((y * 10).rounded()) / 10).\(Int((y * 10).rounded()) % 10)"
        }
        let trend = values.last! >= values.first! ? "#1a7f37" : "#cf222e"
        let escapedLabel = label.map { "<>&\"'".contains($0) ? " " : String($0) }.joined()
        return #"<svg class="sparkline" width="\#(width)" height="\#(height)" viewBox="0 0 \#(width) \#(height)" role="img" aria-label="\#(escapedLabel)"><polyline fill="none" stroke="\#(trend)" stroke-width="1.5" points="\#(points)"/></svg>"#
    }
}
