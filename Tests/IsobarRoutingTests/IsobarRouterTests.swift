import IsobarModel
import IsobarRouting
import Testing

/// The `isobar` policy as a node runs it: expected time to first token from the ledger, scraped queues,
/// capacity hints, staleness and RTT (DESIGN §6). Default prefill rate without a hint: 20,000 tokens/s.
@Suite("The isobar policy in the router")
struct IsobarRouterTests {
    @Test("an endpoint with twice the prefill rate takes about twice the requests of a burst")
    func loadFollowsPrefillRate() {
        let backends = [
            TestFleet.backend("fast", capacity: Capacity(prefillTokensPerSecond: 40_000)),
            TestFleet.backend("slow", capacity: Capacity(prefillTokensPerSecond: 20_000)),
        ]
        var router = TestFleet.router(backends)
        var rng = Xoshiro256(seed: 5)
        for n in 0..<60 {
            #expect(
                TestFleet.sent(router.requestArrived(TestFleet.request("r\(n)", prompt: 2000), now: .zero, rng: &rng))
                    != nil
            )
        }
        let fast = router.inFlight(on: "fast")
        let slow = router.inFlight(on: "slow")
        #expect(fast + slow == 60)
        // Not exactly 2x: within a quarter of the best expected TTFT the endpoint holding fewer KV tokens
        // wins (even time per output token), which tilts a burst toward the slower one (37:23 here).
        let ratio = Double(fast) / Double(slow)
        #expect(ratio >= 1.5 && ratio <= 2.1, "fast \(fast), slow \(slow)")
        // Least-request splits the same burst evenly.
        var even = TestFleet.router(backends, policy: .leastRequest)
        for n in 0..<60 { _ = even.requestArrived(TestFleet.request("r\(n)", prompt: 2000), now: .zero, rng: &rng) }
        #expect(even.inFlight(on: "fast") == 30)
        // What each endpoint must prefill after the burst takes about as long on both: within the margin.
        let drain = ["fast", "slow"].map {
            let status = router.status(BackendID($0))
            return Double(status.prefillTokens) / status.prefillRate
        }
        #expect(drain.max()! <= drain.min()! * (1 + IsobarPolicy.marginShare), "\(drain)")
    }

    @Test("a long prompt avoids the endpoint already holding many unprefilled tokens; least-request does not")
    func longPromptAvoidsPrefillBacklog() throws {
        for policy in [PolicyKind.isobar, .leastRequest] {
            var router = TestFleet.router([TestFleet.backend("a"), TestFleet.backend("b")], policy: policy)
            var rng = Xoshiro256(seed: 6)
            // `a`: one request with a 40k-token prompt; `b`: three short ones.
            _ = router.requestArrived(TestFleet.request("long", model: "only-a", prompt: 40_000), now: .zero, rng: &rng)
            for n in 0..<3 {
                _ = router.requestArrived(
                    TestFleet.request("s\(n)", model: "only-b", prompt: 100),
                    now: .zero,
                    rng: &rng
                )
            }
            let action = router.requestArrived(TestFleet.request("next", prompt: 8000), now: .zero, rng: &rng)
            let plan = try #require(TestFleet.sent(action))
            if policy == .isobar {
                #expect(plan.deployment.backend == "b")
                #expect(close(plan.expectedTTFT("a"), (40_000 + 8000) / 20_000))
                #expect(close(plan.expectedTTFT("b"), (300 + 8000) / 20_000))
            } else {
                #expect(plan.deployment.backend == "a")
            }
        }
    }

    @Test("other clients' scraped waiting requests raise an endpoint's expected TTFT; the node's own count once")
    func scrapedQueueRaisesTTFT() throws {
        let backends = [TestFleet.backend("a", scraped: true), TestFleet.backend("b", scraped: true)]
        var router = TestFleet.router(backends)
        var rng = Xoshiro256(seed: 7)
        // Two of this node's requests wait on `a`; its engine reports exactly those two waiting.
        for n in 0..<2 {
            _ = router.requestArrived(TestFleet.request("own\(n)", model: "only-a"), now: .zero, rng: &rng)
        }
        router.scraped("a", LoadSample(takenAt: TestFleet.at(1), waiting: 2, running: 0), now: TestFleet.at(1))
        // `b` has no request of this node, but four of other clients waiting.
        router.scraped("b", LoadSample(takenAt: TestFleet.at(1), waiting: 4, running: 0), now: TestFleet.at(1))
        let action = router.requestArrived(TestFleet.request("next"), now: TestFleet.at(1.1), rng: &rng)
        let plan = try #require(TestFleet.sent(action))
        // Other clients' requests count at the model's mean prompt (1000 tokens here).
        #expect(close(plan.expectedTTFT("a"), (2000 + 1000) / 20_000))
        #expect(close(plan.expectedTTFT("b"), (4 * 1000 + 1000) / 20_000))
        #expect(plan.deployment.backend == "a")
    }

    @Test("a stale sample is never read as idle: its queue still counts, and the endpoint pays the stale penalty")
    func staleSamplesAreNotIdle() throws {
        let backends = [TestFleet.backend("a", scraped: true), TestFleet.backend("b", scraped: true)]
        let now = TestFleet.at(5)
        for waiting in [10, 0] {
            var router = TestFleet.router(backends)
            var rng = Xoshiro256(seed: 8)
            // `a` was last scraped 5 s ago (stale after 2 s); `b` 100 ms ago, with nothing waiting.
            router.scraped("a", LoadSample(takenAt: .zero, waiting: waiting, running: 4), now: .zero)
            router.scraped("b", LoadSample(takenAt: TestFleet.at(4.9), waiting: 0, running: 4), now: TestFleet.at(4.9))
            #expect(router.status("a", now: now).stale)
            #expect(!router.status("b", now: now).stale)
            let plan = try #require(TestFleet.sent(router.requestArrived(TestFleet.request("r"), now: now, rng: &rng)))
            let penalty = BalancingSettings().stalePenaltySeconds
            #expect(close(plan.expectedTTFT("a"), Double(waiting * 1000 + 1000) / 20_000 + penalty), "\(waiting)")
            #expect(close(plan.expectedTTFT("b"), 1000.0 / 20_000), "\(waiting)")
            #expect(plan.deployment.backend == "b", "waiting \(waiting)")
        }
        // The penalty is the configured one, and a fresh sample pays none.
        var router = TestFleet.router(backends, balancing: BalancingSettings(stalePenaltySeconds: 0.3))
        var rng = Xoshiro256(seed: 9)
        router.scraped("a", LoadSample(takenAt: .zero, waiting: 0), now: .zero)
        router.scraped("b", LoadSample(takenAt: .zero, waiting: 0), now: .zero)
        let fresh = try #require(
            TestFleet.sent(router.requestArrived(TestFleet.request("f"), now: TestFleet.at(1.9), rng: &rng))
        )
        #expect(close(fresh.expectedTTFT("a"), 1000.0 / 20_000))
        #expect(close(fresh.expectedTTFT("b"), 1000.0 / 20_000))
        router.abandoned(fresh.attempt, now: TestFleet.at(1.9))
        let stale = try #require(
            TestFleet.sent(router.requestArrived(TestFleet.request("s"), now: TestFleet.at(2.1), rng: &rng))
        )
        #expect(close(stale.expectedTTFT("a"), 1000.0 / 20_000 + 0.3))
        #expect(close(stale.expectedTTFT("b"), 1000.0 / 20_000 + 0.3))
    }

    /// Fails at 344f6e7: the estimate reads KV usage only from a fresh sample, so once the sample of an
    /// endpoint whose KV cache was 95 % full goes stale, its pressure term (0.9 s) drops to the 50 ms stale
    /// penalty and the endpoint is preferred over a fresh, moderately busy one. An engine too loaded to
    /// answer its scrapes in time is exactly the one whose sample goes stale.
    @Test("an endpoint last seen with a nearly full KV cache does not look better once that sample goes stale")
    func staleKVPressureStillCounts() throws {
        let backends = [TestFleet.backend("a", scraped: true), TestFleet.backend("b", scraped: true)]
        var router = TestFleet.router(backends)
        var rng = Xoshiro256(seed: 11)
        router.scraped("a", LoadSample(takenAt: .zero, waiting: 0, running: 8, kvUsage: 0.95), now: .zero)
        var ttft: [Double] = []
        for (n, seconds) in [1.0, 5.0].enumerated() {
            let now = TestFleet.at(seconds)
            // `b` is scraped fresh each time: two requests of other clients waiting.
            router.scraped("b", LoadSample(takenAt: now, waiting: 2, running: 8), now: now)
            let plan = try #require(
                TestFleet.sent(router.requestArrived(TestFleet.request("r\(n)"), now: now, rng: &rng))
            )
            ttft.append(try #require(plan.expectedTTFT("a")))
            #expect(plan.deployment.backend == "b", "at \(seconds) s: a \(ttft.last!), b \(plan.expectedTTFT("b")!)")
            router.abandoned(plan.attempt, now: now)
        }
        // While fresh: 50 ms of prefill + 0.05 × 0.95² / 0.05 s of KV pressure.
        #expect(close(ttft[0], 0.05 + 0.9025, tolerance: 1e-6))
        #expect(ttft[1] >= ttft[0], "stale \(ttft[1]) s < fresh \(ttft[0]) s")
    }

    @Test("RTT to a far region is added to the expected TTFT (50 ms for a region without a measurement)")
    func rttIsAdded() throws {
        // No backend in the node's region, so every candidate is remote.
        let backends = [
            TestFleet.backend("far", region: "ap"), TestFleet.backend("near", region: "west"),
            TestFleet.backend("unmeasured", region: "eu"),
        ]
        var router = TestFleet.router(backends, regionRTT: ["west": 0.02, "ap": 0.3])
        var rng = Xoshiro256(seed: 10)
        let plan = try #require(TestFleet.sent(router.requestArrived(TestFleet.request("r0"), now: .zero, rng: &rng)))
        #expect(close(plan.expectedTTFT("near"), 0.05 + 0.02))
        #expect(close(plan.expectedTTFT("far"), 0.05 + 0.3))
        #expect(close(plan.expectedTTFT("unmeasured"), 0.05 + 0.05))
        #expect(plan.deployment.backend == "near")
        // A burst fills the near regions before a request crosses to the far one.
        var picks: [BackendID] = [plan.deployment.backend]
        for n in 1..<12 {
            let next = try #require(
                TestFleet.sent(router.requestArrived(TestFleet.request("r\(n)"), now: .zero, rng: &rng))
            )
            picks.append(next.deployment.backend)
        }
        let firstFar = try #require(picks.firstIndex(of: "far"))
        #expect(firstFar >= 8, "\(picks)")
        let far = picks.filter { $0 == "far" }.count
        #expect(far < picks.filter { $0 == "near" }.count && far < picks.filter { $0 == "unmeasured" }.count)
    }
}
