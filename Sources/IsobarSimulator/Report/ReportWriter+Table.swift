extension ReportWriter {
    /// The side-by-side comparison for a terminal: a header with the scenario, seed, request count,
    /// wall time and SLO, then one column per policy and one row per metric. The best value of each
    /// row carries a `*` (ties all carry it; rows without a better direction, and rows where every
    /// policy prints the same value, carry none).
    ///
    /// Latencies are in milliseconds at about three significant figures; columns are right-aligned.
    /// - Parameters:
    ///   - color: highlight the best values and the header with ANSI escapes (for a TTY).
    ///   - includeWallTime: show the wall time in the header (leave out for byte-stable output).
    public static func table(_ result: ScenarioResult, color: Bool = false, includeWallTime: Bool = true) -> String {
        let rows = ReportRow.rows(for: result)
        let names = result.policies.map(\.policy.rawValue)
        let labelWidth = max("metric".count, rows.map(\.label.count).max() ?? 0)
        let columnWidths = names.indices.map { column in
            max(names[column].count, rows.map { $0.cells[column].count + 1 }.max() ?? 0)
        }
        let style = TableStyle(color: color)

        var lines = [style.bold(headerLine(result, includeWallTime: includeWallTime))]
        lines.append("SLO: \(ReportRow.sloText(result.slo)) (goodput counts completed requests meeting every SLO)")
        lines.append("")
        var header = ReportFormat.padded("metric", to: labelWidth, right: false)
        for (column, name) in names.enumerated() {
            header += "  " + ReportFormat.padded(name, to: columnWidths[column], right: true)
        }
        lines.append(style.bold(header))
        let rule =
            String(repeating: "-", count: labelWidth)
            + columnWidths.map { "  " + String(repeating: "-", count: $0) }.joined()
        for row in rows {
            if row.startsSection { lines.append(rule) }
            let best = row.best
            var line = ReportFormat.padded(row.label, to: labelWidth, right: false)
            for (column, cell) in row.cells.enumerated() {
                let marked = cell + (best.contains(column) ? "*" : " ")
                let padded = ReportFormat.padded(marked, to: columnWidths[column], right: true)
                line += "  " + (best.contains(column) ? style.best(padded) : padded)
            }
            lines.append(trimmedRight(line))
        }
        lines.append(rule)
        lines.append("* best in row")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `Scenario skewed-lengths  seed 42  100000 requests per policy  wall 1.93 s`.
    static func headerLine(_ result: ScenarioResult, includeWallTime: Bool) -> String {
        var parts = [
            "Scenario \(result.scenario)", "seed \(result.seed)", "\(result.requests) requests per policy",
        ]
        if includeWallTime { parts.append("wall \(ReportFormat.fixed(result.wallSeconds, decimals: 2)) s") }
        return parts.joined(separator: "  ")
    }

    private static func trimmedRight(_ line: String) -> String {
        var out = Substring(line)
        while out.hasSuffix(" ") { out = out.dropLast() }
        return String(out)
    }
}

/// ANSI styling of the table, or none.
private struct TableStyle {
    var color: Bool

    func bold(_ text: String) -> String { color ? "\u{1B}[1m" + text + "\u{1B}[0m" : text }
    func best(_ text: String) -> String { color ? "\u{1B}[1;32m" + text + "\u{1B}[0m" : text }
}
