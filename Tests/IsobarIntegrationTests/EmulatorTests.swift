import IsobarEmulator
import IsobarModel
import IsobarWire
import NIOCore
import Synchronization
import Testing

@Suite("Emulated engine timed by the engine model")
struct EmulatorTests {
    static func configuration(step: Double, seqs: Int = 256) -> EmulatorConfiguration {
        var profile = EngineProfile.fixed
        profile.stepTime = .fixed(seconds: step)
        profile.maxNumSeqs = seqs
        return EmulatorConfiguration(profile: profile, models: ["m"], name: "emu")
    }

    @Test("a stream's tokens come one engine step apart")
    func tokensPerStep() async throws {
        try await Harness.withEmulator(Self.configuration(step: 0.05)) { port in
            let response = try await TestHTTPClient.send(
                port: port,
                path: "/v1/chat/completions",
                body: chatBody(model: "m", stream: true, maxTokens: 5),
                group: Harness.group
            )
            let content = response.events.compactMap { try? JSON(parsing: $0) }
                .compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.filter { !$0.isEmpty }
            #expect(content.count == 5)
            #expect(response.events.last == "[DONE]")
            // Five steps of 50 ms: first token after one step, the last after five.
            let first = try #require(response.parts.first?.at)
            let last = try #require(response.parts.last?.at)
            #expect(first >= .milliseconds(40))
            #expect(last - first >= .milliseconds(150))
        }
    }

    @Test("the batch cap queues requests, and /metrics shows running, waiting and the cache config")
    func metricsShowTheQueue() async throws {
        try await Harness.withEmulator(Self.configuration(step: 0.05, seqs: 2)) { port in
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for _ in 0..<5 {
                    tasks.addTask {
                        _ = try await TestHTTPClient.send(
                            port: port,
                            path: "/v1/chat/completions",
                            body: chatBody(model: "m", maxTokens: 20),
                            group: Harness.group
                        )
                    }
                }
                // All five arrive within a few steps (sooner than that on an idle machine).
                let queued = try await Harness.eventually(timeout: .seconds(2)) {
                    let text = try await TestHTTPClient.send(
                        port: port,
                        method: .GET,
                        path: "/metrics",
                        group: Harness.group
                    )
                    .text
                    return text.contains(#"vllm:num_requests_waiting{model_name="m"} 3.0"#)
                        && text.contains(#"vllm:num_requests_running{model_name="m"} 2.0"#)
                }
                #expect(queued)
                let metrics = try await TestHTTPClient.send(
                    port: port,
                    method: .GET,
                    path: "/metrics",
                    group: Harness.group
                )
                .text
                #expect(metrics.contains(#"vllm:cache_config_info{block_size="16",num_gpu_blocks="1048576""#))
                try await tasks.waitForAll()
            }
            let after = try await TestHTTPClient.send(port: port, method: .GET, path: "/metrics", group: Harness.group)
                .text
            #expect(after.contains(#"vllm:generation_tokens_total{model_name="m"} 100.0"#))
            #expect(after.contains(#"vllm:num_requests_running{model_name="m"} 0.0"#))
        }
    }

    @Test("a prompt larger than the KV cache is refused with a context-length error")
    func contextLength() async throws {
        var configuration = Self.configuration(step: 0.01)
        configuration.profile.numBlocks = 4
        try await Harness.withEmulator(configuration) { port in
            let body = chatBody(model: "m").replacingOccurrences(
                of: "Say hi",
                with: String(repeating: "word ", count: 200)
            )
            let response = try await TestHTTPClient.send(
                port: port,
                path: "/v1/chat/completions",
                body: body,
                group: Harness.group
            )
            #expect(response.status == 400)
            #expect(try JSON(parsing: response.body)["error"]?["code"] == "context_length_exceeded")
        }
    }
}
