import IsobarGateway
import IsobarModel
import IsobarWire
import Testing

@Suite("Load-aware balancing on loopback")
struct BalancingTests {
    /// A vLLM exposition with `waiting` queued and `running` batched requests.
    static func vllm(waiting: Int, running: Int, kvUsage: Double) -> FaultUpstream.Behaviour {
        ScraperTests.serve(
            Array(
                """
                # TYPE vllm:num_requests_waiting gauge
                vllm:num_requests_waiting{model_name="m"} \(waiting)
                # TYPE vllm:num_requests_running gauge
                vllm:num_requests_running{model_name="m"} \(running)
                # TYPE vllm:kv_cache_usage_perc gauge
                vllm:kv_cache_usage_perc{model_name="m"} \(kvUsage)

                """.utf8
            )
        )
    }

    /// Two vLLM backends behind one model group under `policy`.
    static func topology(busy: Int, idle: Int, policy: String, debugHeader: Bool) throws -> Topology {
        try Harness.topology(
            Harness.yaml(
                backends: """
                      - {name: busy, region: local, engine: vllm, url: "http://127.0.0.1:\(busy)", models: [m]}
                      - {name: idle, region: local, engine: vllm, url: "http://127.0.0.1:\(idle)", models: [m]}
                    """,
                models: """
                      - name: chat
                        policy: \(policy)
                        deployments: [{backend: busy, model: m}, {backend: idle, model: m}]
                    """,
                routing: "routing: {debug_header: \(debugHeader)}"
            )
        )
    }

    /// Runs `body` with a node over a busy and an idle backend once the node has scraped both.
    static func withScrapedPair(
        policy: String,
        debugHeader: Bool = false,
        _ body: @Sendable (_ port: Int, _ busy: FaultUpstream, _ idle: FaultUpstream) async throws -> Void
    ) async throws {
        let busy = FaultUpstream(metrics: vllm(waiting: 40, running: 64, kvUsage: 0.97), ScraperTests.completion)
        let idle = FaultUpstream(metrics: vllm(waiting: 0, running: 0, kvUsage: 0.01), ScraperTests.completion)
        try await Harness.withUpstreams([busy, idle]) { ports in
            let topology = try topology(busy: ports[0], idle: ports[1], policy: policy, debugHeader: debugHeader)
            try await Harness.withGateway(topology, scraping: ScraperConfiguration(interval: .milliseconds(50))) {
                port in
                let scraped = try await Harness.eventually(timeout: .seconds(5)) {
                    let x = try await ScraperTests.nodeMetrics(port)
                    return ScraperTests.scraped(x, "busy", "waiting") == 40
                        && ScraperTests.scraped(x, "idle", "waiting") == 0
                }
                try #require(scraped)
                try await body(port, busy, idle)
            }
        }
    }

    static func chat(_ port: Int) async throws -> TestResponse {
        try await TestHTTPClient.send(
            port: port,
            path: "/v1/chat/completions",
            body: chatBody(model: "chat", maxTokens: 16),
            group: Harness.group
        )
    }

    @Test("isobar sends new requests to the idle engine, not to the one whose scrape shows a long queue")
    func scrapedQueueSteers() async throws {
        try await Self.withScrapedPair(policy: "isobar") { port, busy, idle in
            for _ in 0..<8 {
                let response = try await Self.chat(port)
                #expect(response.status == 200)
            }
            #expect(idle.received.count == 8)
            #expect(busy.received.isEmpty)
            let x = try await ScraperTests.nodeMetrics(port)
            #expect(x.value("isobar_picks_total", where: [("backend", "idle"), ("reason", "best")]) == 8)
            #expect(x.value("isobar_picks_total", where: [("backend", "busy"), ("reason", "best")]) == nil)
        }
    }

    @Test("least-request, blind to scraped load, keeps sending to the busy engine: the contrast isobar removes")
    func leastRequestIsBlind() async throws {
        try await Self.withScrapedPair(policy: "least-request") { port, busy, _ in
            // Ties are broken at random: 32 sequential requests leave busy fewer than 4 with p ≈ 1e-6.
            for _ in 0..<32 {
                let response = try await Self.chat(port)
                #expect(response.status == 200)
            }
            #expect(busy.received.count >= 4)
        }
    }

    @Test("/metrics shows each endpoint's ledger, learned rates, last expected TTFT, staleness and breaker")
    func endpointMetrics() async throws {
        try await Self.withScrapedPair(policy: "isobar") { port, _, _ in
            let response = try await Self.chat(port)
            #expect(response.status == 200)
            let x = try await ScraperTests.nodeMetrics(port)
            for backend in ["busy", "idle"] {
                for kind in ["awaiting_first_token", "prefill_tokens", "decode_streams"] {
                    #expect(x.value("isobar_endpoint_ledger", where: [("backend", backend), ("kind", kind)]) == 0)
                }
                let prefill = x.value(
                    "isobar_endpoint_rate_tokens_per_second",
                    where: [("backend", backend), ("kind", "prefill")]
                )
                #expect((prefill ?? 0) > 0)
                #expect(x.value("isobar_endpoint_stale", where: [("backend", backend)]) == 0)
                #expect(x.value("isobar_endpoint_breaker", where: [("backend", backend)]) == 0)
                #expect(x.value("isobar_in_flight_requests", where: [("backend", backend)]) == 0)
            }
            let busy = try #require(x.value("isobar_endpoint_expected_ttft_seconds", where: [("backend", "busy")]))
            let idle = try #require(x.value("isobar_endpoint_expected_ttft_seconds", where: [("backend", "idle")]))
            #expect(busy > idle)
        }
    }

    @Test("routing.debug_header answers x-isobar-route naming the policy, the pick and every candidate")
    func debugHeader() async throws {
        try await Self.withScrapedPair(policy: "isobar", debugHeader: true) { port, _, _ in
            let response = try await Self.chat(port)
            #expect(response.status == 200)
            let route = try #require(response.header("x-isobar-route"))
            #expect(route.hasPrefix("policy=isobar; backend=idle; pick=best; attempt=1; reason=initial; candidates="))
            #expect(route.contains("busy:0req/"))
            #expect(route.contains("idle:0req/"))
        }
        try await Self.withScrapedPair(policy: "isobar") { port, _, _ in
            let response = try await Self.chat(port)
            #expect(response.header("x-isobar-route") == nil)
        }
    }

    @Test("/v1/regions/{region}/health shows each backend's state, in-flight count and scraped load; unknown is 404")
    func regionHealth() async throws {
        try await Self.withScrapedPair(policy: "isobar") { port, _, _ in
            let health = try await TestHTTPClient.send(
                port: port,
                method: .GET,
                path: "/v1/regions/local/health",
                group: Harness.group
            )
            #expect(health.status == 200)
            let body = try JSON(parsing: health.body)
            #expect(body["status"] == "ok")
            #expect(body["observed_by"] == "n1")
            guard case .array(let backends)? = body["backends"] else {
                Issue.record("no backends in \(health.text)")
                return
            }
            #expect(backends.map { $0["name"] } == ["busy", "idle"])
            #expect(backends.allSatisfy { $0["state"] == "closed" && $0["usable"] == true })
            #expect(backends.first?["scraped"]?["waiting"] == 40)
            #expect(backends.first?["scraped"]?["stale"] == false)

            let regions = try await TestHTTPClient.send(
                port: port,
                method: .GET,
                path: "/v1/regions",
                group: Harness.group
            )
            #expect(try JSON(parsing: regions.body)["data"]?[0]?["name"] == "local")
            let unknown = try await TestHTTPClient.send(
                port: port,
                method: .GET,
                path: "/v1/regions/mars/health",
                group: Harness.group
            )
            #expect(unknown.status == 404)
            #expect(unknown.text.contains("regions: local"))
        }
    }
}
