import IsobarModel
import Testing

@testable import IsobarRouting

/// Spill-over between regions and sticky sessions (DESIGN §7, `routing.proximity`). Node n1 is in `east`
/// with engine e1; w1 is in `west`, 80 ms away. Both prefill 10,000 tokens/s, so each 1,000-token
/// request waiting on an endpoint adds 0.1 s to the next one's expected time to first token there.
@Suite struct ProximityRoutingTests {
    static let capacity = Capacity(prefillTokensPerSecond: 10_000)
    let east = TestFleet.backend("e1", capacity: Self.capacity, scraped: true)
    let west = TestFleet.backend("w1", region: "west", capacity: Self.capacity, scraped: true)

    func router(
        policy: PolicyKind = .isobar,
        proximity: ProximitySettings = ProximitySettings(hysteresisMs: 50)
    ) -> Router {
        let topology = TestFleet.topology([east, west], policy: policy)
        var configuration = RoutingConfiguration(topology: topology, explainsDecisions: true)
        configuration.regionRTT = ["west": 0.08]
        configuration.proximity = proximity
        var router = Router(topology: topology, node: "n1", configuration: configuration)
        router.scraped("e1", LoadSample(takenAt: .zero, waiting: 0, running: 0), now: .zero)
        router.scraped("w1", LoadSample(takenAt: .zero, waiting: 0, running: 0), now: .zero)
        return router
    }

    /// Sends `count` requests at `now` (none completes) and returns where each went.
    func send(
        _ count: Int,
        to router: inout Router,
        from first: Int = 0,
        session: String? = nil,
        now: Instant = .zero
    ) -> [AttemptPlan] {
        var rng = SplitMix64(seed: 7)
        return (first..<first + count).map { i in
            var request = TestFleet.request("r\(i)")
            request.session = session
            return TestFleet.sent(router.requestArrived(request, now: now, rng: &rng))!
        }
    }

    @Test("traffic leaves the region only when the remote endpoint, RTT and hysteresis included, is sooner")
    func spillsPastTheHysteresis() {
        var router = router()
        let plans = send(6, to: &router)
        // Local waits 0.1, 0.2 s; the third local request would wait 0.3 s, remote 0.1 + 0.08 + 0.05.
        #expect(plans.prefix(2).allSatisfy { $0.deployment.backend == "e1" })
        #expect(plans[2].deployment.backend == "w1")
        #expect(close(plans[2].expectedTTFT("w1"), 0.23))
        #expect(close(plans[2].expectedTTFT("e1"), 0.3))
        // From then on the two water-fill: never more than one request's wait apart, RTT and margin included.
        #expect(plans.filter { $0.deployment.backend == "w1" }.count == 2)
        #expect(plans.allSatisfy { $0.region == ($0.deployment.backend == "w1" ? "west" : "east") })
    }

    @Test("a remote endpoint quicker only by less than the hysteresis does not draw traffic out of the region")
    func hysteresisHolds() {
        // 0.2 s local against 0.1 + 0.08 + 0.05 = 0.23 s remote: the remote endpoint is slower once
        // charged, though 20 ms quicker on RTT alone would have been tempting with no margin.
        var router = router(proximity: ProximitySettings(hysteresisMs: 50))
        _ = send(1, to: &router)
        let second = send(1, to: &router, from: 1)[0]
        #expect(second.deployment.backend == "e1")
        var eager = self.router(proximity: ProximitySettings(hysteresisMs: 0))
        _ = send(1, to: &eager)
        let eagerSecond = send(1, to: &eager, from: 1)[0]
        #expect(eagerSecond.deployment.backend == "w1", "without a margin 0.18 s remote beats 0.2 s local")
    }

    @Test("traffic comes back by itself: once the local backlog drains, new requests stay in the region")
    func returnsWhenLocalRecovers() {
        var router = router()
        let plans = send(6, to: &router)
        #expect(plans.contains { $0.deployment.backend == "w1" })
        for plan in plans where plan.deployment.backend == "e1" {
            router.firstToken(plan.attempt, now: TestFleet.at(1))
            router.completed(
                plan.attempt,
                usage: Usage(promptTokens: 1000, completionTokens: 100),
                now: TestFleet.at(1)
            )
        }
        router.scraped("e1", LoadSample(takenAt: TestFleet.at(1), waiting: 0, running: 0), now: TestFleet.at(1))
        router.scraped("w1", LoadSample(takenAt: TestFleet.at(1), waiting: 0, running: 0), now: TestFleet.at(1))
        let next = send(2, to: &router, from: 10, now: TestFleet.at(1))
        #expect(next.allSatisfy { $0.deployment.backend == "e1" })
    }

    @Test("no spill-over into the unknown: a remote engine without fresh load is not a candidate")
    func unknownRemoteLoad() {
        var router = router()
        // Both samples are from t = 0; at t = 10 they are stale. The local one still serves.
        router.scraped("e1", LoadSample(takenAt: TestFleet.at(10), waiting: 0, running: 0), now: TestFleet.at(10))
        let plans = send(6, to: &router, now: TestFleet.at(10))
        #expect(plans.allSatisfy { $0.deployment.backend == "e1" })
        #expect(plans[5].expectedTTFT("w1") == nil)
    }

    @Test("spill_over: false, or a policy blind to RTT, keeps a region's traffic at home while it can serve")
    func stayHome() {
        var off = router(proximity: ProximitySettings(spillOver: false))
        #expect(send(6, to: &off).allSatisfy { $0.deployment.backend == "e1" })
        var leastRequest = router(policy: .leastRequest)
        #expect(send(6, to: &leastRequest).allSatisfy { $0.deployment.backend == "e1" })
    }

    @Test("a session stays in the region that served it while it can, and is free again after session_ttl_s idle")
    func stickySessions() {
        var router = router(proximity: ProximitySettings(hysteresisMs: 50, sessionTTLSeconds: 60))
        // A backlog sends the third request of no session west; a session that starts then is pinned there.
        _ = send(2, to: &router)
        let first = send(1, to: &router, from: 2, session: "alice")[0]
        #expect(first.deployment.backend == "w1")
        #expect(router.pinnedSessions == 1)
        // Its next request stays west though east would now be as quick (more load west than east).
        let more = send(3, to: &router, from: 3, session: "alice", now: TestFleet.at(1))
        #expect(more.allSatisfy { $0.deployment.backend == "w1" })
        // A session pinned east stays east under the backlog others spill from.
        let bob = send(4, to: &router, from: 10, session: "bob", now: TestFleet.at(1))
        #expect(bob.allSatisfy { $0.deployment.backend == "e1" })
        // West unreachable: alice moves (and is pinned east now).
        var rng = SplitMix64(seed: 1)
        let cut = router.failed(more[0].attempt, .connect("connection refused"), now: TestFleet.at(2), rng: &rng)
        #expect(TestFleet.sent(cut)?.deployment.backend == "e1")
        let moved = send(1, to: &router, from: 20, session: "alice", now: TestFleet.at(3))[0]
        #expect(moved.deployment.backend == "e1")
        // Idle past the TTL, the pin is forgotten: the backlog decides again.
        router.probed("w1", reachable: true, now: TestFleet.at(70))
        router.scraped("w1", LoadSample(takenAt: TestFleet.at(70), waiting: 0, running: 0), now: TestFleet.at(70))
        router.scraped("e1", LoadSample(takenAt: TestFleet.at(70), waiting: 0, running: 0), now: TestFleet.at(70))
        let later = send(1, to: &router, from: 30, session: "bob", now: TestFleet.at(70))[0]
        #expect(later.deployment.backend == "w1", "east has 8 requests queued; bob's pin ran out at 61 s")
    }

    @Test("session pins are bounded: past the capacity, idle ones and then the oldest are dropped")
    func boundedPins() {
        var pins = SessionPins(capacity: 100)
        for i in 0..<1000 { pins.pin(UInt64(i), to: "east", now: TestFleet.at(Double(i)), ttl: .seconds(3600)) }
        #expect(pins.count <= 100)
        #expect(pins.region(of: 999, now: TestFleet.at(1000), ttl: .seconds(3600)) == "east")
        #expect(pins.region(of: 0, now: TestFleet.at(1000), ttl: .seconds(3600)) == nil)
        #expect(pins.region(of: 999, now: TestFleet.at(5000), ttl: .seconds(3600)) == nil)
    }
}
