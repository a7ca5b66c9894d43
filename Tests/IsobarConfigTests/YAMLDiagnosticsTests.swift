import IsobarConfig
import IsobarModel
import Testing

/// Problems with the YAML itself: syntax, keys, types. Every one is reported, with its line and key path.
@Suite("Diagnostics of malformed YAML")
struct YAMLDiagnosticsTests {
    @Test func unknownKeysSuggestTheNearestKnownOne() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes:
              - {name: n1, region: r1, listen: 127.0.0.1:8080}
            backends:
              - {name: b1, region: r1, engine: vllm, url: http://127.0.0.1:8000, modles: [m1]}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}]}
            rooting: {policy: random}
            extra: 1
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:6: backends[0].modles: unknown key 'modles' (did you mean 'models'?)",
                "test.yaml:6: backends[0].models: engine 'vllm' needs the list of models it serves, "
                    + "e.g. [meta-llama/Llama-3.1-8B-Instruct]",
                "test.yaml:9: rooting: unknown key 'rooting' (did you mean 'routing'?)",
                "test.yaml:10: extra: unknown key 'extra'",
            ]
        )
    }

    @Test func wrongTypesSayWhatWasExpectedAndFound() {
        let yaml = """
            mesh: {name: t}
            regions: us-east
            nodes:
              - {name: n1, region: r1, listen: 127.0.0.1:8080}
            backends:
              - name: b1
                region: r1
                engine: vllm
                url: http://127.0.0.1:8000
                models: [m1]
                capacity: {max_concurrency: many, decode_tokens_per_s: 100, context_window: 1.5}
                price: {input_per_mtok: "1.5", output_per_mtok: yes}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}]}
            routing: {retries: [1, 2], timeouts: {idle_ms: .inf}}
            catch_all: {mode: no}
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:2: regions: expected a list, got a string",
                "test.yaml:4: nodes[0].region: unknown region 'r1'",
                "test.yaml:7: backends[0].region: unknown region 'r1'",
                "test.yaml:11: backends[0].capacity.max_concurrency: expected a whole number, got a string",
                "test.yaml:11: backends[0].capacity.context_window: expected a whole number, got 1.5",
                "test.yaml:12: backends[0].price.input_per_mtok: expected a number, got a string",
                "test.yaml:12: backends[0].price.output_per_mtok: expected a number, got a boolean",
                "test.yaml:15: routing.retries: expected a mapping, got a list",
                "test.yaml:15: routing.timeouts.idle_ms: expected a finite number, got '.inf'",
                "test.yaml:16: catch_all.mode: expected a string, got a boolean (quote it to mean the text 'no')",
            ]
        )
    }

    @Test func duplicateYAMLKeysAreReportedOnTheRepeatAndCheckingGoesOn() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes: [{name: n1, region: r1, listen: 127.0.0.1:8080}]
            backends:
              - name: b1
                region: r1
                engine: vllm
                url: http://127.0.0.1:8000
                "url": http://127.0.0.1:8001
                models: [m1]
                url: http://127.0.0.1:8002
            models:
              - {name: chat, deployments: [{backend: b1, model: m1, model: m2}]}
              - {name: other, deployments: [{backend: nowhere}]}
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:9: backends[0].url: duplicate key 'url' (first given on line 8)",
                "test.yaml:11: backends[0].url: duplicate key 'url' (first given on line 8)",
                "test.yaml:13: models[0].deployments[0].model: duplicate key 'model' (first given on line 13)",
                "test.yaml:14: models[1].deployments[0].backend: unknown backend 'nowhere'; defined: b1",
            ]
        )
    }

    @Test func aYAMLSyntaxErrorIsOneDiagnosticOnItsLine() {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes:
              - name: n1
                region: r1
               listen: 127.0.0.1:8080
            backends: []
            """
        let problems = Fixture.problems(yaml)
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("test.yaml:6: <document>: invalid YAML: ") == true)
    }

    @Test func theTopLevelMustBeAMapping() {
        #expect(Fixture.problems("- a\n- b\n") == ["test.yaml:1: <document>: expected a mapping, got a list"])
        #expect(
            Fixture.problems("# nothing here\n") == [
                "test.yaml:1: <document>: the file is empty; expected a mapping with mesh, regions, nodes, ..."
            ]
        )
    }

    @Test func manyProblemsAreAllReportedInLineOrder() throws {
        let yaml = """
            mesh: {name: t}
            regions: [{name: r1}]
            nodes:
              - {name: n1, region: r2, listen: localhost}
            backends:
              - {name: b1, region: r1, engine: vllm, url: http://127.0.0.1:8000, models: [m1], capacity: {max_concurrency: -1}}
            models:
              - {name: chat, deployments: [{backend: b1, model: m9}], fallbacks: [chat]}
            limits: {max_request_body_bytes: "8 MiB"}
            """
        #expect(throws: ConfigError.self) { try Fixture.load(yaml) }
        let problems = Fixture.problems(yaml)
        #expect(problems.count == 6)
        #expect(problems.map { $0.split(separator: ":")[1] } == ["4", "4", "6", "8", "8", "9"])
        do {
            _ = try Fixture.load(yaml)
        } catch {
            #expect(error.description == problems.joined(separator: "\n"))
            #expect(error.diagnostics.first?.keyPath == "nodes[0].region")
            #expect(error.diagnostics.first?.line == 4)
        }
    }

    @Test func aMissingFileIsReported() {
        do {
            _ = try TopologyLoader.load(path: "/nonexistent/topology.yaml", environment: [:])
            Issue.record("loading a missing file succeeded")
        } catch {
            #expect(error.description == "/nonexistent/topology.yaml:0: <document>: the file does not exist")
        }
    }

    @Test func aRequiredValueOfTheWrongTypeIsReportedOnce() {
        let yaml = """
            mesh: {name: [t]}
            regions: [{name: r1}]
            nodes: [{name: {n: 1}, region: r1, listen: 127.0.0.1:8080}]
            backends:
              - {name: b1, region: r1, engine: [vllm], url: http://127.0.0.1:8000, models: [m1]}
              - {name: b2, region: r1, engine: tgi, url: [], models: m1}
            models:
              - {name: chat, deployments: {backend: b1}}
            """
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:1: mesh.name: expected a string, got a list",
                "test.yaml:3: nodes[0].name: expected a string, got a mapping",
                "test.yaml:5: backends[0].engine: expected a string, got a list",
                "test.yaml:6: backends[1].url: expected a string, got a list",
                "test.yaml:6: backends[1].models: expected a list, got a string",
                "test.yaml:8: models[0].deployments: expected a list, got a mapping",
            ]
        )
    }

    @Test func onlyMappingsCanBeMerged() {
        let yaml = Fixture.minimal.replacingOccurrences(of: "mesh: {name: t}", with: "mesh: {name: t, <<: [1]}")
        #expect(Fixture.problems(yaml) == ["test.yaml:1: mesh.<<: expected a mapping to merge, got a number"])
    }
}
