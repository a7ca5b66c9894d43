import ArgumentParser
import Foundation
import IsobarConfig
import IsobarModel
import IsobarSimulator

/// Loads a scenario file, or prints every problem in it and exits 1.
func loadScenario(_ path: String) throws -> Scenario {
    do {
        return try ScenarioLoader.load(path: path, environment: ProcessInfo.processInfo.environment)
    } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw ExitCode(1)
    }
}

/// Parses `--policies a,b` against the available policies.
func parsePolicies(_ text: String) throws -> [PolicyKind] {
    try text.split(separator: ",").map { name in
        guard let policy = PolicyKind(rawValue: String(name)) else {
            let available = PolicyKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("unknown or unavailable policy '\(name)'; use one of \(available)")
        }
        return policy
    }
}

/// One line of progress on a terminal (stderr), overwritten in place; nothing when not a terminal.
struct ProgressLine {
    let enabled = isatty(STDERR_FILENO) == 1

    func show(_ text: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text).utf8))
    }

    func clear() { show("") }
}

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scenario under each policy and compare them side by side."
    )

    @Argument(help: "The scenario file.")
    var scenario: String

    @Option(help: "Policies to compare, comma-separated (default: the scenario's).")
    var policies: String?

    @Option(help: "Write summary.json, summary.md, SVG charts and requests.csv to this directory.")
    var out: String?

    @Flag(help: "With --out, skip the per-request CSV (memory stays bounded either way).")
    var noRequestsCsv = false

    @Flag(help: "Print the summary JSON only.")
    var json = false

    @Option(
        help:
            "Run at this share of the fleet's capacity (0.6 = 60 %), scaling the scenario's arrivals from its stated load."
    )
    var load: Double?

    @Option(help: "Seed of the run's random streams instead of the scenario's `seed:`.")
    var seed: UInt64?

    func run() async throws {
        var scenario = try loadScenario(self.scenario)
        if let policies { scenario.policies = try parsePolicies(policies) }
        if let seed { scenario.seed = seed }
        if let load {
            guard let scaled = scenario.scaled(toLoad: load) else {
                throw ValidationError("--load: \(self.scenario) states no `load:` to scale from")
            }
            scenario = scaled
        }
        let simulator = Simulator()
        let progress = ProgressLine()
        let clock = ContinuousClock()
        let start = clock.now
        var csv: RequestCSVFile?
        if let out, !noRequestsCsv {
            csv = try RequestCSVFile(path: URL(fileURLWithPath: out).appendingPathComponent("requests.csv").path)
        }
        var results: [PolicyResult] = []
        var offered = 0
        for policy in scenario.policies {
            var csvError: (any Error)?
            let result = try simulator.run(
                scenario,
                policy: policy,
                record: csv.map { file in
                    { record in
                        do { try file.append(record) } catch { csvError = csvError ?? error }
                    }
                },
                progress: { simulated, done in
                    progress.show("\(policy.rawValue): \(Int(simulated)) s simulated, \(done) requests done")
                }
            )
            if let csvError { throw csvError }
            offered = max(offered, result.arrived)
            results.append(result)
        }
        progress.clear()
        try csv?.close()
        let wall = (clock.now - start).seconds
        let summary = ScenarioResult(
            scenario: scenario.name,
            seed: scenario.seed,
            requests: offered,
            wallSeconds: wall,
            policies: results,
            slo: scenario.slo
        )
        if let out { try ReportWriter.write(summary, to: out) }
        if json {
            say(ReportWriter.prettyJSON(ReportWriter.summaryJSON(summary)))
        } else {
            say(ReportWriter.table(summary, color: isatty(STDOUT_FILENO) == 1))
            if let out {
                say(
                    "Reports written to \(out)/ (summary.md, summary.json, charts\(noRequestsCsv ? "" : ", requests.csv"))."
                )
            }
        }
    }
}

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capacity planning: the smallest fleet per region that meets the SLOs at the scenario's load."
    )

    @Argument(help: "The scenario file.")
    var scenario: String

    @Option(help: "SLO targets, e.g. ttft_p99=2s,tpot_p99=80ms (metrics ttft, tpot, e2e; units s or ms).")
    var slo: String

    @Option(help: "Largest replica count tried per group.")
    var maxReplicas: Int = 256

    @Option(help: "Balancing policy to plan with (default: the scenario's first).")
    var policy: String?

    func validate() throws {
        _ = try Self.targets(slo)
        guard maxReplicas >= 1 else { throw ValidationError("--max-replicas must be at least 1") }
    }

    /// Parses `ttft_p99=2s,tpot_p99=80ms`.
    static func targets(_ text: String) throws -> [Planner.Target] {
        try text.split(separator: ",").map { item in
            let parts = item.split(separator: "=", maxSplits: 1)
            let key = parts.first.map(String.init) ?? ""
            let pieces = key.split(separator: "_p", maxSplits: 1)
            guard parts.count == 2, pieces.count == 2, let metric = Planner.Target.Metric(rawValue: String(pieces[0])),
                let percentile = Double(pieces[1]), percentile > 0, percentile < 100
            else {
                throw ValidationError(
                    "--slo: '\(item)' is not METRIC_pNN=VALUE (ttft_p99=2s, tpot_p90=80ms, e2e_p50=30s)"
                )
            }
            let value = String(parts[1])
            let seconds: Double?
            if value.hasSuffix("ms") {
                seconds = Double(value.dropLast(2)).map { $0 / 1000 }
            } else if value.hasSuffix("s") {
                seconds = Double(value.dropLast())
            } else {
                seconds = nil
            }
            guard let seconds, seconds > 0 else {
                throw ValidationError("--slo: '\(value)' must be a duration like 2s or 80ms")
            }
            return Planner.Target(metric: metric, quantile: percentile / 100, seconds: seconds)
        }
    }

    func run() async throws {
        let scenario = try loadScenario(self.scenario)
        let policy = try self.policy.map { try parsePolicies($0)[0] } ?? scenario.policies.first ?? .leastRequest
        let targets = try Self.targets(slo)
        let progress = ProgressLine()
        let planner = Planner(simulator: Simulator(), policy: policy, targets: targets, maxReplicas: maxReplicas)
        let plan = try planner.plan(scenario) { probe in
            let sizes = probe.counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            progress.show("probe \(sizes): \(probe.meets ? "meets" : "misses") the SLO")
        }
        progress.clear()
        say(
            "Capacity plan for \(scenario.name) with \(policy.rawValue), SLO: \(targets.map(\.description).joined(separator: ", "))"
        )
        say("")
        say("  group                      region        profile               replicas   $/hour")
        for group in plan.groups {
            let cost = String(format: "%8.2f", Double(group.count) * group.pricePerHour)
            say(
                "  \(group.name.padding(26)) \(group.region.rawValue.padding(13)) \(group.profile.padding(21)) "
                    + "\(String(group.count).leftPadding(8)) \(cost)"
            )
        }
        say("")
        say(String(format: "  total cost: $%.2f per hour", plan.costPerHour))
        for (target, value) in zip(targets, plan.values) {
            let margin = (1 - value / target.seconds) * 100
            say(
                "  \(target): \(Planner.Target.format(value)) at the plan (margin \(String(format: "%.0f", margin)) %)"
            )
        }
        // Evidence that the plan is the smallest: the probe one replica smaller in each group.
        let planned = Dictionary(uniqueKeysWithValues: plan.groups.map { ($0.name, $0.count) })
        for group in plan.groups where group.count > 1 {
            var smaller = planned
            smaller[group.name] = group.count - 1
            if let probe = plan.probes.last(where: { $0.counts == smaller }), !probe.meets {
                let values = zip(targets, probe.values).map {
                    "\($0.metric.rawValue) p\(Int($0.quantile * 100)) \(Planner.Target.format($1))"
                }
                say(
                    "  with \(group.count - 1) \(group.name) replicas the SLO is missed (\(values.joined(separator: ", ")))"
                )
            }
        }
        say("  \(plan.probes.count) simulations")
        if !plan.feasible {
            say(
                "  NOT FEASIBLE: even \(maxReplicas) replicas per group miss the SLO; raise --max-replicas or relax it."
            )
            throw ExitCode(2)
        }
    }
}

struct Calibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit an engine profile to a real engine run with per-request timestamps."
    )

    @Option(help: "Per-request JSONL (LLMServingSim vLLM ground-truth format).")
    var requests: String

    @Option(help: "The run's meta JSON (engine settings, KV cache).")
    var meta: String

    @Option(help: "Where to write the fitted profile (YAML).")
    var out: String

    @Option(help: "The profile's name (default: the output file's name).")
    var name: String?

    func run() async throws {
        let run: GroundTruth
        do {
            run = try GroundTruth.load(requests: requests, meta: meta)
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
        let name = self.name ?? URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent
        let result = Calibrator.fit(run, name: name)
        let report = CalibrationReport(result: result, run: run)
        say(report.text)
        let yaml = EngineProfileFile.yaml(result.profile, comment: report.comment)
        do {
            try Data(yaml.utf8).write(to: URL(fileURLWithPath: out))
        } catch {
            FileHandle.standardError.write(Data("\(out): cannot write the profile: \(error)\n".utf8))
            throw ExitCode(1)
        }
        say("Profile written to \(out).")
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    func leftPadding(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
