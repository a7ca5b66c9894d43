// Benchmarks of the pure cores and the simulator (`make bench`). Each prints its figure, the target,
// and the ratio to a baseline measured in the same run where one exists.
import Foundation
import IsobarConfig
import IsobarEngineModel
import IsobarModel
import IsobarRouting
import IsobarSimulator

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    return (clock.now - start).seconds
}

/// Resident memory of this process, in MB.
func residentMB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}

func report(_ label: String, _ value: Double, unit: String, target: Double, higherIsBetter: Bool) {
    let ok = higherIsBetter ? value >= target : value <= target
    print(
        label.padding(toLength: 52, withPad: " ", startingAt: 0)
            + String(
                format: "%14.0f %@   target %@ %.0f %@  %@",
                value,
                unit,
                higherIsBetter ? "≥" : "≤",
                target,
                unit,
                ok ? "ok" : "MISSED"
            )
    )
}

// MARK: - Engine steps per second

/// A replica held at `concurrency` running sequences (a new request replaces each finished one).
func engineSteps(profile: EngineProfile, concurrency: Int, steps: Int) -> Double {
    var engine = EngineModel(profile: profile)
    var rng = Xoshiro256(seed: 1)
    var next: UInt64 = 0
    func add() {
        next += 1
        engine.add(
            EngineRequest(
                id: next,
                promptTokens: Int.random(in: 100...2000, using: &rng),
                outputTokens: Int.random(in: 50...500, using: &rng)
            )
        )
    }
    for _ in 0..<concurrency { add() }
    var events: [EngineEvent] = []
    let elapsed = seconds {
        for _ in 0..<steps {
            events.removeAll(keepingCapacity: true)
            _ = engine.step(events: &events)
            for event in events {
                if case .finished = event { add() }
            }
        }
    }
    return Double(steps) / elapsed
}

// MARK: - Routing decisions

/// CPU per routing decision, in µs: requests of 500 prompt tokens (four prefix blocks drawn from 64
/// shared prefixes) over `candidates` vLLM endpoints with capacity hints and fresh scraped samples, 256
/// in flight at a time.
func routingDecisions(candidates: Int, decisions: Int, policy: PolicyKind) -> Double {
    let backends = (0..<candidates).map {
        Backend(
            name: BackendID("b\($0)"),
            region: "r",
            engine: .vllm,
            url: UpstreamURL(tls: false, host: "10.0.0.1", port: 8000 + $0),
            metricsURL: UpstreamURL(tls: false, host: "10.0.0.1", port: 8000 + $0, basePath: "/metrics"),
            models: ["m"],
            capacity: Capacity(prefillTokensPerSecond: 20_000 + Double($0 % 4) * 5_000, maxConcurrency: 256)
        )
    }
    let topology = Topology(
        mesh: Mesh(name: "bench"),
        regions: [Region(name: "r")],
        nodes: [Node(name: "n", region: "r", listen: HostPort(host: "127.0.0.1", port: 0))],
        backends: backends,
        models: [ModelGroup(name: "chat", deployments: backends.map { Deployment(backend: $0.name, model: "m") })],
        routing: RoutingSettings(policy: policy)
    )
    var router = Router(topology: topology, node: "n", configuration: RoutingConfiguration(topology: topology))
    for (i, backend) in backends.enumerated() {
        let sample = LoadSample(
            takenAt: .zero,
            waiting: i % 3,
            running: 40 + i % 16,
            kvUsage: 0.3,
            kvBlockSize: 16,
            kvBlocks: 30_000
        )
        router.scraped(backend.name, sample, now: .zero)
    }
    var rng = Xoshiro256(seed: 2)
    let ids = (0..<decisions).map { RequestID("r\($0)") }
    let prefixes = (0..<64).map { p in (0..<4).map { UInt64(p * 4 + $0 + 1) } }
    var open: [AttemptID] = []
    open.reserveCapacity(256)
    let elapsed = seconds {
        for id in ids {
            let profile = RequestProfile(
                id: id,
                model: "chat",
                operation: .chatCompletions,
                promptTokens: 500,
                prefixHashes: prefixes[open.count % 64],
                hashBlockTokens: 128
            )
            if case .send(let plan) = router.requestArrived(profile, now: .zero, rng: &rng) {
                open.append(plan.attempt)
            }
            if open.count == 256 {
                for attempt in open { router.completed(attempt, usage: nil, now: .zero) }
                open.removeAll(keepingCapacity: true)
            }
        }
    }
    return elapsed / Double(decisions) * 1e6
}

// MARK: - Simulator

let root = URL(fileURLWithPath: CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : ".")

func simulate(_ name: String, requests: Int? = nil) throws -> (requestsPerSecond: Double, steps: Int, memoryMB: Double)
{
    var scenario = try ScenarioLoader.load(
        path: root.appendingPathComponent("simulator/scenarios/\(name).yaml").path,
        environment: ProcessInfo.processInfo.environment
    )
    if let requests { scenario.stop = .requests(requests) }
    let simulator = Simulator()
    var served = 0
    var steps = 0
    let elapsed = try seconds {
        for policy in scenario.policies {
            let result = try simulator.run(scenario, policy: policy)
            served += result.arrived
            steps += result.steps
        }
    }
    return (Double(served) / elapsed, steps, residentMB())
}

if CommandLine.arguments.contains("--large-mesh-only") {
    largeMeshBenchmark()
    exit(0)
}

if CommandLine.arguments.contains("--mesh-only") {
    let nodes = CommandLine.arguments.firstIndex(of: "--nodes").map { Int(CommandLine.arguments[$0 + 1]) ?? 100 } ?? 100
    meshBenchmarks(nodes: nodes)
    try proximityBenchmarks(root: root)
    exit(0)
}

print(
    "Isobar simulator benchmarks (release build, one core; \(ProcessInfo.processInfo.activeProcessorCount) cores, load \(String(format: "%.2f", (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.flatMap { Double($0) } ?? 0)))"
)
print("")
let small = engineSteps(profile: .llama31_8B_H100, concurrency: 8, steps: 2_000_000)
let large = engineSteps(profile: .llama31_8B_H100, concurrency: 64, steps: 1_000_000)
report("engine steps/s, batch of 8 (llama-3.1-8b-h100)", small, unit: "/s", target: 1_000_000, higherIsBetter: true)
report("engine steps/s, batch of 64", large, unit: "/s", target: 1_000_000, higherIsBetter: true)
for policy in [PolicyKind.leastRequest, .isobar] {
    let decision = routingDecisions(candidates: 64, decisions: 500_000, policy: policy)
    print(
        "routing decision over 64 candidates (\(policy.rawValue))".padding(toLength: 52, withPad: " ", startingAt: 0)
            + String(format: "%14.2f µs   target ≤ 5 µs  %@", decision, decision <= 5 ? "ok" : "MISSED")
    )
}
let skewed = try simulate("skewed-lengths")
report(
    "skewed-lengths, 64 replicas: simulated requests/s",
    skewed.requestsPerSecond,
    unit: "/s",
    target: 40_000,
    higherIsBetter: true
)
print(
    String(
        format:
            "  (%d engine steps; vllm-sr-sim's request-level fleet simulator: ~3,700 requests/s here → ratio %.1fx)",
        skewed.steps,
        skewed.requestsPerSecond / 3_700
    )
)
let before = residentMB()
_ = try simulate("skewed-lengths", requests: 25_000)
let quarter = residentMB()
_ = try simulate("skewed-lengths", requests: 200_000)
let double = residentMB()
print(
    String(
        format: "memory: %.0f MB resident after 25k requests, %.0f MB after 200k (started at %.0f MB): %@",
        quarter,
        double,
        before,
        double < quarter * 1.25 + 8 ? "flat" : "GROWS"
    )
)
meshBenchmarks()
try proximityBenchmarks(root: root)
largeMeshBenchmark()
