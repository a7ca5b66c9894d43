import IsobarConfig
import IsobarModel
import Testing

/// Each problem class a user can make, with the line and key path `isobar check` reports for it.
@Suite("Diagnostics of invalid topology files")
struct TopologyDiagnosticsTests {
    @Test func missingRegionsAndEmptyListsAreReported() {
        let yaml = """
            mesh: {}
            nodes: []
            backends: []
            models: []
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:1: mesh.name: required key is missing",
                "test.yaml:1: regions: required key is missing; at least one region is needed",
                "test.yaml:2: nodes: at least one node is needed",
                "test.yaml:3: backends: at least one backend is needed",
                "test.yaml:4: models: at least one model is needed",
            ]
        )
    }

    @Test func unknownReferencesNameWhatIsDefined() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: us-east}, {name: eu-west}]
            nodes:
              - {name: n1, region: us-esat, listen: 127.0.0.1:8080}
            backends:
              - {name: b1, region: ap-south, engine: vllm, url: http://127.0.0.1:8000, models: [m1]}
            models:
              - {name: chat, deployments: [{backend: b2, model: m1}], fallbacks: [chat-smal, gone]}
              - {name: chat-small, deployments: [{backend: b1, model: m1}]}
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:4: nodes[0].region: unknown region 'us-esat' (did you mean 'us-east'?)",
                "test.yaml:6: backends[0].region: unknown region 'ap-south'; defined: us-east, eu-west",
                "test.yaml:8: models[0].deployments[0].backend: unknown backend 'b2' (did you mean 'b1'?)",
                "test.yaml:8: models[0].fallbacks[0]: unknown model 'chat-smal' (did you mean 'chat-small'?)",
                "test.yaml:8: models[0].fallbacks[1]: unknown model 'gone'; defined: chat, chat-small",
            ]
        )
    }

    @Test func duplicateNamesPointAtTheFirstDefinition() {
        let yaml = """
            mesh: {name: t}
            regions:
              - name: r1
              - name: r1
              - name: "bad name"
            nodes:
              - {name: n1, region: r1, listen: 127.0.0.1:8080}
              - {name: n1, region: r1, listen: 127.0.0.1:8081}
            backends:
              - {name: b1, region: r1, engine: vllm, url: http://127.0.0.1:8000, models: [m1, m1]}
              - {name: b1, region: r1, engine: vllm, url: http://127.0.0.1:8001, models: [m1]}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}, {backend: b1, model: m1}]}
              - {name: chat, deployments: [{backend: b1, model: m1}]}
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:4: regions[1].name: duplicate region 'r1' (first defined on line 3)",
                "test.yaml:5: regions[2].name: region name 'bad name' may only contain letters, digits, '.', '_' "
                    + "and '-'",
                "test.yaml:8: nodes[1].name: duplicate node 'n1' (first defined on line 7)",
                "test.yaml:10: backends[0].models[1]: duplicate model 'm1'",
                "test.yaml:11: backends[1].name: duplicate backend 'b1' (first defined on line 10)",
                "test.yaml:13: models[0].deployments[1]: model 'm1' on backend 'b1' is listed twice",
                "test.yaml:14: models[1].name: duplicate model 'chat' (first defined on line 13)",
            ]
        )
    }

    @Test func badAndSharedAddresses() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes:
              - {name: n1, region: r1, listen: 127.0.0.1}
              - {name: n2, region: r1, listen: "127.0.0.1:99999"}
              - {name: n3, region: r1, listen: 127.0.0.1:8080, gossip: 127.0.0.1:7946}
              - {name: n4, region: r1, listen: 127.0.0.1:8080, gossip: 127.0.0.1:7946}
              - {name: n5, region: r1, listen: 127.0.0.1:0}
              - {name: n6, region: r1, listen: 127.0.0.1:0, gossip: "::1:7946"}
            backends:
              - {name: b1, region: r1, engine: vllm, url: http://127.0.0.1:8000, models: [m1]}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}]}
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:4: nodes[0].listen: expected HOST:PORT",
                "test.yaml:5: nodes[1].listen: port must be a number from 0 to 65535, got '99999'",
                "test.yaml:7: nodes[3].listen: listen address 127.0.0.1:8080 is already used by node 'n3'",
                "test.yaml:7: nodes[3].gossip: gossip address 127.0.0.1:7946 is already used by node 'n3'",
                "test.yaml:9: nodes[5].gossip: IPv6 hosts must be written in brackets: [HOST]:PORT",
            ]
        )
    }

    @Test func badURLs() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends:
              - {name: b1, region: r1, engine: vllm, url: ftp://10.0.0.5, models: [m1]}
              - {name: b2, region: r1, engine: sglang, models: [m1]}
              - {name: b3, region: r1, engine: emulated, url: http://10.0.0.5:9000, models: [m1], emulate: {profile: instant}}
              - {name: b4, region: r1, engine: emulated, url: http://127.0.0.1:0, models: [m1], emulate: {profile: instant}}
              - {name: b5, region: r1, engine: tgi, url: http://10.0.0.5:0, models: [m1]}
              - {name: b6, region: r1, engine: openai, api_key_env: K, metrics_url: http://10.0.0.5/metrics}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}]}
            """
        #expect(
            Fixture.problems(yaml, environment: ["K": "k"]) == [
                "test.yaml:5: backends[0].url: URL must start with http:// or https://",
                "test.yaml:6: backends[1].url: required key is missing for engine 'sglang'",
                "test.yaml:7: backends[2].url: an emulated backend's url must be http:// on a loopback host such as "
                    + "127.0.0.1",
                "test.yaml:9: backends[4].url: URL port must be from 1 to 65535",
                "test.yaml:10: backends[5].metrics_url: metrics_url is only for self-hosted engines "
                    + "(vllm, sglang, tgi, llamacpp, trtllm, emulated)",
            ]
        )
    }

    @Test func apiKeysComeFromTheEnvironmentOrAFile() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends:
              - {name: openai, region: r1, engine: openai, api_key_env: OPENAI_API_KEY}
              - {name: anthropic, region: r1, engine: anthropic}
              - {name: both, region: r1, engine: openai-compatible, url: https://x.example, api_key_env: E, api_key_file: f}
              - {name: blank, region: r1, engine: openai, api_key_env: BLANK}
              - {name: missing-file, region: r1, engine: openai, api_key_file: /etc/none}
              - {name: empty-file, region: r1, engine: openai, api_key_file: empty}
            models:
              - {name: chat, deployments: [{backend: openai, model: gpt-4o-mini}]}
            """
        #expect(
            Fixture.problems(yaml, file: "/srv/test.yaml", environment: ["BLANK": ""], files: ["/srv/empty": " \n"])
                == [
                    "/srv/test.yaml:5: backends[0].api_key_env: environment variable OPENAI_API_KEY is not set",
                    "/srv/test.yaml:6: backends[1].api_key_env: engine 'anthropic' needs an API key: set api_key_env "
                        + "or api_key_file",
                    "/srv/test.yaml:7: backends[2].api_key_file: set either api_key_env or api_key_file, not both",
                    "/srv/test.yaml:8: backends[3].api_key_env: environment variable BLANK is empty",
                    "/srv/test.yaml:9: backends[4].api_key_file: cannot read the API key file '/etc/none'",
                    "/srv/test.yaml:10: backends[5].api_key_file: the API key file '/srv/empty' is empty",
                ]
        )
    }

    @Test func gossipKey() {
        let beyondLoopback = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes:
              - {name: n1, region: r1, listen: 10.0.0.1:8080, gossip: 10.0.0.1:7946}
            backends:
              - {name: b1, region: r1, engine: vllm, url: http://127.0.0.1:8000, models: [m1]}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}]}
            """
        #expect(
            Fixture.problems(beyondLoopback) == [
                "test.yaml:4: nodes[0].gossip: mesh.gossip_key_env is required when a node gossips beyond loopback"
            ]
        )
        let withKey = beyondLoopback.replacingOccurrences(of: "{name: t}", with: "{name: t, gossip_key_env: GK}")
        #expect(
            Fixture.problems(withKey) == [
                "test.yaml:1: mesh.gossip_key_env: environment variable GK is not set "
                    + "(a node listens or gossips beyond loopback)"
            ]
        )
        #expect(
            Fixture.problems(withKey, environment: ["GK": "not base64!"]) == [
                "test.yaml:1: mesh.gossip_key_env: environment variable GK is not valid base64"
            ]
        )
        #expect(
            Fixture.problems(withKey, environment: ["GK": "c2hvcnQ="]) == [
                "test.yaml:1: mesh.gossip_key_env: environment variable GK must hold a base64 key of 32 bytes, "
                    + "got 5 bytes"
            ]
        )
        #expect(Fixture.problems(withKey, environment: ["GK": Fixture.gossipKey]).isEmpty)
        // Rotation: a keyring of new and old key, each checked.
        #expect(Fixture.problems(withKey, environment: ["GK": "\(Fixture.gossipKey), \(Fixture.gossipKey)"]).isEmpty)
        #expect(
            Fixture.problems(withKey, environment: ["GK": "\(Fixture.gossipKey),c2hvcnQ="]) == [
                "test.yaml:1: mesh.gossip_key_env: environment variable GK must hold a base64 key of 32 bytes "
                    + "(key 2), got 5 bytes"
            ]
        )
        let loopback = Fixture.minimal.replacingOccurrences(of: "{name: t}", with: "{name: t, gossip_key_env: GK}")
        #expect(Fixture.problems(loopback).isEmpty)
    }

    @Test func deploymentsMustUseModelsTheirBackendServes() {
        let yaml =
            Fixture.minimal + """
                  - {name: m2, deployments: [{backend: b1}]}
                  - {name: m3, deployments: [{backend: b1}]}
                  - {name: none, deployments: []}
                """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:10: models[2].deployments[0]: backend 'b1' does not serve model 'm3'; it serves: m1, m2",
                "test.yaml:11: models[3].deployments: at least one deployment is needed",
            ]
        )
    }

    @Test func fallbackCyclesAreReportedOnce() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends: [{name: b1, region: r1, engine: openai-compatible, url: http://127.0.0.1:8000}]
            models:
              - {name: a, deployments: [{backend: b1}], fallbacks: [b]}
              - {name: b, deployments: [{backend: b1}], fallbacks: [c]}
              - {name: c, deployments: [{backend: b1}], fallbacks: [a]}
              - {name: d, deployments: [{backend: b1}], fallbacks: [d, a]}
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:8: models[2].fallbacks[0]: fallback cycle: a -> b -> c -> a",
                "test.yaml:9: models[3].fallbacks[0]: a model cannot fall back to itself",
            ]
        )
    }

    @Test func unknownPoliciesAndUnavailableModesNameTheChoices() {
        let yaml =
            Fixture.minimal + """
                  - {name: other, deployments: [{backend: b1, model: m2}], policy: isobar}
                  - {name: third, deployments: [{backend: b1, model: m2}], policy: fastest}
                routing: {policy: peak-ewma}
                catch_all: {mode: statik, content: "  "}
                """
        let available = "use one of isobar, round-robin, random, least-request, power-of-two, least-tokens, peak-ewma"
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:10: models[2].policy: unknown policy 'fastest'; \(available)",
                "test.yaml:12: catch_all.mode: unknown catch_all.mode 'statik' (did you mean 'static'?); use one of "
                    + "busy, static, cache",
                "test.yaml:12: catch_all.content: must not be empty: it is the answer clients get in static mode",
            ]
        )
    }

    @Test func timeoutsOfBackendsAndModelsAndContextFallbacks() {
        let yaml =
            Fixture.minimal + """
                  - name: long
                    deployments: [{backend: b1, model: m2}]
                    context_fallbacks: [long, nowhere]
                    timeouts: {first_token_ms: -1, total_ms: 0}
                routing: {health: {idle_probe_s: -2}}
                """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:11: models[1].context_fallbacks[0]: a model cannot fall back to itself",
                "test.yaml:11: models[1].context_fallbacks[1]: unknown model 'nowhere'; defined: chat, long",
                "test.yaml:12: models[1].timeouts.first_token_ms: must be greater than 0, got -1",
                "test.yaml:12: models[1].timeouts.total_ms: must be greater than 0, got 0",
                "test.yaml:13: routing.health.idle_probe_s: must not be negative, got -2",
            ]
        )
    }

    @Test func emulateSettings() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends:
              - name: b1
                region: r1
                engine: vllm
                url: http://127.0.0.1:8000
                models: [m1]
                emulate: {profile: instant}
              - {name: e1, region: r1, engine: emulated, models: [m1]}
              - name: e2
                region: r1
                engine: emulated
                models: [m1]
                emulate:
                  profile: llama-8b
                  api: grpc
                  tokens_per_second: 0
                  tokens_per_second_typo: -1
                  max_concurrency: 0
                  fault: {status: 302}
              - {name: e3, region: r1, engine: emulaetd, models: [m1]}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}]}
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:10: backends[0].emulate: emulate is only for engine: emulated, not 'vllm'",
                "test.yaml:11: backends[1].emulate: required key is missing for engine 'emulated', "
                    + "e.g. emulate: {profile: llama-3.1-8b-h100}",
                "test.yaml:17: backends[2].emulate.profile: unknown profile 'llama-8b'; use one of instant, "
                    + "fixed, llama-3.1-8b-h100, llama-3.1-70b-h100, llama-2-70b-a100",
                "test.yaml:18: backends[2].emulate.api: unknown api 'grpc'; use one of openai, anthropic",
                "test.yaml:19: backends[2].emulate.tokens_per_second: must be greater than 0, got 0",
                "test.yaml:20: backends[2].emulate.tokens_per_second_typo: unknown key 'tokens_per_second_typo'",
                "test.yaml:21: backends[2].emulate.max_concurrency: must be at least 1, got 0",
                "test.yaml:22: backends[2].emulate.fault.status: must be from 400 to 599, got 302",
                "test.yaml:23: backends[3].engine: unknown engine 'emulaetd' (did you mean 'emulated'?); use one of "
                    + "vllm, sglang, tgi, llamacpp, trtllm, openai, anthropic, openai-compatible, emulated",
            ]
        )
    }

    @Test func aBadURLIsReportedEvenWhenTheEngineIsUnknown() {
        let yaml = Fixture.minimal.replacingOccurrences(
            of: "models: [m1, m2]}\n",
            with: "models: [m1, m2]}\n  - {name: b9, region: r1, engine: vlm, url: \"http//10.0.0.9\", models: [m1]}\n"
        )
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:7: backends[1].engine: unknown engine 'vlm' (did you mean 'vllm'?); use one of "
                    + "vllm, sglang, tgi, llamacpp, trtllm, openai, anthropic, openai-compatible, emulated",
                "test.yaml:7: backends[1].url: URL must start with http:// or https://",
            ]
        )
    }

    @Test("reachable_from is anywhere (the default) or region; anything else is named with the choices")
    func reachableFrom() throws {
        let region = Fixture.minimal.replacingOccurrences(
            of: "models: [m1, m2]}",
            with: "models: [m1, m2], reachable_from: region}"
        )
        #expect(try Fixture.load(region).backends[0].reach == .region)
        #expect(try Fixture.load(Fixture.minimal).backends[0].reach == .anywhere)
        let wrong = Fixture.minimal.replacingOccurrences(
            of: "models: [m1, m2]}",
            with: "models: [m1, m2], reachable_from: vpc}"
        )
        #expect(
            Fixture.problems(wrong) == [
                "test.yaml:6: backends[0].reachable_from: unknown reachable_from 'vpc'; use one of anywhere, region"
            ]
        )
    }

    @Test func numbersOutOfRange() {
        let yaml =
            Fixture.minimal + """
                routing:
                  retries: {attempts: 11, backoff_base_ms: 500, backoff_max_ms: 100}
                  timeouts: {connect_ms: 0}
                  circuit_breaker: {consecutive_failures: 0, cooldown_s: -1, window: 1, error_rate: 1.5}
                  proximity: {hysteresis_ms: -5, session_ttl_s: -1, spill_over: sometimes}
                catch_all: {retry_after_s: -1}
                limits: {max_request_body_bytes: 512}
                """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:10: routing.retries.attempts: must be from 0 to 10, got 11",
                "test.yaml:10: routing.retries.backoff_base_ms: backoff_base_ms (500) must not exceed backoff_max_ms "
                    + "(100)",
                "test.yaml:11: routing.timeouts.connect_ms: must be greater than 0, got 0",
                "test.yaml:12: routing.circuit_breaker.consecutive_failures: must be at least 1, got 0",
                "test.yaml:12: routing.circuit_breaker.cooldown_s: must be greater than 0, got -1",
                "test.yaml:12: routing.circuit_breaker.window: must be from 2 to 64 attempts, got 1",
                "test.yaml:12: routing.circuit_breaker.error_rate: must be above 0 and at most 1, got 1.5",
                "test.yaml:13: routing.proximity.spill_over: expected true or false, got a string",
                "test.yaml:13: routing.proximity.hysteresis_ms: must not be negative, got -5",
                "test.yaml:13: routing.proximity.session_ttl_s: must not be negative, got -1",
                "test.yaml:14: catch_all.retry_after_s: must be from 0 to 3600 seconds, got -1",
                "test.yaml:15: limits.max_request_body_bytes: must be from 1024 to 1073741824 bytes (1 KiB to 1 GiB), "
                    + "got 512",
            ]
        )
    }
}
