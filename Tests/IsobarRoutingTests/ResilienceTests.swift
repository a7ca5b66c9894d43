import IsobarModel
import Testing

@testable import IsobarRouting

@Suite("Resilience: catch-all, context-length failover, timeouts, probes")
struct ResilienceTests {
    static let t0 = Instant.zero + .seconds(100)
    static let boom = UpstreamFailure.status(503, retryAfter: nil, body: .init(message: "down"))

    static func router(_ topology: Topology) -> Router {
        Router(topology: topology, node: "n1", configuration: RoutingConfiguration(topology: topology))
    }

    @Test("A model whose every breaker is open goes to the catch-all at once, retrying when the first reopens")
    func openBreakersGoToTheCatchAll() {
        var topology = TestFleet.topology([TestFleet.backend("a"), TestFleet.backend("b")])
        topology.routing.circuitBreaker = CircuitBreakerSettings(consecutiveFailures: 2, cooldownSeconds: 20)
        topology.catchAll = CatchAll(mode: .static)
        var router = Self.router(topology)
        var rng = Xoshiro256(seed: 1)
        for n in 0..<2 {
            let plan = TestFleet.sent(
                router.requestArrived(TestFleet.request("r\(n)", model: "only-a"), now: Self.t0, rng: &rng)
            )!
            _ = router.failed(plan.attempt, Self.boom, now: Self.t0, rng: &rng)
        }
        let action = router.requestArrived(
            TestFleet.request("x", model: "only-a"),
            now: Self.t0 + .seconds(2),
            rng: &rng
        )
        guard case .catchAll(let answer) = action else {
            Issue.record("expected the catch-all, got \(action)")
            return
        }
        #expect(answer.mode == .static)
        #expect(answer.retryAfter == .seconds(3), "the first cooldown is a quarter of 20 s, 2 s of it gone")
        #expect(answer.reason.contains("every deployment of 'only-a' is unavailable"))
        #expect(router.activeRequests == 0)
        // The model with another deployment is served around the open breaker.
        let chat = TestFleet.sent(router.requestArrived(TestFleet.request("y"), now: Self.t0 + .seconds(2), rng: &rng))
        #expect(chat?.deployment.backend == "b")
        // After the cooldown the probe is admitted again.
        let probe = router.requestArrived(
            TestFleet.request("z", model: "only-a"),
            now: Self.t0 + .seconds(5),
            rng: &rng
        )
        #expect(TestFleet.sent(probe)?.deployment.backend == "a")
    }

    @Test("A model whose deployments are all unavailable sends new requests straight to its fallback")
    func unavailableGoesToTheFallback() {
        var topology = TestFleet.topology([TestFleet.backend("a"), TestFleet.backend("b")])
        topology.routing.circuitBreaker = CircuitBreakerSettings(consecutiveFailures: 1, cooldownSeconds: 20)
        topology.models.append(
            ModelGroup(name: "big", deployments: [Deployment(backend: "a", model: "m")], fallbacks: ["only-b"])
        )
        var router = Self.router(topology)
        var rng = Xoshiro256(seed: 9)
        let first = TestFleet.sent(
            router.requestArrived(TestFleet.request("r", model: "big"), now: Self.t0, rng: &rng)
        )!
        #expect(first.deployment.backend == "a")
        let moved = TestFleet.sent(router.failed(first.attempt, Self.boom, now: Self.t0, rng: &rng))
        #expect(moved?.deployment.backend == "b")
        let next = TestFleet.sent(
            router.requestArrived(TestFleet.request("s", model: "big"), now: Self.t0 + .seconds(1), rng: &rng)
        )
        #expect(next?.deployment.backend == "b", "a's breaker is open: no attempt is wasted on it")
        #expect(next?.decision.reason == "unavailable")
    }

    @Test("A backend that asked for a pause is not sent to: its only model answers from the catch-all until then")
    func pausedBackend() {
        var router = TestFleet.router([TestFleet.backend("a")])
        var rng = Xoshiro256(seed: 2)
        let plan = TestFleet.sent(router.requestArrived(TestFleet.request("r"), now: Self.t0, rng: &rng))!
        let later = UpstreamFailure.status(429, retryAfter: .seconds(30), body: .init(message: "slow down"))
        // No retries are configured: the first request ends in the catch-all with the backend's pause.
        guard case .catchAll(let first) = router.failed(plan.attempt, later, now: Self.t0, rng: &rng) else {
            Issue.record("expected the catch-all")
            return
        }
        #expect(first.retryAfter == .seconds(30))
        let next = router.requestArrived(TestFleet.request("s"), now: Self.t0 + .seconds(10), rng: &rng)
        guard case .catchAll(let second) = next else {
            Issue.record("expected the catch-all, got \(next)")
            return
        }
        #expect(second.retryAfter == .seconds(20))
        #expect(
            TestFleet.sent(router.requestArrived(TestFleet.request("t"), now: Self.t0 + .seconds(30), rng: &rng)) != nil
        )
    }

    @Test("An unreachable backend is only avoided: alone, it is still tried (it may be back)")
    func unreachableIsSoft() {
        var router = TestFleet.router([TestFleet.backend("a")])
        var rng = Xoshiro256(seed: 3)
        let plan = TestFleet.sent(router.requestArrived(TestFleet.request("r"), now: Self.t0, rng: &rng))!
        _ = router.failed(plan.attempt, .connect("refused"), now: Self.t0, rng: &rng)
        #expect(!router.isUsable("a", now: Self.t0 + .seconds(1)))
        let next = router.requestArrived(TestFleet.request("s"), now: Self.t0 + .seconds(1), rng: &rng)
        #expect(TestFleet.sent(next)?.deployment.backend == "a")
    }

    // MARK: - Context length

    static func contextTopology() -> Topology {
        func backend(_ name: BackendID, window: Int?) -> Backend {
            TestFleet.backend(name, capacity: Capacity(contextWindow: window))
        }
        var topology = TestFleet.topology([
            backend("small", window: 8192), backend("large", window: 32768), backend("unknown", window: nil),
            backend("huge", window: 200_000),
        ])
        topology.models = [
            ModelGroup(
                name: "chat",
                deployments: [Deployment(backend: "small", model: "m"), Deployment(backend: "large", model: "m")],
                contextFallbacks: ["long"]
            ),
            ModelGroup(
                name: "mystery",
                deployments: [Deployment(backend: "unknown", model: "m"), Deployment(backend: "small", model: "m")],
                contextFallbacks: ["long"]
            ),
            ModelGroup(name: "long", deployments: [Deployment(backend: "huge", model: "m")]),
        ]
        topology.routing.policy = .roundRobin
        topology.routing.retries = RetrySettings(attempts: 2)
        return topology
    }

    static let tooLong = UpstreamFailure.status(
        400,
        retryAfter: nil,
        body: .init(
            message: "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
            type: "BadRequestError"
        )
    )

    @Test("A prompt too long goes to a larger context window of the model, then to its context fallbacks")
    func contextLength() {
        #expect(Self.tooLong.isContextLength)
        #expect(!Self.tooLong.isRetryable)
        var router = Self.router(Self.contextTopology())
        var rng = Xoshiro256(seed: 4)
        var first = TestFleet.sent(router.requestArrived(TestFleet.request("r"), now: Self.t0, rng: &rng))!
        if first.deployment.backend == "large" {
            // Round-robin started on `large`: take the next request, which starts on `small`.
            router.completed(first.attempt, usage: nil, now: Self.t0)
            first = TestFleet.sent(router.requestArrived(TestFleet.request("r2"), now: Self.t0, rng: &rng))!
        }
        #expect(first.deployment.backend == "small")
        let larger = TestFleet.sent(router.failed(first.attempt, Self.tooLong, now: Self.t0, rng: &rng))
        #expect(larger?.deployment.backend == "large")
        #expect(larger?.decision.reason == "context_length")
        guard let larger else { return }
        let anthropic = UpstreamFailure.status(
            400,
            retryAfter: nil,
            body: .init(message: "prompt is too long: 40000 tokens > 32768 maximum", type: "invalid_request_error")
        )
        let fallback = TestFleet.sent(router.failed(larger.attempt, anthropic, now: Self.t0, rng: &rng))
        #expect(fallback?.deployment.backend == "huge")
        guard let fallback else { return }
        // Nothing larger is left: the error itself reaches the client.
        let last = router.failed(fallback.attempt, Self.tooLong, now: Self.t0, rng: &rng)
        #expect(last == .reject(.upstream(Self.tooLong, backend: "huge", retriesSpent: true), retryAfter: nil))
        #expect(router.activeRequests == 0)
    }

    @Test("A deployment whose window is unknown is not followed by a guess: the context fallback takes over")
    func contextLengthUnknownWindow() {
        var router = Self.router(Self.contextTopology())
        var rng = Xoshiro256(seed: 5)
        let first = TestFleet.sent(
            router.requestArrived(TestFleet.request("r", model: "mystery"), now: Self.t0, rng: &rng)
        )!
        guard first.deployment.backend == "unknown" else { return }
        let next = TestFleet.sent(router.failed(first.attempt, Self.tooLong, now: Self.t0, rng: &rng))
        #expect(next?.deployment.backend == "huge")
    }

    @Test("A content-policy refusal is neither retried nor failed over: the client gets it")
    func contentPolicy() {
        let refusal = UpstreamFailure.status(
            400,
            retryAfter: nil,
            body: .init(message: "Your request was rejected by the safety system.", code: "content_policy_violation")
        )
        #expect(!refusal.isContextLength && !refusal.isRetryable && !refusal.allowsFailover)
        var router = Self.router(Self.contextTopology())
        var rng = Xoshiro256(seed: 6)
        let plan = TestFleet.sent(router.requestArrived(TestFleet.request("r"), now: Self.t0, rng: &rng))!
        let action = router.failed(plan.attempt, refusal, now: Self.t0, rng: &rng)
        #expect(
            action
                == .reject(.upstream(refusal, backend: plan.deployment.backend, retriesSpent: false), retryAfter: nil)
        )
    }

    // MARK: - Timeouts

    @Test("An attempt's timeouts are routing's, overridden by the backend's, overridden by the model's")
    func layeredTimeouts() {
        var slow = TestFleet.backend("slow")
        slow.timeouts = TimeoutOverrides(connectMs: 500, firstTokenMs: 20_000, totalMs: 45_000)
        var topology = TestFleet.topology([slow, TestFleet.backend("plain")])
        topology.routing.timeouts = TimeoutSettings(connectMs: 1000, firstTokenMs: 5000, idleMs: 7000, totalMs: 60_000)
        topology.models.append(
            ModelGroup(
                name: "reasoning",
                deployments: [Deployment(backend: "slow", model: "m")],
                timeouts: TimeoutOverrides(firstTokenMs: 90_000, totalMs: 300_000)
            )
        )
        var router = Self.router(topology)
        var rng = Xoshiro256(seed: 7)
        let onSlow = TestFleet.sent(
            router.requestArrived(TestFleet.request("a", model: "only-slow"), now: Self.t0, rng: &rng)
        )!
        #expect(onSlow.timeouts == TimeoutSettings(connectMs: 500, firstTokenMs: 20_000, idleMs: 7000, totalMs: 60_000))
        #expect(onSlow.attemptLimit == .seconds(45))
        #expect(onSlow.deadline == Self.t0 + .seconds(60))
        let onPlain = TestFleet.sent(
            router.requestArrived(TestFleet.request("b", model: "only-plain"), now: Self.t0, rng: &rng)
        )!
        #expect(onPlain.timeouts == topology.routing.timeouts)
        #expect(onPlain.attemptLimit == nil)
        let reasoning = TestFleet.sent(
            router.requestArrived(TestFleet.request("c", model: "reasoning"), now: Self.t0, rng: &rng)
        )!
        #expect(
            reasoning.timeouts == TimeoutSettings(connectMs: 500, firstTokenMs: 90_000, idleMs: 7000, totalMs: 300_000)
        )
        #expect(reasoning.deadline == Self.t0 + .seconds(300), "the model's total is the request's budget")
    }

    // MARK: - Probes

    @Test("A failed probe makes a backend avoided without any traffic; a good one makes it usable again")
    func probes() {
        var router = TestFleet.router([TestFleet.backend("a"), TestFleet.backend("b")])
        var rng = Xoshiro256(seed: 8)
        #expect(router.isIdle("a", for: .seconds(30), now: Self.t0), "never picked")
        router.probed("a", reachable: false, now: Self.t0)
        #expect(!router.isUsable("a", now: Self.t0))
        for n in 0..<4 {
            let plan = TestFleet.sent(router.requestArrived(TestFleet.request("r\(n)"), now: Self.t0, rng: &rng))!
            #expect(plan.deployment.backend == "b")
            router.completed(plan.attempt, usage: nil, now: Self.t0)
        }
        #expect(!router.isIdle("b", for: .seconds(30), now: Self.t0 + .seconds(29)))
        #expect(router.isIdle("b", for: .seconds(30), now: Self.t0 + .seconds(30)))
        router.probed("a", reachable: true, now: Self.t0 + .seconds(1))
        #expect(router.isUsable("a", now: Self.t0 + .seconds(1)))
    }
}
