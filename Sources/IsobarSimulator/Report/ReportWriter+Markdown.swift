extension ReportWriter {
    /// summary.md: the scenario and SLO, a verdict naming the best policy on p99 TTFT and on goodput,
    /// the comparison as a Markdown table (best values in bold), and links to the SVG charts, which
    /// `write(_:to:includeWallTime:)` puts next to it.
    public static func markdown(_ result: ScenarioResult, includeWallTime: Bool = true) -> String {
        var lines = ["# Simulation: \(escaped(result.scenario))", ""]
        var facts = ["Seed \(result.seed)", "\(result.requests) requests per policy"]
        if includeWallTime { facts.append("wall time \(ReportFormat.fixed(result.wallSeconds, decimals: 2)) s") }
        lines.append(facts.joined(separator: " · ") + ".")
        lines.append("")
        lines.append(
            "**SLO:** \(ReportRow.sloText(result.slo, lessOrEqual: "≤")). "
                + "Goodput counts completed requests that met every SLO, per second of the measured window."
        )
        lines += ["", "## Verdict", "", verdict(result), "", "## Results", ""]
        lines += markdownTable(result)
        lines += [
            "",
            "Bold marks the best value of a row. Mean utilisation and cross-region share have no better "
                + "direction and are not marked.",
            "", "## Charts", "", "### Time to first token", "",
            "![TTFT cumulative distribution per policy](\(ChartNames.ttftCDF))", "",
        ]
        let names = ChartNames(result)
        lines += ["### Waiting requests per backend", ""]
        for (index, policy) in result.policies.enumerated() {
            lines += ["![Waiting requests per backend: \(policy.policy.rawValue)](\(names.queue[index]))", ""]
        }
        lines += ["### Output throughput", ""]
        for (index, policy) in result.policies.enumerated() {
            lines += ["![Output throughput: \(policy.policy.rawValue)](\(names.throughput[index]))", ""]
        }
        return lines.joined(separator: "\n")
    }

    private static func markdownTable(_ result: ScenarioResult) -> [String] {
        let names = result.policies.map { escaped($0.policy.rawValue) }
        var lines = ["| metric | " + names.joined(separator: " | ") + " |"]
        lines.append("|:---|" + String(repeating: "---:|", count: names.count))
        for row in ReportRow.rows(for: result) {
            let best = row.best
            let cells = row.cells.enumerated().map { best.contains($0.offset) ? "**\($0.element)**" : $0.element }
            lines.append("| \(row.label) | " + cells.joined(separator: " | ") + " |")
        }
        return lines
    }

    /// One paragraph: which policy has the lowest p99 TTFT and which the highest goodput, against the
    /// runner-up.
    static func verdict(_ result: ScenarioResult) -> String {
        let measured = result.policies.filter { $0.ttft.count > 0 }
        guard !measured.isEmpty else { return "No policy completed a request, so there is nothing to compare." }
        func ms(_ p: PolicyResult) -> String {
            let value = p.ttft.quantile(0.99) * 1000
            return ReportFormat.fixed(value, decimals: ReportFormat.decimals(forMagnitude: value)) + " ms"
        }
        func rps(_ p: PolicyResult) -> String { ReportFormat.fixed(p.goodput, decimals: 2) + " req/s" }
        guard result.policies.count > 1 else {
            let only = result.policies[0]
            return "Only **\(only.policy.rawValue)** ran: p99 TTFT \(ms(only)), goodput \(rps(only)) within the SLO."
        }
        let byTTFT = measured.sorted { $0.ttft.quantile(0.99) < $1.ttft.quantile(0.99) }
        let byGoodput = result.policies.sorted { $0.goodput > $1.goodput }
        var sentences: [String] = []
        let fastest = byTTFT[0]
        if byTTFT.count > 1 {
            let second = byTTFT[1]
            let ratio = second.ttft.quantile(0.99) / max(fastest.ttft.quantile(0.99), 1e-12)
            sentences.append(
                "**\(fastest.policy.rawValue)** has the lowest p99 TTFT, \(ms(fastest)), against \(ms(second)) for "
                    + "\(second.policy.rawValue) (\(ReportFormat.fixed(ratio, decimals: 2))x)."
            )
        } else {
            sentences.append(
                "**\(fastest.policy.rawValue)** is the only policy that completed requests (p99 TTFT \(ms(fastest)))."
            )
        }
        let leader = byGoodput[0]
        let runnerUp = byGoodput[1]
        if ReportFormat.fixed(leader.goodput, decimals: 2) == ReportFormat.fixed(runnerUp.goodput, decimals: 2) {
            sentences.append("Goodput is level at the top: \(rps(leader)) within the SLO.")
        } else {
            let same = leader.policy == fastest.policy && byTTFT.count > 1
            sentences.append(
                "\(same ? "It also" : "**\(leader.policy.rawValue)**") delivers the most goodput, \(rps(leader)) within "
                    + "the SLO, against \(rps(runnerUp)) for \(runnerUp.policy.rawValue)."
            )
        }
        return sentences.joined(separator: " ")
    }

    /// `text` with the characters Markdown would interpret (and `|`, which splits table cells) escaped.
    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            if "\\`*_[]<>|#".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
