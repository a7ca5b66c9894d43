import IsobarModel
import Testing

@testable import IsobarRouting

/// What the router learns from peers' digests and tells them in its own (DESIGN §7): node n1 in `east`,
/// a peer n2 in `east` and n3 in `west`, where backend w1 lives (n1 does not scrape it).
@Suite struct GossipRoutingTests {
    let east = TestFleet.backend("e1", scraped: true)
    let west = TestFleet.backend("w1", region: "west", scraped: true)

    func router() -> Router {
        var topology = TestFleet.topology([east, west])
        topology.nodes += [
            Node(name: "n2", region: "east", listen: HostPort(host: "127.0.0.1", port: 8081)),
            Node(name: "n3", region: "west", listen: HostPort(host: "127.0.0.1", port: 8082)),
        ]
        return Router(
            topology: topology,
            node: "n1",
            configuration: RoutingConfiguration(topology: topology, explainsDecisions: true)
        )
    }

    func load(_ backend: BackendID, waiting: Int? = nil, inFlight: Int = 0, prefill: Int = 0) -> LoadDigest {
        LoadDigest(entries: [
            .init(
                backend: backend,
                waiting: waiting,
                running: waiting.map { _ in 4 },
                kvUsage: waiting.map { _ in 0.5 },
                inFlight: inFlight,
                pendingPrefillTokens: prefill
            )
        ])
    }

    @Test("a peer's gauges stand in for a scrape this node lacks, and stay fresh until the peer publishes a change")
    func gossipedGauges() {
        var router = router()
        router.gossiped(load("w1", waiting: 40), from: "n3", age: .seconds(2), now: TestFleet.at(10))
        let status = router.status("w1", now: TestFleet.at(40))
        #expect(status.sample?.waiting == 40)
        #expect(status.sampleFrom == "n3")
        #expect(status.sample?.age(at: TestFleet.at(10)) == .seconds(2))
        #expect(!status.stale)
        // Past the staleness bound of gossip it counts as stale like an old scrape.
        #expect(router.status("w1", now: TestFleet.at(110)).stale)
    }

    @Test("this node's own scrape wins over an older gossiped reading, and a newer one replaces it")
    func ownScrapeWins() {
        var router = router()
        router.scraped("w1", LoadSample(takenAt: TestFleet.at(9), waiting: 1), now: TestFleet.at(9))
        router.gossiped(load("w1", waiting: 50), from: "n3", age: .seconds(5), now: TestFleet.at(10))
        #expect(router.status("w1", now: TestFleet.at(10)).sample?.waiting == 1)
        router.gossiped(load("w1", waiting: 50), from: "n3", age: .zero, now: TestFleet.at(12))
        #expect(router.status("w1", now: TestFleet.at(12)).sample?.waiting == 50)
    }

    @Test("a suspect peer's ledger stops counting and its readings age like scrapes; a dead one is forgotten")
    func suspectDemoted() {
        var router = router()
        router.gossiped(
            load("w1", waiting: 7, inFlight: 3, prefill: 900),
            from: "n3",
            age: .zero,
            now: TestFleet.at(10)
        )
        #expect(router.status("w1", now: TestFleet.at(10)).peerRequests == 3)
        router.peerSuspected("n3", true)
        #expect(router.status("w1", now: TestFleet.at(10)).peerRequests == 0)
        #expect(router.status("w1", now: TestFleet.at(13)).stale)
        router.peerSuspected("n3", false)
        #expect(router.status("w1", now: TestFleet.at(13)).peerRequests == 3)
        #expect(!router.status("w1", now: TestFleet.at(13)).stale)
        router.peerGone("n3")
        #expect(router.status("w1", now: TestFleet.at(13)).peerRequests == 0)
        #expect(router.status("w1", now: TestFleet.at(13)).stale)
    }

    @Test("peers' prompts not yet prefilled count as queue on an endpoint without a queue gauge")
    func peerPrefillIsQueue() {
        var router = router()
        var rng = SplitMix64(seed: 1)
        let before = TestFleet.sent(
            router.requestArrived(TestFleet.request("a", model: "only-e1"), now: .zero, rng: &rng)
        )
        router.gossiped(load("e1", inFlight: 5, prefill: 20_000), from: "n2", age: .zero, now: .zero)
        let after = TestFleet.sent(
            router.requestArrived(TestFleet.request("b", model: "only-e1"), now: .zero, rng: &rng)
        )
        #expect((after?.expectedTTFT("e1") ?? 0) > (before?.expectedTTFT("e1") ?? 0) + 0.5)
    }

    @Test("a remote endpoint its own region's nodes report down is passed over; other regions' word does not count")
    func remoteReportedDown() {
        var router = router()
        let down = HealthDigest(entries: [.init(backend: "w1", state: .open, errorRate: 1)])
        router.gossiped(down, from: "n2")
        #expect(router.status("w1").usable)
        router.gossiped(down, from: "n3")
        #expect(!router.status("w1").usable)
        #expect(router.status("w1").reportedDown)
        router.gossiped(HealthDigest(entries: [.init(backend: "w1")]), from: "n3")
        #expect(router.status("w1").usable)
    }

    @Test("the measured RTT to a region is charged to its endpoints")
    func measuredRTT() {
        var configured = router()
        var measured = router()
        var rng = SplitMix64(seed: 1)
        let before = TestFleet.sent(
            configured.requestArrived(TestFleet.request("a", model: "only-w1"), now: .zero, rng: &rng)
        )
        measured.measuredRTT(to: "west", seconds: 0.3)
        measured.measuredRTT(to: "east", seconds: 9)  // the node's own region stays free
        let after = TestFleet.sent(
            measured.requestArrived(TestFleet.request("b", model: "only-w1"), now: .zero, rng: &rng)
        )
        #expect(
            close(
                (after?.expectedTTFT("w1") ?? 0) - (before?.expectedTTFT("w1") ?? 0),
                0.3 - Router.defaultRTT,
                tolerance: 1e-3
            )
        )
    }

    @Test("its digests carry the gauges it speaks for, its ledger, and what it saw of each endpoint's health")
    func digestsOut() {
        var router = router()
        var rng = SplitMix64(seed: 1)
        router.scraped("e1", LoadSample(takenAt: .zero, waiting: 2, running: 8, kvUsage: 0.25), now: .zero)
        let plan = TestFleet.sent(
            router.requestArrived(TestFleet.request("a", model: "only-e1"), now: .zero, rng: &rng)
        )!
        let load = router.loadDigest(reporting: ["e1"], now: TestFleet.at(0.5))
        #expect(load.entries.count == 1)
        #expect(load.entries.first?.waiting == 2 && load.entries.first?.inFlight == 1)
        #expect(load.entries.first?.pendingPrefillTokens == 1000)
        #expect(router.loadDigest(reporting: [], now: TestFleet.at(0.5)).entries.first?.waiting == nil)
        router.firstToken(plan.attempt, now: TestFleet.at(0.25))
        let health = router.healthDigest(now: TestFleet.at(0.5))
        #expect(health.entries.map(\.backend) == ["e1"])
        #expect(health.entries.first?.state == .healthy)
        #expect(health.entries.first?.ttftP50Ms == 250)
    }
}
