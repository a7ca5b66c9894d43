import IsobarModel

extension ReportWriter {
    /// Colours of the policies, fixed per policy so a policy looks the same in every chart.
    static let policyColors = ["#1f6fb4", "#e07a1f", "#2e9d4f", "#c43c8f", "#7b55a8", "#8c6239", "#1fa6b8", "#5f6670"]
    /// Colours of individually drawn backends.
    static let backendColors = ["#e4572e", "#2a9d8f", "#9b5de5", "#d4a017", "#f15bb5", "#1f6fb4", "#6a994e", "#5f6670"]
    /// Up to this many backends get a line each; beyond it a panel shows a band, the mean and the top few.
    static let individualBackendLimit = 8
    /// Backends drawn on their own next to the band.
    static let topBackendCount = 5
    /// More samples than this are averaged in groups (the plot is 640 pixels wide).
    static let maximumPoints = 640

    static func color(of policy: PolicyKind) -> String {
        let index = PolicyKind.allCases.firstIndex(of: policy) ?? 0
        return policyColors[index % policyColors.count]
    }

    // MARK: - TTFT CDF

    /// ttft-cdf.svg: the share of completed requests with TTFT at or below x, one line per policy, on
    /// a log time axis, with p50/p90/p99 reference lines and the TTFT SLO when one is set.
    static func ttftCDFChart(_ result: ScenarioResult) -> String {
        let measured = result.policies.filter { $0.ttft.count > 0 }
        var low = measured.map { $0.ttft.quantile(0) * 1000 }.min() ?? 1
        var high = measured.map { $0.ttft.maximum * 1000 }.max() ?? 1000
        let sloMs = result.slo.ttftSeconds.map { $0 * 1000 }
        if let sloMs, sloMs > 0 {
            low = min(low, sloMs)
            high = max(high, sloMs)
        }
        let x = ChartScale.log(from: low / 1.25, to: high * 1.25)
        let grid = x.samples(200)
        var panel = LineChart.Panel(
            title: nil,
            xLabel: "time to first token (ms, log scale)",
            yLabel: "requests with TTFT at or below x (%)",
            x: x,
            y: .linear(upTo: 100),
            height: 380
        )
        for policy in result.policies {
            let name = policy.policy.rawValue
            guard policy.ttft.count > 0 else {
                panel.series.append(.init(name: "\(name) (no data)", color: color(of: policy.policy), points: []))
                continue
            }
            let shares = policy.ttft.cdf(at: grid.map { $0 / 1000 })
            let p99 = ReportFormat.fixed(policy.ttft.quantile(0.99) * 1000, decimals: 0)
            panel.series.append(
                .init(
                    name: "\(name) (p99 \(p99) ms)",
                    color: color(of: policy.policy),
                    points: zip(grid, shares).map { (x: $0, y: $1 * 100) },
                    width: 2
                )
            )
        }
        panel.guides = [(50.0, "p50"), (90, "p90"), (99, "p99")].map { .init(axis: .y, value: $0, label: $1) }
        if let sloMs, sloMs > 0 {
            panel.guides.append(
                .init(
                    axis: .x,
                    value: sloMs,
                    label: "SLO \(ReportRow.trimmed(ReportFormat.fixed(sloMs, decimals: 1))) ms",
                    color: "#c0392b"
                )
            )
        }
        if measured.isEmpty { panel.emptyNote = "no completed requests" }
        let chart = LineChart(
            title: "Time to first token: cumulative distribution",
            subtitle: "Scenario \(result.scenario), seed \(result.seed), \(result.requests) requests per policy",
            panels: [panel]
        )
        return chart.svg
    }

    // MARK: - Per-backend time series

    /// queue-<policy>.svg: requests waiting in each backend's queue over simulated time.
    static func queueChart(_ policy: PolicyResult, of result: ScenarioResult) -> String {
        let series = policy.timeSeries
        let values = series.waiting.map { $0.map(Double.init) }
        let panel = backendPanel(
            values,
            series,
            yLabel: "waiting requests",
            title: nil,
            height: 380,
            highlight: .highest
        )
        return LineChart(
            title: "Waiting requests per backend: \(policy.policy.rawValue)",
            subtitle: subtitle(series, of: result),
            note: note(backends: values.count, highlight: .highest),
            panels: [panel]
        ).svg
    }

    /// throughput-<policy>.svg: the fleet's output tokens per second, and each backend's below it.
    static func throughputChart(_ policy: PolicyResult, of result: ScenarioResult) -> String {
        let series = policy.timeSeries
        let count = series.tokensPerSecond.map(\.count).max() ?? 0
        let total = (0..<count).map { i in
            series.tokensPerSecond.reduce(0) { $0 + (i < $1.count ? $1[i] : 0) }
        }
        let totalPoints = reduced(total, interval: series.intervalSeconds)
        var fleet = LineChart.Panel(
            title: "Fleet total",
            xLabel: "simulated time (s)",
            yLabel: "output tokens/s",
            x: .linear(upTo: timeSpan(count, series.intervalSeconds)),
            y: .linear(upTo: total.max() ?? 0),
            height: 160,
            series: [.init(name: "all backends", color: "#222222", points: totalPoints, width: 2)]
        )
        if count == 0 { fleet.emptyNote = "no samples" }
        let perBackend = backendPanel(
            series.tokensPerSecond,
            series,
            yLabel: "output tokens/s",
            title: "Per backend",
            height: 300,
            highlight: .lowest
        )
        return LineChart(
            title: "Output throughput: \(policy.policy.rawValue)",
            subtitle: subtitle(series, of: result),
            note: note(backends: series.tokensPerSecond.count, highlight: .lowest),
            panels: [fleet, perBackend]
        ).svg
    }

    private static func subtitle(_ series: TimeSeries, of result: ScenarioResult) -> String {
        let interval = ReportRow.trimmed(ReportFormat.fixed(series.intervalSeconds, decimals: 3))
        return "Scenario \(result.scenario), seed \(result.seed), \(series.backends.count) backends, "
            + "sampled every \(interval) s"
    }

    /// Which backends a crowded panel draws on their own: where trouble shows (a hot queue, a slow or
    /// failed backend's throughput).
    enum Highlight {
        case highest
        case lowest
    }

    private static func note(backends: Int, highlight: Highlight) -> String? {
        guard backends > individualBackendLimit else { return nil }
        return "Shaded: min to max across backends; dark line: their mean; thin lines: the \(topBackendCount) "
            + "backends \(highlight == .highest ? "highest" : "lowest") on average."
    }

    /// A panel of per-backend samples (`values[backend][sample]`): one line per backend for a small
    /// fleet; otherwise the min-max band, a few highlighted backends and the mean on top.
    private static func backendPanel(
        _ values: [[Double]],
        _ series: TimeSeries,
        yLabel: String,
        title: String?,
        height: Double,
        highlight: Highlight
    ) -> LineChart.Panel {
        let count = values.map(\.count).max() ?? 0
        let interval = series.intervalSeconds
        var panel = LineChart.Panel(
            title: title,
            xLabel: "simulated time (s)",
            yLabel: yLabel,
            x: .linear(upTo: timeSpan(count, interval)),
            y: .linear(upTo: values.compactMap { $0.max() }.max() ?? 0),
            height: height
        )
        guard count > 0 else {
            panel.emptyNote = "no samples"
            return panel
        }
        let names = values.indices.map { b in
            b < series.backends.count ? series.backends[b].rawValue : "backend \(b + 1)"
        }
        if values.count <= individualBackendLimit {
            panel.series = values.indices.map { b in
                .init(
                    name: names[b],
                    color: backendColors[b % backendColors.count],
                    points: reduced(values[b], interval: interval)
                )
            }
            return panel
        }
        let (band, mean) = spread(values, interval: interval)
        panel.bands = [band]
        panel.series = highlighted(values, names: names, interval: interval, highlight)
        panel.series.append(
            .init(
                name: "mean of \(values.count) backends",
                color: "#1d3557",
                points: mean,
                width: 2.4
            )
        )
        return panel
    }

    /// The min-max band across backends and their mean, sample by sample.
    private static func spread(
        _ values: [[Double]],
        interval: Double
    ) -> (band: LineChart.Band, mean: [(x: Double, y: Double)]) {
        var lower: [Double] = []
        var upper: [Double] = []
        var mean: [Double] = []
        for i in 0..<(values.map(\.count).max() ?? 0) {
            let column = values.compactMap { i < $0.count ? $0[i] : nil }
            lower.append(column.min() ?? 0)
            upper.append(column.max() ?? 0)
            mean.append(column.isEmpty ? 0 : column.reduce(0, +) / Double(column.count))
        }
        let band = LineChart.Band(
            name: "min-max of \(values.count) backends",
            color: "#7f9cc9",
            lower: reduced(lower, interval: interval, by: { $0.min() ?? 0 }),
            upper: reduced(upper, interval: interval, by: { $0.max() ?? 0 })
        )
        return (band, reduced(mean, interval: interval))
    }

    /// Thin lines for the `topBackendCount` backends with the highest (or lowest) mean, ties by name.
    private static func highlighted(
        _ values: [[Double]],
        names: [String],
        interval: Double,
        _ highlight: Highlight
    ) -> [LineChart.Series] {
        let averages = values.map { $0.isEmpty ? 0 : $0.reduce(0, +) / Double($0.count) }
        let picked = values.indices.sorted { a, b in
            guard averages[a] != averages[b] else { return names[a] < names[b] }
            return highlight == .highest ? averages[a] > averages[b] : averages[a] < averages[b]
        }.prefix(topBackendCount)
        return picked.enumerated().map { rank, b in
            let average = ReportFormat.fixed(averages[b], decimals: ReportFormat.decimals(forMagnitude: averages[b]))
            return .init(
                name: "\(names[b]) (mean \(average))",
                color: backendColors[rank % backendColors.count],
                points: reduced(values[b], interval: interval),
                width: 1
            )
        }
    }

    private static func timeSpan(_ count: Int, _ interval: Double) -> Double {
        max(Double(max(count - 1, 1)) * interval, 1e-9)
    }

    /// Chart points of samples taken every `interval` seconds from time 0, combined in groups of
    /// consecutive samples (mean by default) when there are more than `maximumPoints`.
    static func reduced(
        _ samples: [Double],
        interval: Double,
        by combine: ([Double]) -> Double = { $0.reduce(0, +) / Double(max($0.count, 1)) }
    ) -> [(x: Double, y: Double)] {
        let group = max(1, (samples.count + maximumPoints - 1) / maximumPoints)
        return stride(from: 0, to: samples.count, by: group).map { start in
            let slice = Array(samples[start..<min(start + group, samples.count)])
            return (x: Double(start) * interval, y: combine(slice))
        }
    }
}
