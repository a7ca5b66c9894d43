import IsobarConfig
import IsobarModel
import Testing

@Suite("Loading valid topology files")
struct TopologyLoaderTests {
    static let full = """
        mesh:
          name: prod
          gossip_key_env: GOSSIP
        regions:
          - name: us-east
          - name: eu-west
        nodes:
          - name: use-1
            region: us-east
            listen: 10.0.0.1:8080
            gossip: 10.0.0.1:7946
          - {name: euw-1, region: eu-west, listen: "[::1]:8081"}
        backends:
          - name: vllm-1
            region: us-east
            engine: vllm
            url: http://10.0.0.5:8000/
            api_key_file: keys/vllm
            models: [meta-llama/Llama-3.1-8B-Instruct]
            capacity: {prefill_tokens_per_s: 30000, decode_tokens_per_s: 6000.5, max_concurrency: 256, context_window: 131072}
            price: {input_per_mtok: 0, output_per_mtok: 0.25}
          - name: openai
            region: eu-west
            engine: openai
            api_key_env: OPENAI_API_KEY
          - name: emu
            region: eu-west
            engine: emulated
            models: [claude-sonnet-4-5]
            emulate:
              profile: llama-3.1-8b-h100
              api: anthropic
              tokens_per_second: 50
              max_concurrency: 8
              fault: {status: 503, retry_after_s: 2}
          - name: emu-fixed
            region: us-east
            engine: emulated
            url: http://127.0.0.1:9000
            models: [m]
            emulate: {profile: instant}
        models:
          - name: chat
            deployments:
              - {backend: vllm-1, model: meta-llama/Llama-3.1-8B-Instruct}
              - {backend: openai, model: gpt-4o-mini}
            fallbacks: [claude]
            policy: power-of-two
          - name: claude
            deployments: [{backend: emu, model: claude-sonnet-4-5}]
          - name: m
            deployments: [{backend: emu-fixed}]
        routing:
          policy: round-robin
          proximity: {hysteresis_ms: 20, spill_over: false, session_ttl_s: 120}
          retries: {attempts: 3, backoff_base_ms: 100, backoff_max_ms: 1000}
          timeouts: {connect_ms: 1000, first_token_ms: 5000, idle_ms: 10000, total_ms: 60000}
          circuit_breaker: {consecutive_failures: 3, cooldown_s: 12.5}
        catch_all: {mode: busy, retry_after_s: 5}
        limits: {max_request_body_bytes: 1048576}
        """

    @Test func fullFileBuildsTheTopologyItDescribes() throws {
        let topology = try Fixture.load(
            Self.full,
            file: "conf/prod.yaml",
            environment: ["GOSSIP": Fixture.gossipKey, "OPENAI_API_KEY": "sk-test"],
            files: ["conf/keys/vllm": "  vllm-secret\n"]
        )

        #expect(topology.mesh == Mesh(name: "prod", gossipKeyEnv: "GOSSIP"))
        #expect(topology.regions == [Region(name: "us-east"), Region(name: "eu-west")])
        #expect(
            topology.nodes == [
                Node(
                    name: "use-1",
                    region: "us-east",
                    listen: HostPort(host: "10.0.0.1", port: 8080),
                    gossip: HostPort(host: "10.0.0.1", port: 7946)
                ),
                Node(name: "euw-1", region: "eu-west", listen: HostPort(host: "::1", port: 8081)),
            ]
        )
        let vllm = Backend(
            name: "vllm-1",
            region: "us-east",
            engine: .vllm,
            url: UpstreamURL(tls: false, host: "10.0.0.5", port: 8000),
            metricsURL: UpstreamURL(tls: false, host: "10.0.0.5", port: 8000, basePath: "/metrics"),
            apiKey: Secret("vllm-secret"),
            models: ["meta-llama/Llama-3.1-8B-Instruct"],
            capacity: Capacity(
                prefillTokensPerSecond: 30000,
                decodeTokensPerSecond: 6000.5,
                maxConcurrency: 256,
                contextWindow: 131072
            ),
            price: Price(inputPerMTok: 0, outputPerMTok: 0.25)
        )
        let openai = Backend(
            name: "openai",
            region: "eu-west",
            engine: .openai,
            url: UpstreamURL(tls: true, host: "api.openai.com", port: 443),
            apiKey: Secret("sk-test"),
            models: []
        )
        let emulated = Backend(
            name: "emu",
            region: "eu-west",
            engine: .emulated,
            url: UpstreamURL(tls: false, host: "127.0.0.1", port: 0),
            models: ["claude-sonnet-4-5"],
            emulate: EmulateSettings(
                profile: "llama-3.1-8b-h100",
                api: .anthropic,
                tokensPerSecond: 50,
                maxConcurrency: 8,
                fault: EmulatedFault(status: 503, retryAfterSeconds: 2)
            )
        )
        let fixed = Backend(
            name: "emu-fixed",
            region: "us-east",
            engine: .emulated,
            url: UpstreamURL(tls: false, host: "127.0.0.1", port: 9000),
            metricsURL: UpstreamURL(tls: false, host: "127.0.0.1", port: 9000, basePath: "/metrics"),
            models: ["m"],
            emulate: EmulateSettings(profile: "instant")
        )
        #expect(topology.backends == [vllm, openai, emulated, fixed])
        #expect(topology.backend("emu")?.api == .anthropic)
        #expect(
            topology.models == [
                ModelGroup(
                    name: "chat",
                    deployments: [
                        Deployment(backend: "vllm-1", model: "meta-llama/Llama-3.1-8B-Instruct"),
                        Deployment(backend: "openai", model: "gpt-4o-mini"),
                    ],
                    fallbacks: ["claude"],
                    policy: .powerOfTwo
                ),
                ModelGroup(name: "claude", deployments: [Deployment(backend: "emu", model: "claude-sonnet-4-5")]),
                ModelGroup(name: "m", deployments: [Deployment(backend: "emu-fixed", model: "m")]),
            ]
        )
        #expect(
            topology.routing
                == RoutingSettings(
                    policy: .roundRobin,
                    proximity: ProximitySettings(hysteresisMs: 20, spillOver: false, sessionTTLSeconds: 120),
                    retries: RetrySettings(attempts: 3, backoffBaseMs: 100, backoffMaxMs: 1000),
                    timeouts: TimeoutSettings(connectMs: 1000, firstTokenMs: 5000, idleMs: 10000, totalMs: 60000),
                    circuitBreaker: CircuitBreakerSettings(consecutiveFailures: 3, cooldownSeconds: 12.5)
                )
        )
        #expect(topology.catchAll == CatchAll(mode: .busy, retryAfterSeconds: 5))
        #expect(topology.limits == Limits(maxRequestBodyBytes: 1_048_576))
    }

    @Test func omittedSectionsTakeTheirDefaults() throws {
        let topology = try Fixture.load(Fixture.minimal)
        #expect(topology.mesh == Mesh(name: "t"))
        #expect(topology.routing == RoutingSettings())
        #expect(topology.routing.policy == .isobar)
        #expect(topology.catchAll == CatchAll(mode: .busy, retryAfterSeconds: 1))
        #expect(topology.limits.maxRequestBodyBytes == 8 * 1024 * 1024)
        let backend = try #require(topology.backend("b1"))
        #expect(backend.capacity == Capacity())
        #expect(backend.price == Price(inputPerMTok: 0, outputPerMTok: 0))
        #expect(backend.apiKey == nil)
        #expect(backend.metricsURL?.description == "http://127.0.0.1:8000/metrics")
    }

    @Test func metricsAreScrapedFromTheEngineRootEvenWhenTheURLNamesV1() throws {
        let yaml = Fixture.minimal.replacingOccurrences(of: "http://127.0.0.1:8000", with: "http://127.0.0.1:8000/v1")
        let backend = try #require(try Fixture.load(yaml).backend("b1"))
        #expect(backend.url.path("/v1/chat/completions") == "/v1/chat/completions")
        #expect(backend.metricsURL?.description == "http://127.0.0.1:8000/metrics")
    }

    @Test func partialRoutingSectionsKeepTheOtherDefaults() throws {
        let topology = try Fixture.load(Fixture.minimal + "routing: {retries: {attempts: 0}}\n")
        #expect(topology.routing.retries == RetrySettings(attempts: 0, backoffBaseMs: 250, backoffMaxMs: 8000))
        #expect(topology.routing.timeouts == TimeoutSettings())
    }

    @Test func resilienceSettingsOfBackendsModelsAndTheCatchAll() throws {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends:
              - {name: b1, region: r1, engine: vllm, url: http://127.0.0.1:8000, models: [m1],
                 timeouts: {connect_ms: 300, total_ms: 20000}}
              - {name: b2, region: r1, engine: openai-compatible, url: http://127.0.0.1:8001, models: [m1]}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}], context_fallbacks: [long],
                 timeouts: {first_token_ms: 40000, total_ms: 90000}}
              - {name: long, deployments: [{backend: b2, model: m1}]}
            routing: {timeouts: {idle_ms: 5000}, health: {idle_probe_s: 0}}
            catch_all: {mode: static, content: "Come back soon."}
            """
        let topology = try Fixture.load(yaml)
        #expect(topology.backend("b1")?.timeouts == TimeoutOverrides(connectMs: 300, totalMs: 20000))
        #expect(topology.backend("b2")?.timeouts == TimeoutOverrides())
        let chat = try #require(topology.model("chat"))
        #expect(chat.contextFallbacks == ["long"])
        #expect(chat.timeouts == TimeoutOverrides(firstTokenMs: 40000, totalMs: 90000))
        #expect(topology.routing.timeouts == TimeoutSettings(idleMs: 5000))
        #expect(topology.routing.idleProbeSeconds == 0)
        #expect(topology.catchAll == CatchAll(mode: .static, content: "Come back soon."))
    }

    @Test func anthropicBackendDefaultsToTheAnthropicAPI() throws {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends: [{name: claude, region: r1, engine: anthropic, api_key_env: KEY}]
            models: [{name: sonnet, deployments: [{backend: claude, model: claude-sonnet-4-5}]}]
            """
        let backend = try #require(try Fixture.load(yaml, environment: ["KEY": "k"]).backend("claude"))
        #expect(backend.url.description == "https://api.anthropic.com")
        #expect(backend.api == .anthropic)
        #expect(backend.metricsURL == nil)
        #expect(backend.apiKey == Secret("k"))
    }

    @Test func anchorsAndMergeKeysAreExpanded() throws {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends:
              - &vllm {name: b1, region: r1, engine: vllm, url: http://127.0.0.1:8000, models: [m1]}
              - {<<: *vllm, name: b2, url: http://127.0.0.1:8001}
            models: [{name: m1, deployments: [{backend: b1}, {backend: b2}]}]
            """
        let topology = try Fixture.load(yaml)
        #expect(topology.backend("b2")?.url.port == 8001)
        #expect(topology.backend("b2")?.models == ["m1"])
        #expect(topology.model("m1")?.deployments.map(\.model) == ["m1", "m1"])
    }

    @Test func emulatedBackendWithPortZeroGetsItsMetricsURLLater() throws {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends:
              - {name: e1, region: r1, engine: emulated, url: http://127.0.0.1:0/base, models: [m1], emulate: {profile: instant}}
            models: [{name: m1, deployments: [{backend: e1}]}]
            """
        let backend = try #require(try Fixture.load(yaml).backend("e1"))
        #expect(backend.url == UpstreamURL(tls: false, host: "127.0.0.1", port: 0, basePath: "/base"))
        #expect(backend.metricsURL == nil)
    }
}
