import IsobarModel
import IsobarSimulator
import Testing

/// A backend that crashes while an engine step is under way. With outputs of one to three tokens most
/// steps finish requests, so the crash drops requests that have left the engine but whose ends never
/// reached the gateway; each must still end once. Before the fix such a run never terminated (the lost
/// requests kept the run's periodic scrapes alive); `guardTermination` turns that into a trap with a
/// message instead of a hung test run.
@Suite("Simulation runs with a crash mid-step")
struct SimulationCrashTests {
    /// `fixed` engines (every step 10 ms) kept busy by short requests: about five arrive per replica and
    /// step, so an engine is almost never idle and almost every step finishes some request.
    static func scenario(replicas: Int, rate: Double, faults: [Fault], policy: PolicyKind) -> Scenario {
        let lengths = Lengths.independent(
            prompt: LengthDistribution(.uniform(low: 50, high: 400)),
            output: LengthDistribution(.uniform(low: 1, high: 3))
        )
        return Scenario(
            name: "crash-mid-step",
            seed: 3,
            stop: .requests(3000),
            topology: Fleet.topology(replicas: [("east", replicas, "fixed")], policy: policy),
            workloads: [
                Workload(
                    region: "east",
                    model: "chat",
                    source: .synthetic(arrivals: Arrivals(rate: rate), lengths: lengths)
                )
            ],
            faults: faults,
            policies: [policy]
        )
    }

    /// Progress callback that traps once simulated time runs far past the few seconds these runs take.
    static func guardTermination(seconds: Double, completed: Int) {
        precondition(seconds < 600, "the run did not terminate: \(completed) completed, simulated \(seconds) s")
    }

    @Test(
        "every request ends exactly once when a backend crashes mid-step",
        arguments: [PolicyKind.isobar, .leastRequest]
    )
    func conservationAcrossACrash(policy: PolicyKind) throws {
        // Crash times between step boundaries, on busy engines: the first backend comes back, the second
        // stays down.
        let faults = [
            Fault(atSeconds: 0.403_7, untilSeconds: 0.9, kind: .down(["east-fixed-1"])),
            Fault(atSeconds: 0.605_3, kind: .down(["east-fixed-2"])),
        ]
        var outcomes: [RequestRecord.Outcome: Int] = [:]
        var servedByDownBackend = 0
        var ids = Set<UInt64>()
        let scenario = Self.scenario(replicas: 3, rate: 1500, faults: faults, policy: policy)
        let result = try Simulator().run(
            scenario,
            policy: policy,
            record: { record in
                outcomes[record.outcome, default: 0] += 1
                ids.insert(record.id)
                if record.backend == "east-fixed-2", record.outcome == .completed, record.arrival > 0.7 {
                    servedByDownBackend += 1
                }
            },
            progress: Self.guardTermination
        )
        #expect(result.arrived == 3000)
        #expect(result.completed + result.failedAfterFirstToken + result.rejected == 3000)
        #expect(outcomes.values.reduce(0, +) == 3000)
        #expect(ids.count == 3000, "every request has its own id in requests.csv")
        #expect(servedByDownBackend == 0)
        // Survivors take the load: every request that lost its engine before its first token failed over.
        #expect(result.rejected == 0)
        #expect(result.failedAfterFirstToken > 0)
        #expect(result.makespanSeconds < 10)
    }

    @Test(
        "with a single backend the crash's requests are refused, the breaker's probe brings it back, and the run ends"
    )
    func singleBackendCrash() throws {
        let faults = [Fault(atSeconds: 2.004_3, untilSeconds: 3, kind: .down(["east-fixed-1"]))]
        var records = 0
        var scenario = Self.scenario(replicas: 1, rate: 500, faults: faults, policy: .isobar)
        // Its breaker opens in the outage; with a 1 s cooldown (0.25 s, 0.5 s, then 1 s) a probe finds the
        // restarted engine soon after it is back.
        scenario.topology.routing.circuitBreaker = CircuitBreakerSettings(consecutiveFailures: 5, cooldownSeconds: 1)
        let result = try Simulator().run(
            scenario,
            policy: .isobar,
            record: { _ in records += 1 },
            progress: Self.guardTermination
        )
        #expect(records == 3000)
        #expect(result.completed + result.failedAfterFirstToken + result.rejected == 3000)
        // Requests in the engine at the crash, those arriving during the outage and while the breaker is
        // open cannot be served.
        #expect(result.rejected > 0)
        // About 1,000 arrive before the crash: the engine got its traffic back after the restart.
        #expect(result.completed > 1800)
    }
}
