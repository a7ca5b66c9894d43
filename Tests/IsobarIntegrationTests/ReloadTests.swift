import IsobarGateway
import IsobarModel
import NIOCore
import Testing

/// `GatewayNode.reload` (what SIGHUP does): new requests follow the new topology at once, requests in
/// flight finish where they started, unchanged backends keep what the node learned, and a topology that
/// changes what only a restart can is refused with the running one kept.
@Suite("Topology reload")
struct ReloadTests {
    static func topology(_ backends: [(name: String, port: Int)], models: String) throws -> Topology {
        try Harness.topology(
            Harness.yaml(
                backends: backends.map {
                    "  - {name: \($0.name), region: local, engine: vllm, url: \"http://127.0.0.1:\($0.port)\", models: [m]}"
                }
                .joined(separator: "\n"),
                models: models,
                routing: "routing: {retries: {attempts: 0}}"
            )
        )
    }

    /// Runs a node of `topology` until `body` returns.
    static func withNode<T: Sendable>(
        _ topology: Topology,
        _ body: @Sendable (GatewayNode, Int) async throws -> T
    ) async throws -> T {
        let node = try GatewayNode(
            topology: topology,
            node: topology.nodes[0].name,
            group: Harness.group,
            logger: Harness.logger
        )
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { tasks in
            tasks.addTask { try await node.run() }
            let port = try await node.localAddress.port!
            defer { tasks.cancelAll() }
            return try await body(node, port)
        }
    }

    static func get(_ port: Int, _ path: String) async throws -> TestResponse {
        try await TestHTTPClient.send(port: port, method: .GET, path: path, group: Harness.group)
    }

    @Test("new requests follow the reloaded topology while a stream on a removed backend finishes")
    func streamOnRemovedBackendFinishes() async throws {
        let slow = FaultUpstream { request, writer, _ in
            Upstream.stream(
                writer,
                request: request,
                model: "m",
                tokens: Array(repeating: "t ", count: 10),
                intervalMs: 50
            )
        }
        let fresh = FaultUpstream { _, writer, _ in
            Upstream.json(writer, Upstream.completion(model: "m", content: "from fresh"))
        }
        try await Harness.withUpstreams([slow, fresh]) { ports in
            let before = try Self.topology(
                [("old", ports[0])],
                models: "  - {name: chat, deployments: [{backend: old, model: m}]}"
            )
            let after = try Self.topology(
                [("fresh", ports[1])],
                models: """
                      - {name: chat, deployments: [{backend: fresh, model: m}]}
                      - {name: extra, deployments: [{backend: fresh, model: m}]}
                    """
            )
            try await Self.withNode(before) { node, port in
                let started = AsyncStream<Void>.makeStream()
                async let streamed = TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat", stream: true),
                    group: Harness.group
                ) { _ in
                    started.continuation.yield()
                    return true
                }
                for await _ in started.stream { break }
                try node.reload(after)

                // New requests: the new backend and the new model, at once.
                let answer = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat"),
                    group: Harness.group
                )
                #expect(answer.status == 200 && answer.text.contains("from fresh"))
                let models = try await Self.get(port, "/v1/models")
                #expect(models.text.contains("\"extra\""))
                // The stream that began on the removed backend ends whole.
                let stream = try await streamed
                #expect(stream.events.last == "[DONE]")
                #expect(GatewayStreamingTests.content(stream) == String(repeating: "t ", count: 10))
                #expect(slow.received.count == 1 && fresh.received.count == 1)
            }
        }
    }

    @Test("a backend that did not change keeps what the node learned of it; the node keeps its metrics")
    func unchangedBackendKeepsItsState() async throws {
        let live = FaultUpstream { _, writer, _ in Upstream.json(writer, Upstream.completion(model: "m")) }
        try await Harness.withUpstreams([live]) { ports in
            let dead = try await Harness.closedPort()
            let models = """
                  - {name: chat, deployments: [{backend: live, model: m}]}
                  - {name: broken, deployments: [{backend: dead, model: m}]}
                """
            let before = try Self.topology([("live", ports[0]), ("dead", dead)], models: models)
            let after = try Self.topology(
                [("live", ports[0]), ("dead", dead)],
                models: models + "\n  - {name: extra, deployments: [{backend: live, model: m}]}"
            )
            try await Self.withNode(before) { node, port in
                for model in ["chat", "broken"] {
                    _ = try await TestHTTPClient.send(
                        port: port,
                        path: "/v1/chat/completions",
                        body: chatBody(model: model),
                        group: Harness.group
                    )
                }
                // The backend the node could not reach is passed over: one of the two is usable.
                let oneUsable = #"isobar_region_usable_backends{backend_region="local"} 1.0"#
                let served = #"isobar_requests_total{model="chat",backend="live",status="200"} 1"#
                let metrics = try await Self.get(port, "/metrics").text
                #expect(metrics.contains(oneUsable) && metrics.contains(served))
                try node.reload(after)
                let reloaded = try await Self.get(port, "/metrics").text
                #expect(reloaded.contains(oneUsable), "the unreachable backend is still passed over")
                #expect(reloaded.contains(served), "counters carry on across the reload")
            }
        }
    }

    @Test("a topology that changes what only a restart can is refused, and the running one kept")
    func restartOnlyChangesAreRefused() async throws {
        let live = FaultUpstream { _, writer, _ in Upstream.json(writer, Upstream.completion(model: "m")) }
        try await Harness.withUpstreams([live]) { ports in
            let models = "  - {name: chat, deployments: [{backend: live, model: m}]}"
            let running = try Self.topology([("live", ports[0])], models: models)
            var renamed = running
            renamed.mesh.name = "other"
            var moved = running
            moved.nodes[0].listen = HostPort(host: "127.0.0.1", port: 1)
            try await Self.withNode(running) { [renamed, moved] node, port in
                #expect(throws: GatewayError.self) { try node.reload(renamed) }
                do {
                    try node.reload(moved)
                    Issue.record("a new listen address was accepted")
                } catch {
                    #expect("\(error)".contains("nodes changed: only a restart applies that"))
                }
                #expect(node.topology == running)
                let answer = try await TestHTTPClient.send(
                    port: port,
                    path: "/v1/chat/completions",
                    body: chatBody(model: "chat"),
                    group: Harness.group
                )
                #expect(answer.status == 200)
            }
        }
    }
}
