import IsobarConfig
import IsobarModel
import Testing

/// Pools of interchangeable nodes (`pool: true`), as a Kubernetes Deployment runs them, and `mesh.seeds`.
struct TopologyPoolTests {
    static let pools = """
        mesh: {name: t, gossip_key_env: GK, seeds: ["gossip.eu.svc.cluster.local:7946", "10.1.0.9:7946"]}
        regions: [{name: eu}, {name: us}]
        nodes:
          - {name: eu-gw, region: eu, pool: true, listen: 0.0.0.0:8080, gossip: 0.0.0.0:7946}
          - {name: us-gw, region: us, pool: true, listen: 0.0.0.0:8080, gossip: 0.0.0.0:7946}
          - {name: us-1, region: us, listen: 10.2.0.1:8080, gossip: 10.2.0.1:7946}
        backends:
          - {name: b1, region: eu, engine: vllm, url: http://10.1.0.5:8000, models: [m1]}
        models:
          - {name: chat, deployments: [{backend: b1, model: m1}]}
        """

    @Test func poolsShareTheirAddressesAndJoinThroughSeeds() throws {
        let topology = try Fixture.load(Self.pools, environment: ["GK": Fixture.gossipKey])
        #expect(topology.nodes.map(\.pool) == [true, true, false])
        #expect(
            topology.mesh.seeds == [
                HostPort(host: "gossip.eu.svc.cluster.local", port: 7946), HostPort(host: "10.1.0.9", port: 7946),
            ]
        )
        // Named nodes' gossip addresses and the mesh's seeds; never a pool's wildcard.
        #expect(
            topology.seeds.map(\.description) == ["10.2.0.1:7946", "gossip.eu.svc.cluster.local:7946", "10.1.0.9:7946"]
        )
    }

    @Test func aMemberIsNamedAfterItsPool() throws {
        let topology = try Fixture.load(Self.pools, environment: ["GK": Fixture.gossipKey])
        let member = try #require(topology.node(NodeID("eu-gw/gw-7d9f-x2x9z")))
        #expect(member.region == RegionID("eu"))
        #expect(member.pool && member.listen.port == 8080 && member.gossip?.port == 7946)
        #expect(NodeID("eu-gw/gw-7d9f-x2x9z").entry == NodeID("eu-gw"))
        #expect(NodeID("us-1").entry == NodeID("us-1") && NodeID("us-1").poolMember == nil)
        // The pool itself is not a node, a named node has no members, and an unknown pool none either.
        #expect(topology.node(NodeID("eu-gw")) == nil)
        #expect(topology.node(NodeID("us-1/a")) == nil)
        #expect(topology.node(NodeID("ap-gw/a")) == nil)
        #expect(topology.node(NodeID("us-1"))?.pool == false)
        #expect(Node.isValidInstance("gw-7d9f5c8b6-x2x9z") && Node.isValidInstance("host.example.com"))
        #expect(
            !Node.isValidInstance("") && !Node.isValidInstance("a/b")
                && !Node.isValidInstance(String(repeating: "a", count: 64))
        )
    }

    @Test func poolMistakes() {
        let text = """
            mesh: {name: t, gossip_key_env: GK, seeds: ["0.0.0.0:7946", "gossip:0", "nohost"]}
            regions: [{name: eu}]
            nodes:
              - {name: a, region: eu, pool: true, listen: 0.0.0.0:8080}
              - {name: b, region: eu, pool: true, listen: 0.0.0.0:0, gossip: 0.0.0.0:8080}
              - {name: c, region: eu, pool: true, listen: 0.0.0.0:8080, gossip: 0.0.0.0:8080}
              - {name: d, region: eu, pool: yes please, listen: 0.0.0.0:8080, gossip: 0.0.0.0:7946}
            backends:
              - {name: b1, region: eu, engine: vllm, url: http://10.1.0.5:8000, models: [m1]}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}]}
            """
        #expect(
            Fixture.problems(text, environment: ["GK": Fixture.gossipKey]) == [
                "test.yaml:1: mesh.seeds[0]: a seed is an address to reach a node at: not port 0 or 0.0.0.0",
                "test.yaml:1: mesh.seeds[1]: a seed is an address to reach a node at: not port 0 or gossip",
                "test.yaml:1: mesh.seeds[2]: expected HOST:PORT",
                "test.yaml:4: nodes[0].gossip: required key is missing: a pool's nodes learn of each other by gossip",
                "test.yaml:5: nodes[1].listen: a pool's nodes all use the same port, which the others connect to: not 0",
                "test.yaml:6: nodes[2].gossip: gossip address 0.0.0.0:8080 is already the listen address of node 'c'",
                "test.yaml:7: nodes[3].pool: expected true or false, got a string",
            ]
        )
    }

    @Test func aPoolNeedsSeeds() {
        let text = """
            mesh: {name: t, gossip_key_env: GK}
            regions: [{name: eu}]
            nodes:
              - {name: eu-gw, region: eu, pool: true, listen: 0.0.0.0:8080, gossip: 0.0.0.0:7946}
            backends:
              - {name: b1, region: eu, engine: vllm, url: http://10.1.0.5:8000, models: [m1]}
            models:
              - {name: chat, deployments: [{backend: b1, model: m1}]}
            """
        #expect(
            Fixture.problems(text, environment: ["GK": Fixture.gossipKey]) == [
                "test.yaml:4: nodes[0].pool: a pool's nodes find each other through mesh.seeds or the gossip address "
                    + "of a named node; neither is given (add mesh.seeds, such as a DNS name resolving to the pool's nodes)"
            ]
        )
        // A pool gossips on every interface: the mesh needs its key.
        let keyless = text.replacingOccurrences(of: ", gossip_key_env: GK", with: ", seeds: [\"gw:7946\"]")
        #expect(
            Fixture.problems(keyless) == [
                "test.yaml:4: nodes[0].gossip: mesh.gossip_key_env is required when a node gossips beyond loopback"
            ]
        )
    }
}
