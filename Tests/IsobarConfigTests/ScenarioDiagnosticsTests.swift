import IsobarConfig
import IsobarModel
import Testing

/// Each problem class of a scenario file, with the line and key path `isobar check` reports for it.
@Suite("Diagnostics of invalid scenario files")
struct ScenarioDiagnosticsTests {
    @Test func unknownAndMissingTopLevelKeys() {
        let yaml = """
            name: x
            worklaod: []
            seeds: 1
            """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:1: <document>: topology is required: a path to a topology file, or the topology "
                    + "itself",
                "sims/test.yaml:1: <document>: set requests (how many requests arrive) or duration_s (for how "
                    + "many seconds they arrive)",
                "sims/test.yaml:1: <document>: workload is required: at least one {region, model, arrivals or "
                    + "trace}",
                "sims/test.yaml:2: worklaod: unknown key 'worklaod' (did you mean 'workload'?)",
                "sims/test.yaml:3: seeds: unknown key 'seeds' (did you mean 'seed'?)",
            ]
        )
    }

    @Test func runSettingsOutOfRange() {
        let yaml =
            ScenarioFixture.minimal + """
                duration_s: 0
                warmup_s: -1
                seed: -3
                scrape_interval_ms: 0
                name: ""
                """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:10: duration_s: set either requests or duration_s, not both",
                "sims/test.yaml:11: warmup_s: must not be negative, got -1",
                "sims/test.yaml:12: seed: must be at least 0, got -3",
                "sims/test.yaml:13: scrape_interval_ms: must be greater than 0, got 0",
                "sims/test.yaml:14: name: must not be empty",
            ]
        )
        let warm = ScenarioFixture.minimal.replacingOccurrences(
            of: "requests: 1000",
            with: "duration_s: 60\nwarmup_s: 60"
        )
        #expect(
            ScenarioFixture.problems(warm) == [
                "sims/test.yaml:4: warmup_s: must be less than duration_s (60), or nothing would be measured"
            ]
        )
    }

    @Test func missingFilesNameTheResolvedPath() {
        let yaml = """
            topology: ../fleet/topology.yaml
            profiles: {mine: ./gone.yaml, fixed: profiles/rtx4090.yaml, "bad name": x.yaml}
            requests: 10
            workload:
              - region: us-east
                model: chat
                trace: {format: azure, file: ../traces/azure.csv}
              - region: us-east
                model: chat
                arrivals: {rate_rps: 1}
                lengths: {trace: /data/lengths.csv, format: csv}
                prompt_tokens: {dist: empirical, file: cdf2.json}
            """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:1: topology: topology file 'fleet/topology.yaml' does not exist",
                "sims/test.yaml:2: profiles.mine: profile file 'sims/gone.yaml' does not exist",
                "sims/test.yaml:2: profiles.fixed: 'fixed' is the name of a preset; give the loaded profile a name "
                    + "of its own",
                "sims/test.yaml:2: profiles.bad name: profile name 'bad name' may only contain letters, digits, '.', "
                    + "'_' and '-'",
                "sims/test.yaml:7: workload[0].trace.file: trace file 'traces/azure.csv' does not exist",
                "sims/test.yaml:11: workload[1].lengths.format: unknown format 'csv'; use one of azure, mooncake, "
                    + "lengths",
                "sims/test.yaml:11: workload[1].lengths.trace: trace file '/data/lengths.csv' does not exist",
                "sims/test.yaml:12: workload[1].prompt_tokens: lengths draws prompt and output lengths together; "
                    + "remove this key",
            ]
        )
    }

    @Test func problemsOfTheTopologyFileFollowTheScenarios() {
        var files = ScenarioFixture.files
        files["sims/topology.yaml"] = ScenarioFixture.topology
            .replacingOccurrences(of: "profile: rtx4090", with: "profile: rtx4080")
            .replacingOccurrences(of: "replicas: 3", with: "replicas: 0")
        #expect(
            ScenarioFixture.problems(ScenarioFixture.minimal, files: files) == [
                "sims/test.yaml:1: topology: the topology file 'sims/topology.yaml' is not valid (2 problems, "
                    + "listed after this file's)",
                "sims/topology.yaml:7: backends[0].replicas: must be from 1 to 10000, got 0",
                "sims/topology.yaml:10: backends[1].emulate.profile: unknown profile 'rtx4080' (did you mean "
                    + "'rtx4090'?); use one of instant, fixed, llama-3.1-8b-h100, llama-3.1-70b-h100, "
                    + "llama-2-70b-a100, rtx4090",
            ]
        )
    }

    @Test func anInlineTopologyIsReportedUnderTopology() {
        let yaml = """
            requests: 10
            topology:
              mesh: {name: sim}
              regions: [{name: r1}, {name: r2}]
              nodes: [{name: gw, region: r1, listen: 127.0.0.1:0}]
              backends:
                - {name: b1, region: r1, engine: vllm, url: http://10.0.0.1:8000, models: [m]}
                - {name: b2, region: r3, engine: emulated, models: [m], emulate: {profile: rtx4090}}
              models: [{name: chat, deployments: [{backend: b1, model: m}, {backend: b2, model: m}]}]
            workload:
              - {region: r2, model: chat, arrivals: {rate_rps: 1}, prompt_tokens: {dist: constant, value: 1},
                 output_tokens: {dist: constant, value: 1}}
              - {region: r1, model: chta, trace: {format: azure, file: cdf.json}}
            """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:7: topology.backends[0].engine: the simulator models engines only: use engine: "
                    + "emulated with emulate: {profile: ...}, not 'vllm'",
                "sims/test.yaml:8: topology.backends[1].region: unknown region 'r3' (did you mean 'r1'?)",
                "sims/test.yaml:8: topology.backends[1].emulate.profile: unknown profile 'rtx4090'; use one of "
                    + "instant, fixed, llama-3.1-8b-h100, llama-3.1-70b-h100, llama-2-70b-a100",
            ]
        )
        let fixed = yaml.replacingOccurrences(of: "engine: vllm, url: http://10.0.0.1:8000", with: "engine: emulated")
            .replacingOccurrences(of: "r3", with: "r1").replacingOccurrences(
                of: "models: [m]}",
                with: "models: [m], emulate: {profile: fixed}}"
            )
            .replacingOccurrences(of: "profile: rtx4090", with: "profile: fixed")
        #expect(
            ScenarioFixture.problems(fixed) == [
                "sims/test.yaml:11: workload[0].region: region 'r2' has no gateway node for its clients to call; "
                    + "add a node in it",
                "sims/test.yaml:13: workload[1].model: unknown model 'chta' (did you mean 'chat'?)",
            ]
        )
    }

    @Test func workloadSources() {
        let yaml =
            ScenarioFixture.minimal + """
                  - region: us-east
                    model: chat
                    arrivals: {rate_rps: 1}
                    trace: {format: mooncake, file: ../traces/m.jsonl.gz, time_scale: 0}
                  - {region: us-east, model: chat}
                  - {region: us-east, model: chat, arrivals: {rate_rps: 1}, output_tokens: {dist: constant, value: 1}}
                  - region: us-east
                    model: chat
                    trace: {file: ../traces/lengths.csv, format: lengths, hash_block_tokens: 16}
                """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:12: workload[1].arrivals: a replayed trace brings its own arrivals and lengths; "
                    + "remove arrivals or trace",
                "sims/test.yaml:13: workload[1].trace.time_scale: must be greater than 0, got 0",
                "sims/test.yaml:14: workload[2].arrivals: required key is missing: give arrivals (with prompt_tokens "
                    + "and output_tokens, or lengths), or a trace to replay",
                "sims/test.yaml:15: workload[3].prompt_tokens: required key is missing: a length distribution such as "
                    + "{dist: lognormal, median: 1000, sigma: 1}, or lengths: {trace: FILE} for both",
                "sims/test.yaml:18: workload[4].trace.hash_block_tokens: hash_block_tokens is only for format: "
                    + "mooncake (the others have no hash ids)",
            ]
        )
    }

    @Test func arrivalProcesses() {
        let yaml =
            ScenarioFixture.minimal.replacingOccurrences(of: "{rate_rps: 10}", with: "{rate_rps: 0, cv: 2}") + """
                  - {region: us-east, model: chat, lengths: {trace: ../traces/lengths.csv},
                     arrivals: {rate_rps: 1, process: gama}}
                  - {region: us-east, model: chat, lengths: {trace: ../traces/lengths.csv},
                     arrivals: {rate_rps: 1, process: gamma}}
                  - {region: us-east, model: chat, lengths: {trace: ../traces/lengths.csv},
                     arrivals: {rate_rps: 1, process: diurnal, period_s: 0, amplitude: 1.5}}
                """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:7: workload[0].arrivals.rate_rps: must be greater than 0, got 0",
                "sims/test.yaml:7: workload[0].arrivals.cv: cv is only for process: gamma",
                "sims/test.yaml:11: workload[1].arrivals.process: unknown process 'gama' (did you mean 'gamma'?); "
                    + "use one of poisson, gamma, diurnal",
                "sims/test.yaml:13: workload[2].arrivals.cv: required key is missing",
                "sims/test.yaml:15: workload[3].arrivals.period_s: must be greater than 0, got 0",
                "sims/test.yaml:15: workload[3].arrivals.amplitude: must be from 0 to 1 (the rate swings between "
                    + "(1 ± amplitude) × rate_rps)",
            ]
        )
    }

    @Test func lengthDistributions() {
        let yaml =
            ScenarioFixture.minimal + """
                  - region: us-east
                    model: chat
                    arrivals: {rate_rps: 1}
                    prompt_tokens: {dist: lognormla, median: 1}
                    output_tokens: {dist: lognormal, median: 0, sigma: -1, mean: 3, min: 50, max: 10}
                  - region: us-east
                    model: chat
                    arrivals: {rate_rps: 1}
                    prompt_tokens: {dist: uniform, low: 20, high: 10}
                    output_tokens:
                      dist: mixture
                      components:
                        - {weight: 0, dist: constant, value: 0}
                        - {weight: 0, dist: pareto, xm: 1}
                """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:13: workload[1].prompt_tokens.dist: unknown dist 'lognormla' (did you mean "
                    + "'lognormal'?); use one of constant, uniform, lognormal, pareto, exponential, mixture, empirical",
                "sims/test.yaml:14: workload[1].output_tokens.mean: unknown key 'mean' (did you mean 'median'?)",
                "sims/test.yaml:14: workload[1].output_tokens.median: must be greater than 0, got 0",
                "sims/test.yaml:14: workload[1].output_tokens.sigma: must not be negative, got -1",
                "sims/test.yaml:14: workload[1].output_tokens.max: min (50) must not exceed max (10)",
                "sims/test.yaml:18: workload[2].prompt_tokens.high: high (10) must not be below low (20)",
                "sims/test.yaml:21: workload[2].output_tokens.components: at least one component needs a weight "
                    + "above 0",
                "sims/test.yaml:22: workload[2].output_tokens.components[0].value: must be at least 1, got 0",
                "sims/test.yaml:23: workload[2].output_tokens.components[1].alpha: required key is missing",
            ]
        )
    }

    @Test func empiricalCDFsAreReadAndChecked() {
        var files = ScenarioFixture.files
        files["sims/cdf.json"] = "[[64, 0.1], [32, 0.5], [128, 1.0]]"
        files["sims/short.json"] = "[[64, 0.1], [128, 0.9]]"
        files["sims/text.json"] = "tokens,cumulative"
        let yaml =
            ScenarioFixture.minimal
            .replacingOccurrences(of: "{dist: constant, value: 100}", with: "{dist: empirical, file: cdf.json}")
            .replacingOccurrences(of: "{dist: constant, value: 10}", with: "{dist: empirical, file: short.json}")
                + """
                  - {region: us-east, model: chat, arrivals: {rate_rps: 1}, prompt_tokens: {dist: empirical, file: text.json},
                     output_tokens: {dist: empirical}}
                """
        #expect(
            ScenarioFixture.problems(yaml, files: files) == [
                "sims/test.yaml:8: workload[0].prompt_tokens.file: 'sims/cdf.json': point 2: tokens and cumulative "
                    + "fractions must not decrease",
                "sims/test.yaml:9: workload[0].output_tokens.file: 'sims/short.json' is not a CDF: the last "
                    + "cumulative fraction is 0.9, not 1",
                "sims/test.yaml:10: workload[1].prompt_tokens.file: 'sims/text.json' is not a CDF: expected "
                    + "[[tokens, cumulative], ...] or {\"cdf\": ...}",
                "sims/test.yaml:11: workload[1].output_tokens.file: required key is missing",
            ]
        )
    }
}
