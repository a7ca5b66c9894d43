import IsobarGateway
import IsobarModel
import IsobarWire
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

@Suite("Streaming relay on loopback")
struct GatewayStreamingTests {
    static let tokens = ["The ", "quick ", "brown ", "fox ", "jumps"]

    static func topology(ports: [Int], routing: String = "routing: {retries: {attempts: 0}}") throws -> Topology {
        let backends = ports.enumerated().map { i, port in
            "  - {name: b\(i), region: local, engine: vllm, url: \"http://127.0.0.1:\(port)\", models: [m\(i)]}"
        }
        let deployments = ports.indices.map { "{backend: b\($0), model: m\($0)}" }.joined(separator: ", ")
        return try Harness.topology(
            Harness.yaml(
                backends: backends.joined(separator: "\n"),
                models: "  - {name: chat, deployments: [\(deployments)], policy: round-robin}",
                routing: routing
            )
        )
    }

    /// The content of the chunks of an SSE body, concatenated.
    static func content(_ response: TestResponse) -> String {
        response.events.compactMap { try? JSON(parsing: $0) }.compactMap {
            $0["choices"]?[0]?["delta"]?["content"]?.stringValue
        }
        .joined()
    }

    @Test("chunks are relayed as they arrive, and the usage chunk the gateway asked for is stripped")
    func relaysAsTheyArrive() async throws {
        let upstream = FaultUpstream { request, writer, _ in
            Upstream.stream(writer, request: request, model: "m0", tokens: Self.tokens, intervalMs: 100)
        }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.topology(ports: ports)) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true),
                    group: Harness.group
                )
                #expect(response.status == 200)
                #expect(response.header("content-type") == "text/event-stream")
                #expect(Self.content(response) == Self.tokens.joined())
                #expect(response.events.last == "[DONE]")
                // Upstream was asked for usage on the client's behalf …
                #expect(upstream.received[0].json?["stream_options"]?["include_usage"] == true)
                // … and the client, which did not ask, never sees a usage chunk.
                #expect(!response.text.contains(#""usage":{"#))
                // Tokens arrived spread out over ~500 ms, not in one burst at the end.
                let first = try #require(response.parts.first?.at)
                let last = try #require(response.parts.last?.at)
                #expect(response.parts.count >= 5)
                #expect(last - first >= .milliseconds(350))
            }
        }
    }

    @Test("a client that asks for usage gets the usage chunk; tokens are accounted either way")
    func usageWhenAsked() async throws {
        let upstream = FaultUpstream { request, writer, _ in
            Upstream.stream(writer, request: request, model: "m0", tokens: Self.tokens)
        }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.topology(ports: ports)) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true, includeUsage: true),
                    group: Harness.group
                )
                let usage = response.events.compactMap { try? JSON(parsing: $0) }.compactMap { $0["usage"] }.filter {
                    !$0.isNull
                }
                #expect(usage.count == 1)
                #expect(usage.first?["completion_tokens"] == 5)
                let metrics = try await TestHTTPClient.send(
                    port: port,
                    method: .GET,
                    path: "/metrics",
                    group: Harness.group
                ).text
                #expect(metrics.contains(#"isobar_tokens_total{model="chat",backend="b0",kind="completion"} 5"#))
                #expect(metrics.contains(#"isobar_time_to_first_token_seconds_count{model="chat",backend="b0"} 1"#))
            }
        }
    }

    @Test("a stream cut after the first token ends with an in-band error and no [DONE]")
    func cutAfterCommit() async throws {
        let upstream = FaultUpstream { request, writer, _ in
            Upstream.stream(writer, request: request, model: "m0", tokens: Self.tokens, cutAfter: 3)
        }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.topology(ports: ports)) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true),
                    group: Harness.group
                )
                #expect(response.status == 200)
                #expect(!response.truncated)
                #expect(Self.content(response) == Self.tokens.prefix(3).joined())
                #expect(!response.events.contains("[DONE]"))
                let error = try #require(response.events.last.flatMap { try? JSON(parsing: $0) }?["error"])
                #expect(error["message"]?.stringValue?.contains("b0") == true)
                let metrics = try await TestHTTPClient.send(
                    port: port,
                    method: .GET,
                    path: "/metrics",
                    group: Harness.group
                ).text
                #expect(metrics.contains(#"isobar_stream_errors_total{backend="b0",reason="reset"} 1"#))
            }
        }
    }

    @Test(
        "a stream that ends cleanly without [DONE] is finalised at once when it finished, and flagged when it did not"
    )
    func endsWithoutDone() async throws {
        let finished = FaultUpstream { request, writer, _ in
            Upstream.stream(writer, request: request, model: "m0", tokens: Self.tokens, done: false)
        }
        let unfinished = FaultUpstream { _, writer, _ in
            Upstream.startStream(writer)
            Upstream.write(writer, Upstream.chunk(model: "m1", content: "half"))
            writer.end()
        }
        try await Harness.withUpstreams([finished, unfinished]) { ports in
            try await Harness.withGateway(try Self.topology(ports: [ports[0]])) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true),
                    group: Harness.group
                )
                #expect(Self.content(response) == Self.tokens.joined())
                #expect(response.events.last == "[DONE]")
            }
            try await Harness.withGateway(try Self.topology(ports: [ports[1]])) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true),
                    group: Harness.group
                )
                #expect(!response.events.contains("[DONE]"))
                #expect(response.events.last.flatMap { try? JSON(parsing: $0) }?["error"] != nil)
            }
        }
    }

    @Test("a stream that fails before its first token fails over invisibly to another deployment")
    func failoverBeforeCommit() async throws {
        let cutEarly = FaultUpstream { request, writer, _ in
            Upstream.stream(writer, request: request, model: "m0", tokens: Self.tokens, cutAfter: 0)
        }
        let healthy = FaultUpstream { request, writer, _ in
            Upstream.stream(writer, request: request, model: "m1", tokens: Self.tokens)
        }
        try await Harness.withUpstreams([cutEarly, healthy]) { ports in
            try await Harness.withGateway(try Self.topology(ports: ports)) { port in
                for _ in 0..<2 {
                    let response = try await TestHTTPClient.send(
                        port: port,
                        path: "/v1/chat/completions",
                        body: chatBody(model: "chat", stream: true),
                        group: Harness.group
                    )
                    #expect(response.status == 200)
                    #expect(response.header("x-isobar-backend") == "b1")
                    #expect(Self.content(response) == Self.tokens.joined())
                    #expect(!response.text.contains("\"error\""))
                }
                #expect(cutEarly.received.count == 1)
            }
        }
    }

    @Test("a backend that answers a stream request with plain JSON is failed over, not passed on as an empty stream")
    func jsonInsteadOfStream() async throws {
        let ignoresStream = FaultUpstream { _, writer, _ in Upstream.json(writer, Upstream.completion(model: "m0")) }
        let streams = FaultUpstream { request, writer, _ in
            Upstream.stream(writer, request: request, model: "m1", tokens: Self.tokens)
        }
        try await Harness.withUpstreams([ignoresStream, streams]) { ports in
            try await Harness.withGateway(try Self.topology(ports: ports)) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true),
                    group: Harness.group
                )
                #expect(response.header("content-type") == "text/event-stream")
                #expect(Self.content(response) == Self.tokens.joined())
                #expect(ignoresStream.received.count == 1)
            }
        }
    }

    @Test(
        "bytes an upstream sends after [DONE] are not relayed, and an upstream that never ends its response is let go"
    )
    func afterDone() async throws {
        let lingers = FaultUpstream { _, writer, _ in
            Upstream.startStream(writer)
            Upstream.write(
                writer,
                Upstream.chunk(model: "m0", content: "hi") + Upstream.chunk(model: "m0", finish: "stop")
            )
            Upstream.write(writer, "data: [DONE]\n\n")
            Upstream.write(writer, "data: {not json}\n\n")
            // The HTTP response is never ended.
        }
        try await Harness.withUpstreams([lingers]) { ports in
            try await Harness.withGateway(try Self.topology(ports: ports)) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true),
                    group: Harness.group
                )
                #expect(response.events.last == "[DONE]")
                #expect(!response.text.contains("not json"))
                let released = await Harness.eventually(timeout: .seconds(4)) { lingers.clientClosedCount == 1 }
                #expect(released)
                let metrics = try await TestHTTPClient.send(
                    port: port,
                    method: .GET,
                    path: "/metrics",
                    group: Harness.group
                ).text
                #expect(!metrics.contains("isobar_stream_errors_total{"))
            }
        }
    }

    @Test("a client that disconnects mid-stream cancels the upstream request")
    func clientDisconnectCancelsUpstream() async throws {
        let upstream = FaultUpstream { request, writer, _ in
            Upstream.stream(
                writer,
                request: request,
                model: "m0",
                tokens: Array(repeating: "tok ", count: 100),
                intervalMs: 50
            )
        }
        try await Harness.withUpstreams([upstream]) { ports in
            try await Harness.withGateway(try Self.topology(ports: ports)) { port in
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true),
                    group: Harness.group
                ) { part in !String(buffer: part).contains("tok ") }
                #expect(response.truncated)
                let cancelled = await Harness.eventually { upstream.clientClosedCount == 1 }
                #expect(cancelled)
                let metrics = try await TestHTTPClient.send(
                    port: port,
                    method: .GET,
                    path: "/metrics",
                    group: Harness.group
                ).text
                #expect(metrics.contains(#"isobar_in_flight_requests{backend="b0"} 0"#))
                #expect(metrics.contains(#"isobar_requests_total{model="chat",backend="b0",status="499"} 1"#))
            }
        }
    }

    @Test("a stream that stalls after its first token is ended by the idle timeout with an error event")
    func idleTimeout() async throws {
        let stalls = FaultUpstream { _, writer, _ in
            Upstream.startStream(writer)
            Upstream.write(writer, Upstream.chunk(model: "m0", content: "hello"))
        }
        try await Harness.withUpstreams([stalls]) { ports in
            let routing = "routing: {retries: {attempts: 0}, timeouts: {idle_ms: 300}}"
            try await Harness.withGateway(try Self.topology(ports: ports, routing: routing)) { port in
                let clock = ContinuousClock()
                let start = clock.now
                let response = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true),
                    group: Harness.group
                )
                #expect(clock.now - start < .seconds(2))
                #expect(Self.content(response) == "hello")
                #expect(response.events.last?.contains("idle timeout") == true)
                // The upstream sees the gateway walk away a moment after the client sees the error event.
                let closed = await Harness.eventually(timeout: .seconds(2)) { stalls.clientClosedCount == 1 }
                #expect(closed)
            }
        }
    }
}

@Suite("Graceful shutdown")
struct GracefulShutdownTests {
    @Test("on graceful shutdown a node stops accepting but lets a stream in flight finish")
    func drainsStreams() async throws {
        let upstream = FaultUpstream { request, writer, _ in
            Upstream.stream(
                writer,
                request: request,
                model: "m0",
                tokens: Array(repeating: "t ", count: 10),
                intervalMs: 60
            )
        }
        try await Harness.withUpstreams([upstream]) { ports in
            let topology = try GatewayStreamingTests.topology(ports: ports)
            let node = try GatewayNode(
                topology: topology,
                node: topology.nodes[0].name,
                group: Harness.group,
                logger: Harness.logger
            )
            let services = ServiceGroup(services: [node], logger: Harness.logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await services.run() }
                let port = try await node.localAddress.port!
                let started = AsyncStream<Void>.makeStream()
                tasks.addTask {
                    let response = try await TestHTTPClient.send(
                        port: port,
                        path: "/v1/chat/completions",
                        body: chatBody(model: "chat", stream: true),
                        group: Harness.group
                    ) { _ in
                        started.continuation.yield()
                        return true
                    }
                    #expect(response.events.last == "[DONE]")
                    #expect(GatewayStreamingTests.content(response) == String(repeating: "t ", count: 10))
                }
                for await _ in started.stream { break }
                await services.triggerGracefulShutdown()
                try await Task.sleep(for: .milliseconds(100))
                await #expect(throws: (any Error).self) {
                    _ = try await TestHTTPClient.send(port: port, method: .GET, path: "/health", group: Harness.group)
                }
                try await tasks.waitForAll()
            }
        }
    }
}
