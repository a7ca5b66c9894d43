import IsobarModel
import IsobarWire
import Testing

/// The exact response cache of a model (issue 7): an identical request of the same key is answered from
/// the cache — whole or as a replayed SSE stream — until its TTL; never across keys; only deterministic
/// (`temperature: 0`) requests unless forced.
@Suite("Response cache")
struct ResponseCacheTests {
    static func topology(emulator port: Int, keys: Bool = false) throws -> Topology {
        try Harness.topology(
            Harness.yaml(
                backends: """
                      - {name: gpu, region: local, engine: vllm, url: "http://127.0.0.1:\(port)", models: [m]}
                    """,
                models: """
                      - {name: chat, deployments: [{backend: gpu, model: m}], cache: {enabled: true, ttl_s: 0.5}}
                      - {name: any, deployments: [{backend: gpu, model: m}], cache: {enabled: true, force: true}}
                      - {name: plain, deployments: [{backend: gpu, model: m}]}
                    """,
                routing: keys
                    ? """
                    keys:
                      master: {hash: "\(GovernanceTests.master)"}
                      virtual_keys:
                        - {id: alpha, hash: "\(GovernanceTests.alpha)"}
                        - {id: beta, hash: "\(GovernanceTests.beta)"}
                    """ : ""
            )
        )
    }

    static func post(_ port: Int, _ body: String, key: String? = nil) async throws -> TestResponse {
        try await TestHTTPClient.send(
            port: port,
            path: "/v1/chat/completions",
            headers: key.map { [("authorization", "Bearer \($0)")] } ?? [],
            body: body,
            group: Harness.group
        )
    }

    static let question =
        #"{"model":"chat","temperature":0,"max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#
    /// The same request with its keys in another order and other spacing.
    static let reordered =
        #"{ "messages": [ {"content": "hi", "role": "user"} ], "max_tokens": 4, "temperature": 0, "model": "chat" }"#

    @Test("an identical request is a hit whatever its key order, until the TTL; streams replay as SSE")
    func hitsAndExpiry() async throws {
        try await Harness.withEmulator(EmulatorTests.configuration(step: 0.001)) { emulator in
            try await Harness.withGateway(try Self.topology(emulator: emulator)) { port in
                let first = try await Self.post(port, Self.question)
                #expect(first.status == 200 && first.header("x-isobar-cache") == "miss")
                let again = try await Self.post(port, Self.reordered)
                #expect(again.header("x-isobar-cache") == "hit")
                #expect(again.body == first.body, "the very answer, its id included")

                let streamBody = Self.question.replacingOccurrences(
                    of: #""model":"chat""#,
                    with: #""model":"chat","stream":true"#
                )
                let stream = try await Self.post(port, streamBody)
                #expect(stream.header("x-isobar-cache") == "miss", "a stream is another request")
                let replay = try await Self.post(port, streamBody)
                #expect(replay.header("x-isobar-cache") == "hit")
                #expect(replay.header("content-type") == "text/event-stream")
                #expect(replay.events == stream.events && replay.events.last == "[DONE]")

                try await Task.sleep(for: .milliseconds(700))
                let expired = try await Self.post(port, Self.question)
                #expect(expired.header("x-isobar-cache") == "miss")
                #expect(expired.body != first.body)

                let metrics = try await TestHTTPClient.send(
                    port: port,
                    method: .GET,
                    path: "/metrics",
                    group: Harness.group
                )
                #expect(metrics.text.contains(#"isobar_response_cache_total{model="chat",result="hit"} 2"#))
                #expect(metrics.text.contains(#"isobar_response_cache_total{model="chat",result="miss"} 3"#))
            }
        }
    }

    @Test("sampled requests are not cached unless forced, and models without a cache never are")
    func onlyDeterministicRequests() async throws {
        try await Harness.withEmulator(EmulatorTests.configuration(step: 0.001)) { emulator in
            try await Harness.withGateway(try Self.topology(emulator: emulator)) { port in
                let sampled = #"{"model":"chat","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#
                func cache(_ body: String) async throws -> String? {
                    try await Self.post(port, body).header("x-isobar-cache")
                }
                let sampledResults = [try await cache(sampled), try await cache(sampled)]
                #expect(sampledResults == [nil, nil])
                let forced = sampled.replacingOccurrences(of: #""chat""#, with: #""any""#)
                let forcedResults = [try await cache(forced), try await cache(forced)]
                #expect(forcedResults == ["miss", "hit"])
                let plain = try await cache(Self.question.replacingOccurrences(of: #""chat""#, with: #""plain""#))
                #expect(plain == nil)
            }
        }
    }

    @Test("one key's cached answers are never served to another")
    func tenantsAreApart() async throws {
        try await Harness.withEmulator(EmulatorTests.configuration(step: 0.001)) { emulator in
            try await Harness.withGateway(try Self.topology(emulator: emulator, keys: true)) { port in
                let alpha = try await Self.post(port, Self.question, key: "sk-alpha")
                let again = try await Self.post(port, Self.question, key: "sk-alpha")
                #expect(again.header("x-isobar-cache") == "hit")
                let beta = try await Self.post(port, Self.question, key: "sk-beta")
                #expect(beta.status == 200 && beta.header("x-isobar-cache") == "miss")
                #expect(beta.body != alpha.body)
            }
        }
    }
}
