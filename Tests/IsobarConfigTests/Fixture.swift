import IsobarConfig
import IsobarModel

/// Loads topology text the way `isobar check` would, with an injected environment and key files.
enum Fixture {
    static let file = "test.yaml"

    /// A valid base64 key of 32 bytes.
    static let gossipKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

    static func load(
        _ text: String,
        file: String = Fixture.file,
        environment: [String: String] = [:],
        files: [String: String] = [:]
    ) throws(ConfigError) -> Topology {
        try TopologyLoader.load(text: text, file: file, environment: environment, readFile: { files[$0] })
    }

    /// The diagnostics as `isobar check` prints them; empty if the text is valid.
    static func problems(
        _ text: String,
        file: String = Fixture.file,
        environment: [String: String] = [:],
        files: [String: String] = [:]
    ) -> [String] {
        do {
            _ = try load(text, file: file, environment: environment, files: files)
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    /// A small valid file; tests append to it or replace parts. Lines: 1 mesh, 2 regions, 3-4 nodes,
    /// 5-6 backends, 7-8 models.
    static let minimal = """
        mesh: {name: t}
        regions: [{name: r1}]
        nodes:
          - {name: n1, region: r1, listen: 127.0.0.1:8080}
        backends:
          - {name: b1, region: r1, engine: vllm, url: http://127.0.0.1:8000, models: [m1, m2]}
        models:
          - {name: chat, deployments: [{backend: b1, model: m1}]}

        """
}
