import IsobarModel
import IsobarRouting
import Testing

/// Admission control: what a node does when its endpoints are full or would answer too late, instead of
/// queueing forever.
@Suite("Admission control")
struct AdmissionTests {
    static let pair = [TestFleet.backend("a"), TestFleet.backend("b")]
    /// Two requests waiting for their first token per endpoint; two held at most, for five seconds.
    static let capped = AdmissionSettings(maxQueuePerEndpoint: 2, waitQueueRequests: 2, maxWaitSeconds: 5)

    static func released(_ actions: [(RequestID, RouteAction)]) -> [RequestID] {
        actions.compactMap { TestFleet.sent($0.1) != nil ? $0.0 : nil }
    }

    @Test("beyond the per-endpoint cap requests are held, and released oldest first as attempts end")
    func holdAndRelease() throws {
        var router = TestFleet.router(Self.pair, admission: Self.capped)
        var rng = Xoshiro256(seed: 1)
        var plans: [AttemptPlan] = []
        for n in 0..<4 {
            plans.append(
                try #require(TestFleet.sent(router.requestArrived(TestFleet.request("r\(n)"), now: .zero, rng: &rng)))
            )
        }
        #expect(router.inFlight(on: "a") == 2 && router.inFlight(on: "b") == 2)
        #expect(router.requestArrived(TestFleet.request("r4"), now: .zero, rng: &rng) == .hold(until: TestFleet.at(5)))
        #expect(
            router.requestArrived(TestFleet.request("r5"), now: TestFleet.at(0.5), rng: &rng)
                == .hold(until: TestFleet.at(5.5))
        )
        #expect(router.heldCount == 2)
        // Nothing freed yet: nothing to release.
        #expect(router.releaseHeld(now: TestFleet.at(1), rng: &rng).isEmpty)

        // Two attempts end (one completes, one gets its first token): both held requests go, in order.
        router.completed(plans[0].attempt, usage: nil, now: TestFleet.at(1))
        router.firstToken(plans[1].attempt, now: TestFleet.at(1))
        let out = router.releaseHeld(now: TestFleet.at(1), rng: &rng)
        #expect(Self.released(out) == ["r4", "r5"])
        #expect(out.allSatisfy { TestFleet.sent($0.1)?.decision.reason == "released" })
        #expect(router.heldCount == 0)
        #expect(router.inFlight(on: "a") + router.inFlight(on: "b") == 5)
    }

    @Test("a request that finds the held queue full is refused as overloaded with a retry-after")
    func fullWaitQueueRefuses() throws {
        var router = TestFleet.router(Self.pair, admission: Self.capped)
        var rng = Xoshiro256(seed: 2)
        for n in 0..<4 { _ = router.requestArrived(TestFleet.request("r\(n)"), now: .zero, rng: &rng) }
        for n in 4..<6 { #expect(router.requestArrived(TestFleet.request("r\(n)"), now: .zero, rng: &rng).isHold) }
        let refused = router.requestArrived(TestFleet.request("r6"), now: .zero, rng: &rng)
        #expect(refused == .reject(.overloaded, retryAfter: .seconds(1)))
        #expect(router.heldCount == 2)
        #expect(router.activeRequests == 6)
        // With no wait queue at all, the first request over the cap is refused at once.
        var strict = TestFleet.router(
            Self.pair,
            admission: AdmissionSettings(maxQueuePerEndpoint: 1, waitQueueRequests: 0)
        )
        for n in 0..<2 { _ = strict.requestArrived(TestFleet.request("r\(n)"), now: .zero, rng: &rng) }
        #expect(
            strict.requestArrived(TestFleet.request("r2"), now: .zero, rng: &rng)
                == .reject(.overloaded, retryAfter: .seconds(1))
        )
    }

    @Test("a request held longer than max_wait is refused as overloaded with a retry-after")
    func heldTooLongIsRefused() throws {
        var router = TestFleet.router(Self.pair, admission: Self.capped)
        var rng = Xoshiro256(seed: 3)
        for n in 0..<4 { _ = router.requestArrived(TestFleet.request("r\(n)"), now: .zero, rng: &rng) }
        #expect(router.requestArrived(TestFleet.request("held"), now: .zero, rng: &rng).isHold)
        #expect(router.releaseHeld(now: TestFleet.at(4.9), rng: &rng).isEmpty)
        #expect(router.heldCount == 1)
        let out = router.releaseHeld(now: TestFleet.at(5), rng: &rng)
        #expect(out.count == 1)
        #expect(out.first?.0 == "held")
        #expect(out.first?.1 == .reject(.overloaded, retryAfter: .seconds(1)))
        #expect(router.heldCount == 0)
        #expect(router.activeRequests == 4)
    }

    @Test("a held request whose client leaves is forgotten")
    func abandonHeld() {
        var router = TestFleet.router(Self.pair, admission: Self.capped)
        var rng = Xoshiro256(seed: 4)
        for n in 0..<4 { _ = router.requestArrived(TestFleet.request("r\(n)"), now: .zero, rng: &rng) }
        #expect(router.requestArrived(TestFleet.request("gone"), now: .zero, rng: &rng).isHold)
        router.abandonHeld("gone")
        #expect(router.heldCount == 0)
        #expect(router.activeRequests == 4)
        #expect(router.releaseHeld(now: TestFleet.at(6), rng: &rng).isEmpty)
    }

    @Test("other clients' scraped queue counts toward an endpoint's cap")
    func scrapedQueueFillsEndpoint() throws {
        let backends = [TestFleet.backend("a", scraped: true), TestFleet.backend("b", scraped: true)]
        var router = TestFleet.router(backends, admission: Self.capped)
        var rng = Xoshiro256(seed: 5)
        router.scraped("a", LoadSample(takenAt: .zero, waiting: 2), now: .zero)
        for n in 0..<2 {
            let plan = try #require(
                TestFleet.sent(router.requestArrived(TestFleet.request("r\(n)"), now: .zero, rng: &rng))
            )
            #expect(plan.deployment.backend == "b")
        }
        #expect(router.requestArrived(TestFleet.request("r2"), now: .zero, rng: &rng).isHold)
    }

    /// Fails at 344f6e7: `releaseHeld` stops at the first held request that still has no room, so a request
    /// for a model whose endpoint has freed waits behind another model's held request until that one moves
    /// or its own `max_wait` runs out (and it is refused as overloaded beside an idle endpoint).
    @Test("a held request whose endpoint frees is not blocked behind another model's held request")
    func noHeadOfLineBlockingAcrossModels() throws {
        var router = TestFleet.router(
            Self.pair,
            admission: AdmissionSettings(maxQueuePerEndpoint: 1, waitQueueRequests: 10, maxWaitSeconds: 5)
        )
        var rng = Xoshiro256(seed: 6)
        _ = try #require(
            TestFleet.sent(router.requestArrived(TestFleet.request("a1", model: "only-a"), now: .zero, rng: &rng))
        )
        #expect(router.requestArrived(TestFleet.request("a2", model: "only-a"), now: .zero, rng: &rng).isHold)
        let b1 = try #require(
            TestFleet.sent(router.requestArrived(TestFleet.request("b1", model: "only-b"), now: .zero, rng: &rng))
        )
        #expect(router.requestArrived(TestFleet.request("b2", model: "only-b"), now: .zero, rng: &rng).isHold)
        // `b` frees; `a` is still full.
        router.completed(b1.attempt, usage: nil, now: TestFleet.at(1))
        let out = router.releaseHeld(now: TestFleet.at(1), rng: &rng)
        #expect(Self.released(out) == ["b2"])
        #expect(router.heldCount == 1)
    }

    @Test("max_predicted_ttft refuses a request whose best expected TTFT is over it, with a retry-after")
    func predictedTTFTLimit() throws {
        var router = TestFleet.router(Self.pair, admission: AdmissionSettings(maxPredictedTTFTSeconds: 0.5))
        var rng = Xoshiro256(seed: 7)
        // Each 5000-token prompt is 0.25 s of prefill at 20,000 tokens/s: two fit under 0.5 s per endpoint.
        var plans: [AttemptPlan] = []
        for n in 0..<4 {
            let action = router.requestArrived(TestFleet.request("r\(n)", prompt: 5000), now: .zero, rng: &rng)
            plans.append(try #require(TestFleet.sent(action), "request \(n): \(action)"))
        }
        // The next would wait 0.75 s anywhere: refused, come back in a second (the floor).
        let over = router.requestArrived(TestFleet.request("r4", prompt: 5000), now: .zero, rng: &rng)
        #expect(over == .reject(.overloaded, retryAfter: .seconds(1)))
        // A 40k-token prompt would wait 2.5 s at best: come back when the excess has drained, in 2 s.
        let long = router.requestArrived(TestFleet.request("r5", prompt: 40_000), now: .zero, rng: &rng)
        #expect(long == .reject(.overloaded, retryAfter: .seconds(2)))
        #expect(router.activeRequests == 4)
        // A first token frees its endpoint's prefill: the next request fits again.
        router.firstToken(plans[0].attempt, now: TestFleet.at(0.25))
        let fits = router.requestArrived(TestFleet.request("r6", prompt: 5000), now: TestFleet.at(0.25), rng: &rng)
        #expect(TestFleet.sent(fits)?.deployment.backend == plans[0].deployment.backend)
    }
}
