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

    @Test("a pool's members are forwarded through as they come and go; a member of an unknown pool never")
    func poolMembers() throws {
        var west = TestFleet.backend("w1", region: "west")
        west.reach = .region
        var topology = TestFleet.topology([TestFleet.backend("e1"), west])
        topology.nodes.append(
            Node(
                name: "west-gw",
                region: "west",
                listen: HostPort(host: "0.0.0.0", port: 8080),
                gossip: HostPort(host: "0.0.0.0", port: 7946),
                pool: true
            )
        )
        var router = Router(topology: topology, node: "n1", configuration: RoutingConfiguration(topology: topology))
        router.peerSuspected("north-gw/a", false)
        router.peerSuspected("n1/a", false)
        guard case .catchAll = arrive(&router, "a") else {
            Issue.record("only members of a pool of the topology are peers")
            return
        }
        router.peerSuspected("west-gw/gw-5c8b6-x2x9z", false)
        #expect(try #require(TestFleet.sent(arrive(&router, "b"))).via == "west-gw/gw-5c8b6-x2x9z")
        // Scaled in, and a new pod took its place.
        router.peerGone("west-gw/gw-5c8b6-x2x9z")
        router.peerSuspected("west-gw/gw-5c8b6-k7q2p", false)
        #expect(try #require(TestFleet.sent(arrive(&router, "c"))).via == "west-gw/gw-5c8b6-k7q2p")
        // A member runs as its pool's region.
        let member = Router(
            topology: topology,
            node: "west-gw/gw-5c8b6-k7q2p",
            configuration: RoutingConfiguration(topology: topology)
        )
        #expect(member.region == "west")
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

    @Test("a hop that cannot connect blames the peer, not the backend: the request goes through another node")
    func aRefusedHopTriesAnotherPeer() throws {
        var router = router()
        var rng = SplitMix64(seed: 5)
        router.peerSuspected("n3", false)
        router.peerSuspected("n4", false)
        let first = try #require(TestFleet.sent(arrive(&router, "a")))
        let firstPeer = try #require(first.via)
        let second = try #require(
            TestFleet.sent(router.failed(first.attempt, .connect("refused"), now: .zero, rng: &rng))
        )
        #expect(second.deployment.backend == "w1")
        #expect(second.via != nil && second.via != firstPeer)
        let w1 = try #require(router.endpoints.firstIndex { $0.backend.name == "w1" })
        #expect(router.endpoints[w1].lastFailure == nil, "the backend was never reached, so never found down")
        #expect(router.endpoints[w1].breaker.state == .closed)
        // Both peers refused: nothing is left, and the answer says why.
        guard case .catchAll(let plan) = router.failed(second.attempt, .timeout(.connect), now: .zero, rng: &rng)
        else {
            Issue.record("expected the catch-all")
            return
        }
        #expect(plan.reason.contains("no live node of region 'west' could be reached"))
        // Both are passed over for the breaker cooldown, then tried again.
        guard
            case .catchAll = router.requestArrived(
                TestFleet.request("b", model: "only-w1"),
                now: .zero + .seconds(29),
                rng: &rng
            )
        else {
            Issue.record("refused peers are passed over during the cooldown")
            return
        }
        let later = try #require(
            TestFleet.sent(
                router.requestArrived(TestFleet.request("c", model: "only-w1"), now: .zero + .seconds(30), rng: &rng)
            )
        )
        #expect(later.via != nil)
    }

    @Test("a forwarded request that only a hop could serve is told so, not blamed on a breaker")
    func forwardedCatchAllSaysWhy() {
        var router = router()
        router.peerSuspected("n3", false)
        guard case .catchAll(let plan) = arrive(&router, "a", forwarded: true) else {
            Issue.record("expected the catch-all")
            return
        }
        #expect(plan.reason.contains("reachable only from region 'west'"))
        #expect(plan.reason.contains("forwarded here by another node already"))
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
