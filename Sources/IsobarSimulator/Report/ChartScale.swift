import Foundation

/// A chart axis: maps data values in `lower...upper` to a fraction of the axis length, linearly or on
/// a log scale, and picks ticks with readable labels.
struct ChartScale: Sendable {
    /// A tick: its value, its label, and whether it is a major (labelled) one.
    struct Tick: Sendable, Equatable {
        var value: Double
        var label: String
        var major: Bool
    }

    enum Kind: Sendable {
        case linear
        case log
    }

    var kind: Kind
    var lower: Double
    var upper: Double

    /// A linear scale from 0 (or `minimum` when negative) to a round number at or above `maximum`.
    static func linear(upTo maximum: Double, from minimum: Double = 0) -> ChartScale {
        let top = maximum > minimum ? maximum : minimum + 1
        let step = niceStep(for: top - minimum)
        return ChartScale(kind: .linear, lower: minimum, upper: (top / step).rounded(.up) * step)
    }

    /// A log scale spanning `lower...upper` (both positive), at least a factor of 10 wide.
    static func log(from lower: Double, to upper: Double) -> ChartScale {
        var low = max(lower, 1e-9)
        var high = max(upper, low)
        if high / low < 10 {
            let middle = (low * high).squareRoot()
            low = middle / 10.0.squareRoot()
            high = middle * 10.0.squareRoot()
        }
        return ChartScale(kind: .log, lower: low, upper: high)
    }

    /// Where `value` falls along the axis, from 0 at `lower` to 1 at `upper`, clamped to that range.
    func fraction(_ value: Double) -> Double {
        let position: Double
        switch kind {
        case .linear:
            position = (value - lower) / (upper - lower)
        case .log:
            position = Foundation.log(max(value, lower) / lower) / Foundation.log(upper / lower)
        }
        return position.isFinite ? min(1, max(0, position)) : 0
    }

    /// `count` values spread evenly along the axis (log-spaced on a log scale).
    func samples(_ count: Int) -> [Double] {
        guard count > 1 else { return [lower] }
        return (0..<count).map { i in
            let t = Double(i) / Double(count - 1)
            switch kind {
            case .linear: return lower + t * (upper - lower)
            case .log: return lower * pow(upper / lower, t)
            }
        }
    }

    /// The ticks inside the axis: every step of a 1-2-5 sequence on a linear scale; on a log scale
    /// 1, 2 and 5 times each power of ten, with only the powers of ten labelled when the axis spans
    /// more than three decades.
    func ticks() -> [Tick] {
        switch kind {
        case .linear:
            let step = Self.niceStep(for: upper - lower)
            var ticks: [Tick] = []
            var i = (lower / step).rounded(.up)
            while i * step <= upper + step * 1e-9 {
                ticks.append(Tick(value: i * step, label: Self.label(i * step), major: true))
                i += 1
            }
            return ticks
        case .log:
            let decades = Foundation.log10(upper / lower)
            var ticks: [Tick] = []
            var power = pow(10, Foundation.log10(lower).rounded(.down))
            while power <= upper {
                for multiple in [1.0, 2, 5] {
                    let value = power * multiple
                    guard value >= lower * (1 - 1e-9), value <= upper * (1 + 1e-9) else { continue }
                    let major = multiple == 1 || decades <= 3
                    ticks.append(Tick(value: value, label: Self.label(value), major: major))
                }
                power *= 10
            }
            return ticks
        }
    }

    /// A step of the 1-2-5 sequence that cuts `range` into about five parts.
    static func niceStep(for range: Double) -> Double {
        guard range > 0, range.isFinite else { return 1 }
        let raw = range / 5
        let magnitude = pow(10, Foundation.log10(raw).rounded(.down))
        let normalised = raw / magnitude
        let factor: Double = normalised < 1.5 ? 1 : normalised < 3 ? 2 : normalised < 7 ? 5 : 10
        return factor * magnitude
    }

    /// A short tick label: `0.05`, `20`, `1.5k`, `2M`.
    static func label(_ value: Double) -> String {
        let magnitude = abs(value)
        if magnitude >= 1e6 { return ReportRow.trimmed(ReportFormat.fixed(value / 1e6, decimals: 2)) + "M" }
        if magnitude >= 1e4 { return ReportRow.trimmed(ReportFormat.fixed(value / 1e3, decimals: 2)) + "k" }
        if magnitude >= 1 || magnitude == 0 { return ReportRow.trimmed(ReportFormat.fixed(value, decimals: 2)) }
        let decimals = Int(-Foundation.log10(magnitude).rounded(.down)) + 2
        return ReportRow.trimmed(ReportFormat.fixed(value, decimals: min(decimals, 9)))
    }
}
