import IsobarConfig
import IsobarModel
import Testing

/// Loads scenario text the way `isobar check` would, with the files it names held in memory.
enum ScenarioFixture {
    static let file = "sims/test.yaml"

    /// A profile file in the format `isobar calibrate` writes.
    static let profile = """
        name: rtx4090
        max_num_seqs: 256
        max_num_batched_tokens: 2048
        num_blocks: 2588
        step_time: {overhead_s: 0.002, weight_read_s: 0.018, linear_per_token_s: 6.0e-05, prefill_attention_s: 1.0e-9, decode_attention_s: 1.0e-8}

        """

    /// Files every fixture scenario may name, by resolved path.
    static let files: [String: String] = [
        "sims/profiles/rtx4090.yaml": profile,
        "traces/m.jsonl.gz": "(binary)",
        "traces/lengths.csv": "num_prefill_tokens,num_decode_tokens\n10,20\n",
        "sims/cdf.json": "{\"cdf\": [[64, 0.0], [512, 0.5], [4096, 1.0]], \"source\": \"test\"}",
        "sims/topology.yaml": topology,
    ]

    /// A fleet in two regions: three replicas in us-east, one engine with a loaded profile in eu-west.
    /// Lines: 1 mesh, 2 regions, 3-5 nodes, 6-10 backends, 11-13 models.
    static let topology = """
        mesh: {name: sim}
        regions: [{name: us-east}, {name: eu-west}]
        nodes:
          - {name: use-gw, region: us-east, listen: 127.0.0.1:0}
          - {name: euw-gw, region: eu-west, listen: 127.0.0.1:0}
        backends:
          - {name: use-h100, region: us-east, engine: emulated, models: [llama], replicas: 3,
             emulate: {profile: llama-3.1-8b-h100}, price: {per_hour: 2.5}}
          - {name: euw-4090, region: eu-west, engine: emulated, models: [llama],
             emulate: {profile: rtx4090}}
        models:
          - name: chat
            deployments: [{backend: use-h100, model: llama}, {backend: euw-4090, model: llama}]

        """

    /// A small valid scenario using `topology.yaml`; tests append to it or replace parts. Lines: 1 topology,
    /// 2 profiles, 3 requests, 4-9 workload (region on 5, model on 6, arrivals on 7, prompt_tokens on 8,
    /// output_tokens on 9).
    static let minimal = """
        topology: topology.yaml
        profiles: {rtx4090: profiles/rtx4090.yaml}
        requests: 1000
        workload:
          - region: us-east
            model: chat
            arrivals: {rate_rps: 10}
            prompt_tokens: {dist: constant, value: 100}
            output_tokens: {dist: constant, value: 10}

        """

    static func load(_ text: String, files: [String: String] = files) throws(ConfigError) -> Scenario {
        try ScenarioLoader.load(
            text: text,
            file: file,
            environment: [:],
            readFile: { files[$0] },
            fileExists: { files[$0] != nil }
        )
    }

    /// The diagnostics as `isobar check` prints them; empty if the text is valid.
    static func problems(_ text: String, files: [String: String] = files) -> [String] {
        do {
            _ = try load(text, files: files)
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }
}

@Suite("Loading valid scenario files")
struct ScenarioLoaderTests {
    static let full = """
        name: demo
        seed: 7
        duration_s: 120
        warmup_s: 5
        scrape_interval_ms: 100
        topology: topology.yaml
        profiles:
          rtx4090: profiles/rtx4090.yaml
        workload:
          - region: us-east
            model: chat
            arrivals: {rate_rps: 20, process: gamma, cv: 2}
            prompt_tokens: {dist: lognormal, median: 800, sigma: 1.1, max: 32768}
            output_tokens:
              dist: mixture
              components:
                - {weight: 0.8, dist: exponential, mean: 150}
                - {weight: 0.2, dist: pareto, xm: 300, alpha: 1.5}
              min: 2
          - region: eu-west
            model: chat
            stream: false
            trace: {format: mooncake, file: ../traces/m.jsonl.gz, time_scale: 0.5, hash_block_tokens: 256}
          - region: eu-west
            model: chat
            arrivals: {rate_rps: 1.5, process: diurnal, period_s: 60, amplitude: 0.5}
            lengths: {trace: ../traces/lengths.csv}
          - region: us-east
            model: chat
            arrivals: {rate_rps: 2}
            prompt_tokens: {dist: empirical, file: cdf.json}
            output_tokens: {dist: uniform, low: 10, high: 20}
        network:
          same_region_ms: 1
          rtt_ms:
            - {between: [us-east, eu-west], ms: 75}
        faults:
          - {at_s: 10, until_s: 20, down: [use-h100]}
          - {at_s: 30, slow: [use-h100-2, euw-4090], factor: 2}
          - {at_s: 40, until_s: 50, partition: [eu-west, us-east]}
        policies: [least-request, power-of-two]
        slo: {ttft_ms: 2000, tpot_ms: 80}
        """

    @Test func everyKeyIsRead() throws {
        let scenario = try ScenarioFixture.load(Self.full)
        #expect(scenario.name == "demo")
        #expect(scenario.seed == 7)
        #expect(scenario.stop == .duration(seconds: 120))
        #expect(scenario.warmupSeconds == 5)
        #expect(scenario.scrapeIntervalSeconds == 0.1)
        #expect(scenario.policies == [.leastRequest, .powerOfTwo])
        #expect(scenario.slo == SLO(ttftSeconds: 2, tpotSeconds: 0.08))
        #expect(
            scenario.network
                == Network(
                    rttSeconds: [RegionPair("us-east", "eu-west"): 0.075],
                    sameRegionRTTSeconds: 0.001,
                    defaultRTTSeconds: 0.08
                )
        )
    }

    @Test func workloadsCarryTheirSources() throws {
        let workloads = try ScenarioFixture.load(Self.full).workloads
        let output = LengthDistribution(
            .mixture([(0.8, .exponential(mean: 150)), (0.2, .pareto(xm: 300, alpha: 1.5))]),
            min: 2
        )
        #expect(
            workloads[0]
                == Workload(
                    region: "us-east",
                    model: "chat",
                    source: .synthetic(
                        arrivals: Arrivals(rate: 20, process: .gamma(cv: 2)),
                        lengths: .independent(
                            prompt: LengthDistribution(.lognormal(median: 800, sigma: 1.1), max: 32768),
                            output: output
                        )
                    )
                )
        )
        let replay = TraceFile(format: .mooncake, path: "traces/m.jsonl.gz", timeScale: 0.5, hashBlockTokens: 256)
        #expect(workloads[1] == Workload(region: "eu-west", model: "chat", source: .trace(replay), stream: false))
        #expect(
            workloads[2].source
                == .synthetic(
                    arrivals: Arrivals(rate: 1.5, process: .diurnal(periodSeconds: 60, amplitude: 0.5)),
                    lengths: .pairs(TraceFile(format: .lengths, path: "traces/lengths.csv"))
                )
        )
        let cdf = LengthDistribution(.empirical([(64, 0), (512, 0.5), (4096, 1)]))
        #expect(
            workloads[3].source
                == .synthetic(
                    arrivals: Arrivals(rate: 2),
                    lengths: .independent(prompt: cdf, output: LengthDistribution(.uniform(low: 10, high: 20)))
                )
        )
    }

    @Test func replicasAreExpandedAndProfilesLoaded() throws {
        let scenario = try ScenarioFixture.load(Self.full)
        let names = scenario.topology.backends.map(\.name)
        #expect(names == ["use-h100-1", "use-h100-2", "use-h100-3", "euw-4090"])
        #expect(scenario.topology.backends[0].price.perHour == 2.5)
        #expect(scenario.topology.model("chat")?.deployments.map(\.backend) == names)
        let loaded = try #require(scenario.profiles["rtx4090"])
        #expect(loaded.maxNumBatchedTokens == 2048)
        #expect(scenario.profile(of: scenario.topology.backends[3]) == loaded)
        #expect(scenario.profile(of: scenario.topology.backends[0]) == EngineProfile.llama31_8B_H100)
        #expect(EngineProfile.presets.allSatisfy { scenario.profiles[$0.name] == $0 })
    }

    @Test func faultTargetsResolveGroupsAndReplicas() throws {
        let faults = try ScenarioFixture.load(Self.full).faults
        #expect(
            faults == [
                Fault(atSeconds: 10, untilSeconds: 20, kind: .down(["use-h100-1", "use-h100-2", "use-h100-3"])),
                Fault(atSeconds: 30, kind: .slow(["use-h100-2", "euw-4090"], factor: 2)),
                Fault(atSeconds: 40, untilSeconds: 50, kind: .partition("eu-west", "us-east")),
            ]
        )
    }

    @Test func defaults() throws {
        let scenario = try ScenarioFixture.load(ScenarioFixture.minimal)
        #expect(scenario.name == "test")
        #expect(scenario.seed == 42)
        #expect(scenario.stop == .requests(1000))
        #expect(scenario.warmupSeconds == 0)
        #expect(scenario.scrapeIntervalSeconds == 0.25)
        #expect(scenario.policies == [.roundRobin, .leastRequest, .powerOfTwo])
        #expect(scenario.slo == SLO())
        #expect(scenario.network == Network())
        #expect(scenario.faults.isEmpty)
        #expect(scenario.workloads[0].stream)
        #expect(
            scenario.workloads[0].source
                == .synthetic(
                    arrivals: Arrivals(rate: 10, process: .poisson),
                    lengths: .independent(
                        prompt: LengthDistribution(.constant(100), min: 1, max: 131_072),
                        output: LengthDistribution(.constant(10))
                    )
                )
        )
    }

    @Test func anInlineTopologyEqualsTheSameFile() throws {
        let indented = ScenarioFixture.topology.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        let inline = ScenarioFixture.minimal.replacingOccurrences(
            of: "topology: topology.yaml\n",
            with: "topology:\n" + indented + "\n"
        )
        #expect(try ScenarioFixture.load(inline) == ScenarioFixture.load(ScenarioFixture.minimal))
    }

    @Test func checkTellsScenariosFromTopologies() {
        #expect(ConfigLoader.isScenario(ScenarioFixture.minimal))
        #expect(!ConfigLoader.isScenario(ScenarioFixture.topology))
        #expect(ConfigLoader.isScenario("worklaod: []\ntopology: t.yaml\n"))
        #expect(!ConfigLoader.isScenario("workload: [unclosed"))
        let topology = try? ConfigLoader.check(
            text: ScenarioFixture.topology.replacingOccurrences(of: "rtx4090", with: "fixed"),
            file: "t.yaml",
            environment: [:]
        )
        guard case .topology(let value) = topology else {
            Issue.record("expected a topology, got \(String(describing: topology))")
            return
        }
        #expect(value.backends.count == 4)
    }
}
