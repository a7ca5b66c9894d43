/// Locale-free text formatting shared by the report outputs, so that the same numbers always print the
/// same bytes whatever machine writes them.
enum ReportFormat {
    /// `value` with exactly `decimals` digits after the point (half away from zero), no grouping.
    /// Non-finite values print as `-`.
    static func fixed(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "-" }
        let places = max(0, min(decimals, 9))
        var scale: Int64 = 1
        for _ in 0..<places { scale *= 10 }
        let scaled = (abs(value) * Double(scale)).rounded()
        guard scaled < 9.0e18 else { return String(value) }
        let units = Int64(scaled)
        let sign = value < 0 && units != 0 ? "-" : ""
        let whole = String(units / scale)
        guard places > 0 else { return sign + whole }
        let fraction = String(units % scale)
        return sign + whole + "." + String(repeating: "0", count: places - fraction.count) + fraction
    }

    /// `value` rounded to `decimals` places, for JSON: the shortest text of the rounded double is then
    /// the same on every run.
    static func rounded(_ value: Double, decimals: Int) -> Double {
        guard value.isFinite else { return 0 }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let result = (value * scale).rounded() / scale
        return result == 0 ? 0 : result
    }

    /// Digits after the point that keep about three significant figures for values up to `magnitude`.
    static func decimals(forMagnitude magnitude: Double) -> Int {
        let m = abs(magnitude)
        if m < 10 { return 2 }
        if m < 1000 { return 1 }
        return 0
    }

    /// `text` cut to `limit` characters with an ellipsis, for legends.
    static func truncated(_ text: String, to limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(max(1, limit - 1))) + "…"
    }

    /// `text` left- or right-aligned in `width` columns.
    static func padded(_ text: String, to width: Int, right: Bool) -> String {
        let gap = String(repeating: " ", count: max(0, width - text.count))
        return right ? gap + text : text + gap
    }
}
