import IsobarModel
import IsobarWire
import NIOHTTP1
import Testing

/// Virtual keys at a node (issue 7): authentication, allowed models, rate limits with OpenAI's headers,
/// budgets priced per deployment, concurrency, and the master key's usage report.
@Suite("Virtual keys, limits and budgets")
struct GovernanceTests {
    /// `printf %s sk-alpha | sha256sum` and so on, computed outside the code under test.
    static let alpha = "sha256:2179e632e89277f18aa600491b68ad55121fd6caa045e047fdeb426088a5a5f1"
    static let beta = "sha256:c29d79ad08b23ba5095b823d0b2e777320983be14c1150de96d07a86da5cd78c"
    static let master = "sha256:3b69a285cbd23f85131f55dfcac89d7d58835845072500d7d408898ad9c39e93"

    static func topology(emulator port: Int, keys: String) throws -> Topology {
        try Harness.topology(
            Harness.yaml(
                backends: """
                      - {name: gpu, region: local, engine: vllm, url: "http://127.0.0.1:\(port)", models: [m],
                         price: {input_per_mtok: 1000000, output_per_mtok: 1000000}}
                    """,
                models: """
                      - {name: chat, deployments: [{backend: gpu, model: m}]}
                      - {name: other, deployments: [{backend: gpu, model: m}]}
                    """,
                routing: "keys:\n  master: {hash: \"\(master)\"}\n" + keys
            )
        )
    }

    static func post(
        _ port: Int,
        key: String?,
        header: String = "authorization",
        body: String? = nil
    )
        async throws -> TestResponse
    {
        var headers: [(String, String)] = []
        if let key { headers.append((header, header == "authorization" ? "Bearer \(key)" : key)) }
        return try await TestHTTPClient.send(
            port: port,
            path: "/v1/chat/completions",
            headers: headers,
            body: body ?? chatBody(model: "chat", maxTokens: 4),
            group: Harness.group
        )
    }

    static func get(_ port: Int, _ path: String, key: String?) async throws -> TestResponse {
        try await TestHTTPClient.send(
            port: port,
            method: .GET,
            path: path,
            headers: key.map { [("authorization", "Bearer \($0)")] } ?? [],
            group: Harness.group
        )
    }

    @Test("missing, wrong and malformed keys get 401; a key gets only its models; the master key only admin")
    func authentication() async throws {
        try await Harness.withEmulator(EmulatorTests.configuration(step: 0.001)) { emulator in
            let keys = """
                  virtual_keys:
                    - {id: alpha, hash: "\(Self.alpha)", models: [chat]}
                """
            try await Harness.withGateway(try Self.topology(emulator: emulator, keys: keys)) { port in
                let missing = try await Self.post(port, key: nil)
                #expect(missing.status == 401)
                let error = try JSON(parsing: missing.body)["error"]
                #expect(error?["code"] == "missing_api_key" && error?["type"] == "authentication_error")
                #expect(try await Self.post(port, key: "sk-nope").status == 401)
                let basic = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    headers: [("authorization", "Basic c2stYWxwaGE=")],
                    body: chatBody(model: "chat"),
                    group: Harness.group
                )
                #expect(basic.status == 401)
                #expect(try JSON(parsing: basic.body)["error"]?["message"]?.stringValue?.contains("Bearer") == true)

                #expect(try await Self.post(port, key: "sk-alpha").status == 200)
                #expect(try await Self.post(port, key: "sk-alpha", header: "x-api-key").status == 200)
                let forbidden = try await Self.post(port, key: "sk-alpha", body: chatBody(model: "other"))
                #expect(forbidden.status == 403)
                #expect(try JSON(parsing: forbidden.body)["error"]?["code"] == "model_not_allowed")

                let models = try JSON(parsing: try await Self.get(port, "/v1/models", key: "sk-alpha").body)
                #expect(models["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["chat"])
                #expect(try await Self.get(port, "/v1/models", key: nil).status == 401)
                #expect(try await Self.get(port, "/v1/models/other", key: "sk-alpha").status == 404)

                #expect(try await Self.post(port, key: "sk-master").status == 403, "the master key is not a client key")
                // A client posing as a node that forwarded the request: no valid signature, no service.
                for signature in [nil, "1795000000:00ff:alpha"] {
                    let forged = try await TestHTTPClient.send(
                        port: port,
                        path: "/v1/chat/completions",
                        headers: [("x-isobar-hop", "n2"), ("x-request-id", "r1")]
                            + (signature.map { [("x-isobar-hop-auth", $0)] } ?? []),
                        body: chatBody(model: "chat"),
                        group: Harness.group
                    )
                    #expect(forged.status == 401)
                }
                #expect(try await Self.get(port, "/v1/usage", key: "sk-alpha").status == 403)
                #expect(try await Self.get(port, "/health", key: nil).status == 200, "health needs no key")
                #expect(try await Self.get(port, "/metrics", key: nil).status == 200)
            }
        }
    }

    @Test("over its RPM a key gets 429 with retry-after and OpenAI's x-ratelimit headers; its team caps all keys")
    func rateLimits() async throws {
        try await Harness.withEmulator(EmulatorTests.configuration(step: 0.001)) { emulator in
            let keys = """
                  teams: [{name: t, rpm: 5}]
                  virtual_keys:
                    - {id: alpha, team: t, hash: "\(Self.alpha)", rpm: 3, tpm: 100000}
                    - {id: beta, team: t, hash: "\(Self.beta)"}
                """
            try await Harness.withGateway(try Self.topology(emulator: emulator, keys: keys)) { port in
                var statuses: [Int] = []
                var last: TestResponse?
                for _ in 0..<4 {
                    let response = try await Self.post(port, key: "sk-alpha")
                    statuses.append(response.status)
                    last = response
                }
                #expect(statuses == [200, 200, 200, 429])
                let refused = try #require(last)
                #expect(try JSON(parsing: refused.body)["error"]?["code"] == "rate_limit_exceeded")
                let retryAfter = try #require(refused.header("retry-after").flatMap(Int.init))
                #expect((59...61).contains(retryAfter), "the first request's second ends, plus a minute")
                let first = try await Self.get(port, "/v1/models", key: "sk-beta")
                #expect(first.status == 200)
                // Beta has no limit of its own, but the team's 5 a minute are shared: 3 used by alpha.
                let beta = [try await Self.post(port, key: "sk-beta"), try await Self.post(port, key: "sk-beta")]
                #expect(beta.map(\.status) == [200, 200])
                #expect(beta[1].header("x-ratelimit-limit-requests") == "5")
                #expect(beta[1].header("x-ratelimit-remaining-requests") == "0")
                #expect(beta[1].header("x-ratelimit-reset-requests") != nil)
                let over = try await Self.post(port, key: "sk-beta")
                #expect(over.status == 429)
                #expect(try JSON(parsing: over.body)["error"]?["message"]?.stringValue?.contains("team 't'") == true)
                let metrics = try await Self.get(port, "/metrics", key: nil).text
                #expect(metrics.contains(#"isobar_limit_refusals_total{key="alpha",limit="requests"} 1"#))
                #expect(metrics.contains(#"isobar_key_requests_total{key="alpha",team="t",model="chat"} 3"#))
            }
        }
    }

    @Test("a budget priced per deployment is spent once, then 429 budget_exceeded; usage shows it to the master")
    func budgetAndUsage() async throws {
        try await Harness.withEmulator(EmulatorTests.configuration(step: 0.001)) { emulator in
            // A dollar per token: one request of a few prompt tokens and 4 completion tokens spends it.
            let keys = """
                  virtual_keys:
                    - {id: alpha, hash: "\(Self.alpha)", budget: {usd: 5, period: day}}
                """
            try await Harness.withGateway(try Self.topology(emulator: emulator, keys: keys)) { port in
                #expect(try await Self.post(port, key: "sk-alpha").status == 200)
                let over = try await Self.post(port, key: "sk-alpha")
                #expect(over.status == 429)
                #expect(try JSON(parsing: over.body)["error"]?["code"] == "budget_exceeded")
                let usage = try await Self.get(port, "/v1/usage", key: "sk-master")
                #expect(usage.status == 200)
                let report = try JSON(parsing: usage.body)
                let alpha = try #require(report["keys"]?[0])
                #expect(alpha["id"] == "alpha" && alpha["requests"] == 1)
                let prompt = try #require(alpha["prompt_tokens"]?.intValue)
                let completion = try #require(alpha["completion_tokens"]?.intValue)
                #expect(prompt > 0 && completion == 4)
                #expect(alpha["cost_usd"]?.doubleValue == Double(prompt + completion))
                #expect(alpha["budget"]?["spent_usd"]?.doubleValue == Double(prompt + completion))
                #expect(alpha["budget"]?["remaining_usd"] == 0)
                #expect(alpha["models"]?["chat"]?["requests"] == 1)
                #expect(report["store"] == "memory")
            }
        }
    }

    @Test("max_concurrent: a second request while the first streams is refused, and admitted once it ends")
    func concurrency() async throws {
        try await Harness.withEmulator(EmulatorTests.configuration(step: 0.05)) { emulator in
            let keys = """
                  virtual_keys:
                    - {id: alpha, hash: "\(Self.alpha)", max_concurrent: 1}
                """
            try await Harness.withGateway(try Self.topology(emulator: emulator, keys: keys)) { port in
                // About 2 s of stream; the second request is sent once the node holds it.
                async let slow = Self.post(
                    port,
                    key: "sk-alpha",
                    body: chatBody(model: "chat", stream: true, maxTokens: 40)
                )
                #expect(
                    try await Harness.eventually {
                        try await Self.get(port, "/metrics", key: nil).text.contains("isobar_open_requests 1")
                    }
                )
                let second = try await Self.post(port, key: "sk-alpha")
                #expect(second.status == 429)
                #expect(try JSON(parsing: second.body)["error"]?["code"] == "concurrency_limit_exceeded")
                #expect(try await slow.status == 200)
                #expect(try await Self.post(port, key: "sk-alpha").status == 200)
            }
        }
    }
}
