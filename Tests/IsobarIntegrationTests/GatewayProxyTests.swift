import IsobarModel
import IsobarWire
import NIOCore
import NIOHTTP1
import Testing

@Suite("Gateway proxy on loopback")
struct GatewayProxyTests {
    static func oneBackend(port: Int, routing: String = "") throws -> Topology {
        try Harness.topology(
            Harness.yaml(
                backends:
                    "  - {name: up, region: local, engine: vllm, url: \"http://127.0.0.1:\(port)\", models: [m-up]}",
                models: "  - {name: chat, deployments: [{backend: up, model: m-up}]}",
                routing: routing
            )
        )
    }

    @Test("the body is forwarded as bytes with only the model rewritten; the answer comes back unchanged")
    func forwardsBytes() async throws {
        let upstream = FaultUpstream { _, writer, _ in
            Upstream.json(writer, Upstream.completion(model: "m-up"))
        }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.oneBackend(port: ports[0])) { port in
                let body =
                    #"{ "messages" : [ {"role":"user","content":"h\u00e9llo \"quoted\""} ], "seed": 18446744073709551615, "model" :  "chat", "temperature":0.70 }"#
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    headers: [("x-request-id", "trace-123")],
                    body: body,
                    group: Harness.group
                )
                #expect(response.status == 200)
                #expect(response.text == Upstream.completion(model: "m-up"))
                #expect(response.header("x-request-id") == "trace-123")
                #expect(response.header("x-isobar-backend") == "up")
                let received = try #require(upstream.received.first)
                #expect(received.path == "/v1/chat/completions")
                #expect(
                    String(decoding: received.body, as: UTF8.self)
                        == body.replacingOccurrences(of: #""chat""#, with: #""m-up""#)
                )
                #expect(received.headers.first(name: "x-request-id") == "trace-123")
            }
        }
    }

    @Test("a request without x-request-id gets a minted one, and so does every error")
    func mintsRequestIDs() async throws {
        let upstream = FaultUpstream { _, writer, _ in Upstream.json(writer, Upstream.completion(model: "m-up")) }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.oneBackend(port: ports[0])) { port in
                let ok = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat"),
                    group: Harness.group
                )
                let bad = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: "{",
                    group: Harness.group
                )
                let ids = [ok.header("x-request-id"), bad.header("x-request-id")].compactMap { $0 }
                #expect(ids.count == 2 && ids[0] != ids[1])
                #expect(upstream.received.first?.headers.first(name: "x-request-id") == ids[0])
            }
        }
    }

    @Test(
        "client errors: malformed JSON 400, wrong field type 400 with param, unknown model 404 listing models, 405, 404 route"
    )
    func clientErrors() async throws {
        let upstream = FaultUpstream { _, writer, _ in Upstream.json(writer, Upstream.completion(model: "m-up")) }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.oneBackend(port: ports[0])) { port in
                let g = Harness.group
                let malformed = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: #"{"model":"chat","messages":[1,,2]}"#,
                    group: g
                )
                #expect(malformed.status == 400)
                #expect(try JSON(parsing: malformed.body)["error"]?["type"] == "invalid_request_error")

                let wrongType = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: #"{"model":"chat","max_tokens":"ten"}"#,
                    group: g
                )
                #expect(wrongType.status == 400)
                #expect(try JSON(parsing: wrongType.body)["error"]?["param"] == "max_tokens")

                let unknown = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "gpt-7"),
                    group: g
                )
                #expect(unknown.status == 404)
                let message = try JSON(parsing: unknown.body)["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("gpt-7") && message.contains("chat"))

                let method = try await TestHTTPClient.send(
                    port: port,
                    method: .GET,
                    path: "/v1/chat/completions",
                    group: g
                )
                #expect(method.status == 405)
                #expect(method.header("allow") == "POST")

                let route = try await TestHTTPClient.send(port: port, method: .GET, path: "/v2/nothing", group: g)
                #expect(route.status == 404)
                #expect(upstream.received.isEmpty)

                // Refused API requests are counted, and invented model names never become label values.
                let metrics = try await TestHTTPClient.send(port: port, method: .GET, path: "/metrics", group: g).text
                #expect(metrics.contains(#"isobar_requests_total{model="unknown",backend="none",status="400"} 2"#))
                #expect(metrics.contains(#"isobar_requests_total{model="unknown",backend="none",status="404"} 1"#))
                #expect(metrics.contains(#"isobar_requests_total{model="unknown",backend="none",status="405"} 1"#))
                #expect(!metrics.contains("gpt-7"))
            }
        }
    }

    @Test("a body over the limit is refused with 413 and never reaches a backend")
    func bodyLimit() async throws {
        let upstream = FaultUpstream { _, writer, _ in Upstream.json(writer, Upstream.completion(model: "m-up")) }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(
                try Self.oneBackend(port: ports[0], routing: "limits: {max_request_body_bytes: 4096}")
            ) { port in
                let big = chatBody(model: "chat").replacingOccurrences(
                    of: "Say hi",
                    with: String(repeating: "x", count: 5000)
                )
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: big,
                    group: Harness.group
                )
                #expect(response.status == 413)
                #expect(try JSON(parsing: response.body)["error"]?["code"] == "request_too_large")
                #expect(upstream.received.isEmpty)
            }
        }
    }

    @Test(
        "upstream statuses: 400 passes through once; 500 is retried, then the catch-all answers 503 with x-should-retry false"
    )
    func upstreamStatuses() async throws {
        let rejecting = FaultUpstream { _, writer, _ in
            Upstream.json(
                writer,
                status: .badRequest,
                #"{"error":{"message":"max_tokens too large","type":"invalid_request_error","param":"max_tokens","code":null}}"#
            )
        }
        let failing = FaultUpstream { _, writer, _ in
            Upstream.json(writer, status: .internalServerError, #"{"error":{"message":"boom"}}"#)
        }
        try await Harness.withUpstreams([rejecting, failing]) { ports in
            let routing = "routing: {retries: {attempts: 1, backoff_base_ms: 10, backoff_max_ms: 20}}"
            try await Harness.withGateway(try Self.oneBackend(port: ports[0], routing: routing)) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat"),
                    group: Harness.group
                )
                #expect(response.status == 400)
                let error = try JSON(parsing: response.body)["error"]
                #expect(error?["message"] == "max_tokens too large")
                #expect(error?["param"] == "max_tokens")
                #expect(rejecting.received.count == 1)
            }
            try await Harness.withGateway(try Self.oneBackend(port: ports[1], routing: routing)) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat"),
                    group: Harness.group
                )
                #expect(response.status == 503)
                #expect(response.header("x-should-retry") == "false")
                let error = try JSON(parsing: response.body)["error"]
                #expect(error?["code"] == "no_backend_available")
                #expect(error?["message"]?.stringValue?.contains("backend 'up' failed (HTTP 500: boom)") == true)
                #expect(failing.received.count == 2)
                let metrics = try await TestHTTPClient.send(
                    port: port,
                    method: .GET,
                    path: "/metrics",
                    group: Harness.group
                )
                #expect(metrics.text.contains(#"isobar_retries_total{backend="up",reason="status_500"} 1"#))
            }
        }
    }

    @Test(
        "an exhausted 429 keeps its status and retry-after; an unreachable backend is busy 503; another deployment takes over"
    )
    func rateLimitAndFailover() async throws {
        let limited = FaultUpstream { _, writer, _ in
            Upstream.json(
                writer,
                status: .tooManyRequests,
                #"{"error":{"message":"slow down","type":"rate_limit_error"}}"#,
                headers: [("retry-after", "7")]
            )
        }
        let healthy = FaultUpstream { _, writer, _ in Upstream.json(writer, Upstream.completion(model: "m-ok")) }
        try await Harness.withUpstreams([limited, healthy]) { ports in
            let dead = try await Harness.closedPort()
            let topology = try Harness.topology(
                Harness.yaml(
                    backends: """
                          - {name: limited, region: local, engine: vllm, url: "http://127.0.0.1:\(ports[0])", models: [m]}
                          - {name: dead, region: local, engine: vllm, url: "http://127.0.0.1:\(dead)", models: [m]}
                          - {name: healthy, region: local, engine: vllm, url: "http://127.0.0.1:\(ports[1])", models: [m-ok]}
                        """,
                    models: """
                          - {name: limited, deployments: [{backend: limited, model: m}]}
                          - {name: dead, deployments: [{backend: dead, model: m}]}
                          - {name: resilient, deployments: [{backend: dead, model: m}, {backend: healthy, model: m-ok}], policy: round-robin}
                        """,
                    routing: "routing: {retries: {attempts: 0}}"
                )
            )
            try await Harness.withGateway(topology) { port in
                let g = Harness.group
                let rateLimited = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "limited"),
                    group: g
                )
                #expect(rateLimited.status == 429)
                #expect(rateLimited.header("retry-after") == "7")
                #expect(rateLimited.header("x-should-retry") == "false")
                #expect(rateLimited.text.contains("slow down"))

                let unreachable = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "dead"),
                    group: g
                )
                #expect(unreachable.status == 503)
                #expect(unreachable.header("x-isobar-backend") == "dead")

                for _ in 0..<4 {
                    let response = try await TestHTTPClient.send(
                        port: port,
                        path: "/v1/chat/completions",
                        body: chatBody(model: "resilient"),
                        group: g
                    )
                    #expect(response.status == 200)
                    #expect(response.header("x-isobar-backend") == "healthy")
                }
            }
        }
    }

    @Test("a model whose deployments all fail falls back to its fallback model, whose name reaches the upstream")
    func fallsBackToAnotherModel() async throws {
        let failing = FaultUpstream { _, writer, _ in
            Upstream.json(writer, status: .serviceUnavailable, #"{"error":{"message":"overloaded"}}"#)
        }
        let small = FaultUpstream { _, writer, _ in Upstream.json(writer, Upstream.completion(model: "small-m")) }
        try await Harness.withUpstreams([failing, small]) { ports in
            let topology = try Harness.topology(
                Harness.yaml(
                    backends: """
                          - {name: big, region: local, engine: vllm, url: "http://127.0.0.1:\(ports[0])", models: [big-m]}
                          - {name: small, region: local, engine: vllm, url: "http://127.0.0.1:\(ports[1])", models: [small-m]}
                        """,
                    models: """
                          - {name: chat, deployments: [{backend: big, model: big-m}], fallbacks: [chat-small]}
                          - {name: chat-small, deployments: [{backend: small, model: small-m}]}
                        """,
                    routing: "routing: {retries: {attempts: 0}}"
                )
            )
            try await Harness.withGateway(topology) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat"),
                    group: Harness.group
                )
                #expect(response.status == 200)
                #expect(response.header("x-isobar-backend") == "small")
                #expect(response.text.contains(#""model":"small-m""#))
                #expect(failing.received.count == 1)
                #expect(small.received.count == 1)
                let forwarded = small.received.first.map { String(decoding: $0.body, as: UTF8.self) } ?? ""
                #expect(forwarded.contains(#""small-m""#) && !forwarded.contains(#""chat""#))
                let metrics = try await TestHTTPClient.send(
                    port: port,
                    method: .GET,
                    path: "/metrics",
                    group: Harness.group
                )
                #expect(metrics.text.contains(#"isobar_fallbacks_total{from="big",to="small",reason="status_503"} 1"#))
            }
        }
    }

    @Test("a silent backend is abandoned at the timeout: 504 alone, or the next deployment answers")
    func silentBackend() async throws {
        let silent = FaultUpstream { _, _, _ in }
        let healthy = FaultUpstream { request, writer, _ in
            Upstream.stream(writer, request: request, model: "m-ok", tokens: ["ok"])
        }
        try await Harness.withUpstreams([silent, healthy]) { ports in
            let topology = try Harness.topology(
                Harness.yaml(
                    backends: """
                          - {name: silent, region: local, engine: vllm, url: "http://127.0.0.1:\(ports[0])", models: [m]}
                          - {name: healthy, region: local, engine: vllm, url: "http://127.0.0.1:\(ports[1])", models: [m-ok]}
                        """,
                    models: """
                          - {name: silent, deployments: [{backend: silent, model: m}]}
                          - {name: both, deployments: [{backend: silent, model: m}, {backend: healthy, model: m-ok}], policy: round-robin}
                        """,
                    routing: "routing: {retries: {attempts: 0}, timeouts: {first_token_ms: 300, total_ms: 400}}"
                )
            )
            try await Harness.withGateway(topology) { port in
                let clock = ContinuousClock()
                let start = clock.now
                let alone = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "silent"),
                    group: Harness.group
                )
                #expect(alone.status == 504)
                #expect(clock.now - start < .seconds(2))
            }
            let streaming = try Harness.topology(
                Harness.yaml(
                    backends: """
                          - {name: silent, region: local, engine: vllm, url: "http://127.0.0.1:\(ports[0])", models: [m]}
                          - {name: healthy, region: local, engine: vllm, url: "http://127.0.0.1:\(ports[1])", models: [m-ok]}
                        """,
                    models:
                        "  - {name: both, deployments: [{backend: silent, model: m}, {backend: healthy, model: m-ok}], policy: round-robin}",
                    routing: "routing: {retries: {attempts: 0}, timeouts: {first_token_ms: 300}}"
                )
            )
            try await Harness.withGateway(streaming) { port in
                // Non-streaming answers come whole; a stream is what the first-token timeout guards.
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "both", stream: true),
                    group: Harness.group
                )
                #expect(response.status == 200)
                #expect(response.header("x-isobar-backend") == "healthy")
            }
        }
    }

    @Test("a 200 that is not JSON is a malformed upstream answer: the catch-all answers, naming it")
    func malformedUpstream() async throws {
        let broken = FaultUpstream { _, writer, _ in Upstream.json(writer, "<html>oops</html>") }
        try await Harness.withUpstreams([broken]) { ports in
            try await Harness.withGateway(
                try Self.oneBackend(port: ports[0], routing: "routing: {retries: {attempts: 0}}")
            ) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat"),
                    group: Harness.group
                )
                #expect(response.status == 503)
                #expect(
                    try JSON(parsing: response.body)["error"]?["message"]?.stringValue?.contains("malformed") == true
                )
            }
        }
    }

    @Test("node endpoints: models of the topology, health, readiness and Prometheus metrics")
    func nodeEndpoints() async throws {
        let upstream = FaultUpstream { _, writer, _ in Upstream.json(writer, Upstream.completion(model: "m-up")) }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.oneBackend(port: ports[0])) { port in
                let g = Harness.group
                let models = try await TestHTTPClient.send(port: port, method: .GET, path: "/v1/models", group: g)
                #expect(try JSON(parsing: models.body)["data"]?[0]?["id"] == "chat")
                #expect(
                    try await TestHTTPClient.send(port: port, method: .GET, path: "/health", group: g).status == 200
                )
                #expect(try await TestHTTPClient.send(port: port, method: .GET, path: "/ready", group: g).status == 200)
                _ = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat"),
                    group: g
                )
                let metrics = try await TestHTTPClient.send(port: port, method: .GET, path: "/metrics", group: g).text
                #expect(metrics.contains(#"isobar_requests_total{model="chat",backend="up",status="200"} 1"#))
                #expect(metrics.contains(#"isobar_tokens_total{model="chat",backend="up",kind="completion"} 3"#))
                #expect(metrics.contains("isobar_gateway_overhead_seconds_count 1"))
                #expect(metrics.contains("isobar_request_duration_seconds_bucket"))
                #expect(metrics.contains(#"isobar_in_flight_requests{backend="up"} 0"#))
            }
        }
    }

    @Test("readiness turns false when every backend is unreachable, found by the metrics scrape without traffic")
    func readiness() async throws {
        let dead = try await Harness.closedPort()
        try await Harness.withGateway(try Self.oneBackend(port: dead, routing: "routing: {retries: {attempts: 0}}")) {
            port in
            let g = Harness.group
            let notReady = try await Harness.eventually(timeout: .seconds(5)) {
                try await TestHTTPClient.send(port: port, method: .GET, path: "/ready", group: g).status == 503
            }
            #expect(notReady, "the metrics scrape finds the only backend down")
        }
    }
}

@Suite("Anthropic backends on loopback")
struct AnthropicBackendTests {
    static func topology(port: Int) throws -> Topology {
        try Harness.topology(
            Harness.yaml(
                backends: """
                      - {name: claude, region: local, engine: anthropic, url: "http://127.0.0.1:\(port)", api_key_env: TEST_KEY}
                    """,
                models: "  - {name: sonnet, deployments: [{backend: claude, model: claude-sonnet-4-5}]}",
                routing: "routing: {retries: {attempts: 0}}"
            )
        )
    }

    @Test("an OpenAI request is sent as an Anthropic Messages call with the backend's key, and answered in OpenAI form")
    func translatesBothWays() async throws {
        let upstream = FaultUpstream { _, writer, _ in
            Upstream.json(
                writer,
                #"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi!"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":2}}"#
            )
        }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.topology(port: ports[0])) { port in
                let body =
                    #"{"model":"sonnet","max_tokens":2,"messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"Hello"}]}"#
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: body,
                    group: Harness.group
                )
                #expect(response.status == 200)
                let json = try JSON(parsing: response.body)
                #expect(json["object"] == "chat.completion")
                #expect(json["model"] == "claude-sonnet-4-5")
                #expect(json["choices"]?[0]?["message"]?["content"] == "Hi!")
                #expect(json["choices"]?[0]?["finish_reason"] == "length")
                #expect(json["usage"]?["total_tokens"] == 14)
                let sent = try #require(upstream.received.first)
                #expect(sent.path == "/v1/messages")
                #expect(sent.headers.first(name: "x-api-key") == "sk-test")
                #expect(sent.headers.first(name: "anthropic-version") == "2023-06-01")
                #expect(sent.json?["system"] == "Be brief")
                #expect(sent.json?["model"] == "claude-sonnet-4-5")
            }
        }
    }

    @Test("an Anthropic overload (529) reaches an OpenAI client as 503 in OpenAI's error shape")
    func translatesErrors() async throws {
        let upstream = FaultUpstream { _, writer, _ in
            Upstream.json(
                writer,
                status: HTTPResponseStatus(statusCode: 529),
                #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            )
        }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.topology(port: ports[0])) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "sonnet"),
                    group: Harness.group
                )
                #expect(response.status == 503)
                let error = try #require(try JSON(parsing: response.body)["error"])
                #expect(error["message"]?.stringValue?.contains("(HTTP 529: Overloaded)") == true)
                #expect(response.header("retry-after") != nil)
            }
        }
    }

    @Test("a TLS backend whose certificate cannot be verified is an unreachable backend, not a hang")
    func tlsFailure() async throws {
        // A plain-HTTP server addressed as https: the TLS handshake fails at once.
        let plain = FaultUpstream { _, writer, _ in Upstream.json(writer, "{}") }
        try await Harness.withUpstreams([plain]) { ports in
            let topology = try Harness.topology(
                Harness.yaml(
                    backends:
                        "  - {name: tls, region: local, engine: vllm, url: \"https://127.0.0.1:\(ports[0])\", models: [m]}",
                    models: "  - {name: chat, deployments: [{backend: tls, model: m}]}",
                    routing: "routing: {retries: {attempts: 0}}"
                )
            )
            try await Harness.withGateway(topology) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat"),
                    group: Harness.group
                )
                #expect(response.status == 503)
                let message = try JSON(parsing: response.body)["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("TLS"), "\(message)")
            }
        }
    }
}
