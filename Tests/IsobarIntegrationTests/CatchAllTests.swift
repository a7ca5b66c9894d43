import IsobarModel
import IsobarWire
import Testing

/// The catch-all's answers through a node: a configured answer that every client can parse and tell from
/// a model's, and the last good answer to an identical request.
@Suite("Catch-all answers")
struct CatchAllTests {
    static func topology(port: Int, catchAll: String) throws -> Topology {
        try Harness.topology(
            Harness.yaml(
                backends: """
                      - {name: up, region: local, engine: openai-compatible, url: "http://127.0.0.1:\(port)", models: [m]}
                    """,
                models: "  - {name: chat, deployments: [{backend: up, model: m}]}",
                routing: "routing: {retries: {attempts: 0}}\n" + catchAll
            )
        )
    }

    static func post(_ port: Int, _ body: String, path: String = "/v1/chat/completions") async throws -> TestResponse {
        try await TestHTTPClient.send(port: port, path: path, body: body, group: Harness.group)
    }

    @Test("static: a valid completion of the configured content, whole or streamed, OpenAI or Anthropic, marked")
    func staticAnswer() async throws {
        let dead = try await Harness.closedPort()
        let topology = try Self.topology(
            port: dead,
            catchAll: #"catch_all: {mode: static, content: "Come back soon."}"#
        )
        try await Harness.withGateway(topology) { port in
            let whole = try await Self.post(port, chatBody(model: "chat"))
            #expect(whole.status == 200)
            #expect(whole.header("x-isobar-catch-all") == "static")
            let json = try JSON(parsing: whole.body)
            #expect(json["object"] == "chat.completion")
            #expect(json["system_fingerprint"] == "isobar-catch-all")
            #expect(json["model"] == "chat")
            #expect(json["choices"]?[0]?["message"]?["content"] == "Come back soon.")
            #expect(json["choices"]?[0]?["finish_reason"] == "stop")
            #expect(json["usage"]?["total_tokens"] == 0, "nothing generated, nothing billed")

            let stream = try await Self.post(port, chatBody(model: "chat", stream: true, includeUsage: true))
            #expect(stream.status == 200)
            #expect(stream.header("content-type") == "text/event-stream")
            #expect(GatewayStreamingTests.content(stream) == "Come back soon.")
            #expect(stream.events.last == "[DONE]")
            let chunks = stream.events.dropLast().compactMap { try? JSON(parsing: $0) }
            #expect(chunks.allSatisfy { $0["system_fingerprint"] == "isobar-catch-all" })
            #expect(chunks.last?["usage"]?["completion_tokens"] == 0)

            let messages = try await Self.post(
                port,
                #"{"model":"chat","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
                path: "/v1/messages"
            )
            #expect(messages.status == 200)
            let message = try JSON(parsing: messages.body)
            #expect(message["type"] == "message")
            #expect(message["content"]?[0]?["text"] == "Come back soon.")
            #expect(message["stop_reason"] == "end_turn")

            let embeddings = try await Self.post(port, #"{"model":"chat","input":"hi"}"#, path: "/v1/embeddings")
            #expect(embeddings.status == 503, "no static answer for embeddings")
            #expect(embeddings.header("x-should-retry") == "false")
            let metrics = try await TestHTTPClient.send(
                port: port,
                method: .GET,
                path: "/metrics",
                group: Harness.group
            )
            #expect(metrics.text.contains(#"isobar_catch_all_total{model="chat",answer="static"} 3"#))
            #expect(metrics.text.contains(#"isobar_catch_all_total{model="chat",answer="busy"} 1"#))
        }
    }

    @Test("cache: the last good answer to the identical request is replayed, streams included; others are busy")
    func cachedAnswer() async throws {
        let flaky = FaultUpstream { request, writer, index in
            guard index < 2 else {
                Upstream.json(writer, status: .serviceUnavailable, #"{"error":{"message":"down"}}"#)
                return
            }
            if Upstream.wantsStream(request) {
                Upstream.stream(writer, request: request, model: "m", tokens: ["cached ", "words"])
            } else {
                Upstream.json(writer, Upstream.completion(model: "m", content: "cached answer"))
            }
        }
        try await Harness.withUpstreams([flaky]) { ports in
            let topology = try Self.topology(port: ports[0], catchAll: "catch_all: {mode: cache}")
            try await Harness.withGateway(topology) { port in
                let question = chatBody(model: "chat")
                let first = try await Self.post(port, question)
                #expect(first.status == 200 && first.header("x-isobar-catch-all") == nil)
                let streamed = chatBody(model: "chat", stream: true)
                let firstStream = try await Self.post(port, streamed)
                #expect(GatewayStreamingTests.content(firstStream) == "cached words")

                let again = try await Self.post(port, question)
                #expect(again.status == 200)
                #expect(again.header("x-isobar-catch-all") == "cache")
                #expect(again.body == first.body)
                let againStream = try await Self.post(port, streamed)
                #expect(againStream.header("x-isobar-catch-all") == "cache")
                #expect(againStream.events == firstStream.events)

                let other = try await Self.post(port, chatBody(model: "chat", maxTokens: 7))
                #expect(other.status == 503, "no answer for a request never answered")
                #expect(flaky.received.count == 5)
            }
        }
    }
}
