import IsobarModel
import IsobarSimulator
import Testing

/// Builds small scenarios in code.
enum Fleet {
    static func topology(
        replicas: [(region: String, count: Int, profile: String)],
        policy: PolicyKind = .leastRequest
    )
        -> Topology
    {
        let regions = Array(Set(replicas.map(\.region))).sorted()
        var backends: [Backend] = []
        for group in replicas {
            for i in 1...group.count {
                backends.append(
                    Backend(
                        name: BackendID("\(group.region)-\(group.profile)-\(i)"),
                        region: RegionID(group.region),
                        engine: .emulated,
                        url: UpstreamURL(tls: false, host: "127.0.0.1", port: 0),
                        models: ["m"],
                        price: Price(perHour: 2),
                        emulate: EmulateSettings(profile: group.profile)
                    )
                )
            }
        }
        return Topology(
            mesh: Mesh(name: "sim"),
            regions: regions.map { Region(name: RegionID($0)) },
            nodes: regions.map {
                Node(name: NodeID("gw-\($0)"), region: RegionID($0), listen: HostPort(host: "127.0.0.1", port: 0))
            },
            backends: backends,
            models: [ModelGroup(name: "chat", deployments: backends.map { Deployment(backend: $0.name, model: "m") })],
            routing: RoutingSettings(
                policy: policy,
                retries: RetrySettings(attempts: 1, backoffBaseMs: 50, backoffMaxMs: 200)
            )
        )
    }

    static func scenario(
        requests: Int = 5_000,
        rate: Double = 20,
        replicas: [(region: String, count: Int, profile: String)] = [("east", 4, "llama-3.1-8b-h100")],
        faults: [Fault] = [],
        seed: UInt64 = 7
    ) -> Scenario {
        let lengths = Lengths.independent(
            prompt: LengthDistribution(.lognormal(median: 600, sigma: 1.0), max: 8000),
            output: LengthDistribution(.lognormal(median: 150, sigma: 0.8), max: 2000)
        )
        let regions = Array(Set(replicas.map(\.region))).sorted()
        return Scenario(
            name: "test",
            seed: seed,
            stop: .requests(requests),
            topology: topology(replicas: replicas),
            workloads: regions.map {
                Workload(
                    region: RegionID($0),
                    model: "chat",
                    source: .synthetic(arrivals: Arrivals(rate: rate / Double(regions.count)), lengths: lengths)
                )
            },
            faults: faults,
            policies: [.roundRobin, .leastRequest, .powerOfTwo],
            slo: SLO(ttftSeconds: 2, tpotSeconds: 0.08)
        )
    }
}

@Suite("Simulation runs")
struct SimulationTests {
    @Test("the same scenario and seed give identical results; another seed does not")
    func determinism() throws {
        let simulator = Simulator()
        let a = try simulator.run(Fleet.scenario(requests: 2_000), policy: .powerOfTwo)
        let b = try simulator.run(Fleet.scenario(requests: 2_000), policy: .powerOfTwo)
        let c = try simulator.run(Fleet.scenario(requests: 2_000, seed: 8), policy: .powerOfTwo)
        #expect(a == b)
        #expect(a.ttft != c.ttft)
    }

    @Test("conservation: every request offered completes exactly once with the tokens it asked for")
    func conservation() throws {
        var asked = 0
        var records = 0
        let result = try Simulator().run(Fleet.scenario(requests: 3_000), policy: .leastRequest) { record in
            records += 1
            asked += record.outputTokens
            #expect(record.outcome == .completed)
        }
        #expect(result.arrived == 3_000)
        #expect(result.completed == 3_000)
        #expect(records == 3_000)
        #expect(result.outputTokens == asked)
        #expect(result.rejected == 0)
        #expect(result.ttft.count == 3_000)
        #expect(result.goodput > 0 && result.throughput > 0)
        #expect(result.meanUtilisation > 0.05 && result.maxUtilisation <= 1)
    }

    @Test("a backend that goes down mid-run: its queued requests fail over, its answering streams are cut")
    func backendDown() throws {
        let scenario = Fleet.scenario(
            requests: 4_000,
            faults: [Fault(atSeconds: 40, untilSeconds: 120, kind: .down(["east-llama-3.1-8b-h100-1"]))]
        )
        var outcomes: [RequestRecord.Outcome: Int] = [:]
        var servedByDownDuringOutage = 0
        let result = try Simulator().run(scenario, policy: .leastRequest) { record in
            outcomes[record.outcome, default: 0] += 1
            if record.backend == "east-llama-3.1-8b-h100-1", record.outcome == .completed, let e2e = record.e2e,
                record.arrival > 41, record.arrival + e2e < 119
            {
                servedByDownDuringOutage += 1
            }
        }
        #expect(result.completed + result.failedAfterFirstToken + result.rejected == 4_000)
        #expect(result.failedAfterFirstToken > 0)
        #expect(result.rejected == 0)
        #expect(servedByDownDuringOutage == 0)
    }
}
