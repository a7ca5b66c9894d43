import Foundation
import IsobarConfig
import IsobarModel
import Testing

/// The example topologies in `topology/` are documentation; they must stay valid.
@Suite("Example topologies")
struct TopologyExamplesTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("topology")

    static let environment = [
        "OPENAI_API_KEY": "sk-example", "ANTHROPIC_API_KEY": "sk-ant-example", "ISOBAR_GOSSIP_KEY": Fixture.gossipKey,
    ]

    static var files: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }

    @Test func theExamplesExist() {
        #expect(Self.files.contains("local-demo.yaml"))
        #expect(Self.files.contains("hybrid-example.yaml"))
    }

    @Test(arguments: files)
    func exampleValidates(_ name: String) throws {
        let path = Self.directory.appendingPathComponent(name).path
        do {
            _ = try TopologyLoader.load(path: path, environment: Self.environment)
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func localDemoRunsOnLoopbackWithoutSecrets() throws {
        let path = Self.directory.appendingPathComponent("local-demo.yaml").path
        let topology = try TopologyLoader.load(path: path, environment: [:])
        #expect(topology.regions.map(\.name) == ["us-east", "eu-west", "ap-south"])
        #expect(topology.nodes.map(\.listen.description) == ["127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"])
        #expect(topology.nodes.allSatisfy { $0.gossip?.isLoopback == true } && topology.mesh.gossipKeyEnv == nil)
        #expect(topology.backends.allSatisfy { $0.engine == .emulated && $0.url.port == 0 })
        #expect(topology.models.map(\.name) == ["chat", "chat-large", "claude", "embed"])
        #expect(topology.model("chat")?.fallbacks == ["chat-large"])
        #expect(topology.backend("use-claude")?.api == .anthropic)
        #expect(topology.routing.policy == .leastRequest)
    }
}
