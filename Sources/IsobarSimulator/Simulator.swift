import IsobarModel

/// Runs scenarios: every policy of a scenario over the same workload, from the same seed.
public struct Simulator: Sendable {
    public var traces: TraceCache
    /// How often per-backend queue and throughput samples are taken, in simulated seconds; `nil` picks
    /// about 300 samples over the run.
    public var sampleIntervalSeconds: Double?

    public init(traces: TraceCache = TraceCache(), sampleIntervalSeconds: Double? = nil) {
        self.traces = traces
        self.sampleIntervalSeconds = sampleIntervalSeconds
    }

    /// Runs one policy. `record` sees every request as it ends (for the per-request CSV); `progress` is
    /// called now and then with the simulated time and requests completed.
    public func run(
        _ scenario: Scenario,
        policy: PolicyKind,
        record: ((RequestRecord) -> Void)? = nil,
        progress: ((Double, Int) -> Void)? = nil
    ) throws(SimulatorError) -> PolicyResult {
        var run = try SimulationRun(
            scenario: scenario,
            policy: policy,
            traces: traces,
            sampleInterval: sampleInterval(scenario),
            record: record
        )
        return run.run(progress: progress)
    }

    private func sampleInterval(_ scenario: Scenario) -> Double {
        if let sampleIntervalSeconds { return sampleIntervalSeconds }
        switch scenario.stop {
        case .duration(let seconds): return max(0.1, seconds / 300)
        case .requests(let count):
            let rate = scenario.workloads.compactMap { workload -> Double? in
                if case .synthetic(let arrivals, _) = workload.source { return arrivals.rate }
                return nil
            }.reduce(0, +)
            return rate > 0 ? max(0.1, Double(count) / rate / 300) : 1
        }
    }
}
