import IsobarModel

/// One row of the side-by-side comparison: a metric, its value under each policy, and which policies
/// did best. The stdout table and the Markdown table are both drawn from these rows.
struct ReportRow: Sendable, Equatable {
    /// Which direction of a metric is better; rows with no clear direction get no mark.
    enum Better: Sendable, Equatable {
        case lower
        case higher
        case neither
    }

    var label: String
    /// One value per policy, in the order of `ScenarioResult.policies`; `nil` when the policy has no
    /// sample for the metric (no completed request).
    var values: [Double?]
    var better: Better
    /// Digits shown after the point.
    var decimals: Int
    /// Whether a rule separates this row from the one above it.
    var startsSection = false

    /// The values as printed; a missing value prints as `-`.
    var cells: [String] { values.map { $0.map { ReportFormat.fixed($0, decimals: decimals) } ?? "-" } }

    /// Indices of the policies holding the best printed value. Empty when the row has no direction,
    /// fewer than two policies have a value, or every value prints the same (no mark is then useful).
    var best: Set<Int> {
        guard better != .neither else { return [] }
        let shown = values.enumerated().compactMap { index, value in
            value.map { (index: index, value: Double(ReportFormat.fixed($0, decimals: decimals)) ?? $0) }
        }
        guard shown.count > 1, let first = shown.first?.value,
            shown.contains(where: { $0.value != first })
        else { return [] }
        let target = better == .lower ? shown.map(\.value).min()! : shown.map(\.value).max()!
        return Set(shown.filter { $0.value == target }.map(\.index))
    }
}

extension ReportRow {
    /// The rows of the comparison, in display order.
    static func rows(for result: ScenarioResult) -> [ReportRow] {
        let policies = result.policies
        var rows = latencyRows(policies)
        func row(_ label: String, _ better: Better, decimals: Int, _ value: (PolicyResult) -> Double) -> ReportRow {
            ReportRow(label: label, values: policies.map { value($0) }, better: better, decimals: decimals)
        }
        var goodput = row("goodput (req/s in SLO)", .higher, decimals: 2) { $0.goodput }
        goodput.startsSection = true
        rows.append(goodput)
        rows.append(row("throughput (output tok/s)", .higher, decimals: 1) { $0.throughput })
        var completed = row("completed", .higher, decimals: 0) { Double($0.completed) }
        completed.startsSection = true
        rows.append(completed)
        rows.append(row("rejected", .lower, decimals: 0) { Double($0.rejected) })
        rows.append(row("cut streams", .lower, decimals: 0) { Double($0.failedAfterFirstToken) })
        var meanUtilisation = row("utilisation mean (%)", .neither, decimals: 1) { $0.meanUtilisation * 100 }
        meanUtilisation.startsSection = true
        rows.append(meanUtilisation)
        rows.append(row("utilisation max (%)", .lower, decimals: 1) { $0.maxUtilisation * 100 })
        rows.append(row("preemptions", .lower, decimals: 0) { Double($0.preemptions) })
        rows.append(row("prefix-cache hit rate (%)", .higher, decimals: 1) { $0.prefixHitRate * 100 })
        rows.append(row("cross-region share (%)", .neither, decimals: 1) { $0.crossRegionShare * 100 })
        let costMagnitude = policies.map(\.costPerMTok).max() ?? 0
        var cost = row("cost per 1M tokens ($)", .lower, decimals: costMagnitude < 1 ? 4 : 2) { $0.costPerMTok }
        cost.startsSection = true
        rows.append(cost)
        return rows
    }

    /// p50, p90 and p99 of TTFT, TPOT and E2E in milliseconds; `nil` for a policy without samples.
    private static func latencyRows(_ policies: [PolicyResult]) -> [ReportRow] {
        var rows: [ReportRow] = []
        let latencies: [(String, KeyPath<PolicyResult, LatencyHistogram>)] = [
            ("TTFT", \.ttft), ("TPOT", \.tpot), ("E2E", \.e2e),
        ]
        for (name, path) in latencies {
            for (index, q) in [(50, 0.5), (90, 0.9), (99, 0.99)].enumerated() {
                let values = policies.map { policy -> Double? in
                    let histogram = policy[keyPath: path]
                    return histogram.count > 0 ? histogram.quantile(q.1) * 1000 : nil
                }
                let magnitude = values.compactMap { $0 }.max() ?? 0
                rows.append(
                    ReportRow(
                        label: "\(name) p\(q.0) (ms)",
                        values: values,
                        better: .lower,
                        decimals: ReportFormat.decimals(forMagnitude: magnitude),
                        startsSection: index == 0
                    )
                )
            }
        }
        return rows
    }

    /// The SLOs in words, for headers: `TTFT <= 2000 ms, TPOT <= 100 ms`, or `none`.
    static func sloText(_ slo: SLO, lessOrEqual: String = "<=") -> String {
        let parts: [(String, Double?)] = [
            ("TTFT", slo.ttftSeconds), ("TPOT", slo.tpotSeconds), ("E2E", slo.e2eSeconds),
        ]
        let stated = parts.compactMap { name, seconds in
            seconds.map { "\(name) \(lessOrEqual) \(trimmed(ReportFormat.fixed($0 * 1000, decimals: 3))) ms" }
        }
        return stated.isEmpty ? "none" : stated.joined(separator: ", ")
    }

    /// A fixed-point text without trailing zeros after the point: `2000.000` -> `2000`, `0.250` -> `0.25`.
    static func trimmed(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var out = Substring(text)
        while out.hasSuffix("0") { out = out.dropLast() }
        if out.hasSuffix(".") { out = out.dropLast() }
        return String(out)
    }
}
