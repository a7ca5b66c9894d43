import IsobarConfig
import IsobarModel
import Testing

/// `replicas: N` and `price.per_hour` of a backend, in topology files (and so in scenarios).
@Suite("Replicated backends")
struct ScenarioReplicasTests {
    static let topology = """
        mesh: {name: t}
        regions: [{name: r1}]
        nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
        backends:
          - {name: gpu, region: r1, engine: emulated, models: [m], replicas: 3, emulate: {profile: fixed},
             price: {per_hour: 2.25, output_per_mtok: 0}}
          - {name: one, region: r1, engine: emulated, models: [m], emulate: {profile: llama-3.1-70b-h100}}
        models:
          - {name: chat, deployments: [{backend: one, model: m}, {backend: gpu, model: m}]}
          - {name: big, deployments: [{backend: gpu}]}
        """

    @Test func replicasBecomeBackendsAndDeployments() throws {
        let topology = try TopologyLoader.load(
            text: Self.topology.replacingOccurrences(of: "[{backend: gpu}]", with: "[{backend: gpu, model: m}]"),
            file: "t.yaml",
            environment: [:],
            readFile: { _ in nil }
        )
        #expect(topology.backends.map(\.name) == ["gpu-1", "gpu-2", "gpu-3", "one"])
        #expect(
            topology.backends[0..<3].allSatisfy { $0.price == Price(perHour: 2.25) && $0.emulate?.profile == "fixed" }
        )
        #expect(topology.backends[0].url.port == 0)
        #expect(topology.backends[3].price.perHour == 0)
        #expect(topology.model("chat")?.deployments.map(\.backend) == ["one", "gpu-1", "gpu-2", "gpu-3"])
        #expect(
            topology.model("big")?.deployments
                == ["gpu-1", "gpu-2", "gpu-3"].map { Deployment(backend: $0, model: "m") }
        )
    }

    @Test func replicaProblems() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends:
              - {name: gpu, region: r1, engine: emulated, models: [m], replicas: 2, emulate: {profile: fixed}}
              - {name: gpu-2, region: r1, engine: emulated, models: [m], emulate: {profile: fixed}}
              - {name: vllm, region: r1, engine: vllm, url: http://10.0.0.1:8000, models: [m], replicas: 2}
              - {name: big, region: r1, engine: emulated, models: [m], replicas: 10001, emulate: {profile: fixed}}
              - {name: port, region: r1, engine: emulated, url: http://127.0.0.1:9000, models: [m], replicas: 2,
                 emulate: {profile: fixed}, price: {per_hour: -1}}
            models:
              - {name: chat, deployments: [{backend: gpu, model: m}]}
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:5: backends[0].replicas: replica 'gpu-2' would have the name of the backend on line 6; "
                    + "rename one of them",
                "test.yaml:7: backends[2].replicas: replicas is only for engine: emulated; list each 'vllm' server as "
                    + "a backend of its own",
                "test.yaml:8: backends[3].replicas: must be from 1 to 10000, got 10001",
                "test.yaml:9: backends[4].url: each replica listens on a port of its own: leave url out or use port 0, "
                    + "not 9000",
                "test.yaml:10: backends[4].price.per_hour: must not be negative, got -1",
            ]
        )
    }
}
