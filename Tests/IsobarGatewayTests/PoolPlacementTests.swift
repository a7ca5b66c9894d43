import IsobarModel
import Testing

@testable import IsobarGateway

/// Where a pool member binds and what address it announces (`isobar serve --bind/--advertise`), and how
/// seeds given by DNS name become every address they stand for.
struct PoolPlacementTests {
    let pool = Node(
        name: "eu-gw",
        region: "eu",
        listen: HostPort(host: "0.0.0.0", port: 8080),
        gossip: HostPort(host: "0.0.0.0", port: 7946),
        pool: true
    ).member("a")

    @Test func bindAndAdvertise() throws {
        var bound = pool
        // Bound to one address, the member is at that address.
        #expect(try GatewayNode.place(&bound, bind: "127.0.0.2", advertise: nil) == nil)
        #expect(bound.listen == HostPort(host: "127.0.0.2", port: 8080))
        #expect(bound.gossip == HostPort(host: "127.0.0.2", port: 7946))
        var pod = pool
        #expect(
            try GatewayNode.place(&pod, bind: nil, advertise: "10.4.1.17") == HostPort(host: "10.4.1.17", port: 7946)
        )
        #expect(pod.listen.isWildcard, "a pod binds every interface, so that port-forward and probes reach it")
        var v6 = pool
        #expect(try GatewayNode.place(&v6, bind: nil, advertise: "fd00::17")?.description == "[fd00::17]:7946")
    }

    @Test func mistakes() throws {
        var node = pool
        #expect(throws: GatewayError.self) { try GatewayNode.place(&node, bind: nil, advertise: "0.0.0.0") }
        #expect(throws: GatewayError.self) { try GatewayNode.place(&node, bind: "not a host", advertise: nil) }
        var named = Node(name: "n1", region: "eu", listen: HostPort(host: "10.0.0.1", port: 8080))
        #expect(throws: GatewayError.self) { try GatewayNode.place(&named, bind: "127.0.0.1", advertise: nil) }
        #expect(try GatewayNode.place(&named, bind: nil, advertise: nil) == nil)
    }

    @Test func seedsByNameStandForEveryAddress() {
        let expanded = GossipShell.expand([
            HostPort(host: "10.0.0.1", port: 7946),
            HostPort(host: "localhost", port: 7946),
            HostPort(host: "10.0.0.1", port: 7946),
            HostPort(host: "no-such-host.invalid", port: 7946),
        ])
        #expect(expanded.first == HostPort(host: "10.0.0.1", port: 7946))
        #expect(expanded.contains(HostPort(host: "127.0.0.1", port: 7946)))
        #expect(!expanded.contains(HostPort(host: "localhost", port: 7946)))
        #expect(expanded.count { $0.host == "10.0.0.1" } == 1)
        // A name that does not resolve now is kept, to be tried again when used.
        #expect(expanded.last == HostPort(host: "no-such-host.invalid", port: 7946))
    }
}
