import IsobarModel
import Testing

@testable import IsobarRouting

/// Backends only their own region reaches (`reachable_from: region`): other regions' nodes send their
/// requests through a live node of that region (DESIGN §7), and a forwarded request is never forwarded
/// again. Node n1 is in `east`; n3 and n4 are in `west`, where w1 lives.
@Suite struct ForwardingRoutingTests {
    func router(node: NodeID = "n1") -> Router {
        var west = TestFleet.backend("w1", region: "west")
        west.reach = .region
        var topology = TestFleet.topology([TestFleet.backend("e1"), west])
        topology.nodes += [
            Node(name: "n3", region: "west", listen: HostPort(host: "127.0.0.1", port: 8082)),
            Node(name: "n4", region: "west", listen: HostPort(host: "127.0.0.1", port: 8083)),
        ]
        return Router(topology: topology, node: node, configuration: RoutingConfiguration(topology: topology))
    }

    func arrive(_ router: inout Router, _ id: String, forwarded: Bool = false) -> RouteAction {
        var rng = SplitMix64(seed: 3)
        var request = TestFleet.request(id, model: "only-w1")
        request.forwarded = forwarded
        return router.requestArrived(request, now: .zero, rng: &rng)
    }

    @Test("a backend only its region reaches is sent to through a live node of that region")
    func forwardsThroughALivePeer() throws {
        var router = router()
        router.peerSuspected("n3", false)
        router.peerSuspected("n4", false)
        router.peerSuspected("n4", true)
        let plan = try #require(TestFleet.sent(arrive(&router, "a")))
        #expect(plan.deployment.backend == "w1")
        #expect(plan.via == "n3", "n4 is suspect")
    }

    @Test("with no live node in its region it cannot be reached: the request gets the catch-all")
    func noLivePeer() {
        var router = router()
        guard case .catchAll = arrive(&router, "a") else {
            Issue.record("expected the catch-all")
            return
        }
        router.peerSuspected("n3", false)
        router.peerGone("n3")
        guard case .catchAll = arrive(&router, "b") else {
            Issue.record("expected the catch-all once n3 is gone")
            return
        }
    }

    @Test("a forwarded request is never forwarded again; in its own region the node calls the backend directly")
    func oneHopAtMost() throws {
        var router = router()
        router.peerSuspected("n3", false)
        guard case .catchAll = arrive(&router, "a", forwarded: true) else {
            Issue.record("a forwarded request must not be given a second hop")
            return
        }
        var west = self.router(node: "n3")
        let plan = try #require(TestFleet.sent(arrive(&west, "b", forwarded: true)))
        #expect(plan.deployment.backend == "w1")
        #expect(plan.via == nil)
    }

    @Test("a backend every region reaches is called directly from anywhere")
    func reachableAnywhere() throws {
        var topology = TestFleet.topology([TestFleet.backend("w1", region: "west")])
        topology.nodes.append(Node(name: "n3", region: "west", listen: HostPort(host: "127.0.0.1", port: 8082)))
        var router = Router(topology: topology, node: "n1", configuration: RoutingConfiguration(topology: topology))
        router.peerSuspected("n3", false)
        let plan = try #require(TestFleet.sent(arrive(&router, "a")))
        #expect(plan.via == nil)
    }
}
