import IsobarModel
import Testing

@testable import IsobarRouting

@Suite("Circuit breakers")
struct CircuitBreakerTests {
    static let t0 = Instant.zero + .seconds(100)

    @Test("Opens at the threshold, admits one probe after the cooldown, closes on its success")
    func stateMachine() {
        var breaker = CircuitBreaker(threshold: 3, maxCooldown: .seconds(30))
        for _ in 0..<2 { breaker.failed(at: Self.t0) }
        #expect(breaker.state == .closed)
        breaker.succeeded()
        for _ in 0..<2 { breaker.failed(at: Self.t0) }
        #expect(breaker.state == .closed, "a success resets the count: failures must be in a row")
        breaker.failed(at: Self.t0)
        #expect(breaker.state == .open(until: Self.t0 + .milliseconds(7500)))
        #expect(!breaker.admits(at: Self.t0 + .seconds(7)))
        #expect(breaker.admits(at: Self.t0 + .milliseconds(7500)))
        breaker.attemptStarted(at: Self.t0 + .seconds(8))
        #expect(breaker.state == .halfOpen(probing: true))
        #expect(!breaker.admits(at: Self.t0 + .seconds(9)), "exactly one probe in flight")
        breaker.abandoned()
        #expect(breaker.admits(at: Self.t0 + .seconds(9)), "an abandoned probe frees the slot for another")
        breaker.attemptStarted(at: Self.t0 + .seconds(9))
        breaker.succeeded()
        #expect(breaker.state == .closed)
    }

    @Test("A backend failing every other call never strings failures together: the error-rate window opens it")
    func errorRateWindow() {
        var breaker = CircuitBreaker(threshold: 5, maxCooldown: .seconds(30), window: 10, errorRate: 0.5)
        for i in 0..<9 {
            if i % 2 == 0 { breaker.failed(at: Self.t0) } else { breaker.succeeded() }
            #expect(breaker.state == .closed, "not before the window is full (\(i + 1) outcomes)")
        }
        breaker.failed(at: Self.t0)
        #expect(breaker.state == .open(until: Self.t0 + .milliseconds(7500)), "6 of the last 10 failed")

        var healthy = CircuitBreaker(threshold: 5, maxCooldown: .seconds(30), window: 10, errorRate: 0.5)
        for i in 0..<100 {
            if i % 5 == 0 { healthy.failed(at: Self.t0) } else { healthy.succeeded() }
        }
        #expect(healthy.state == .closed, "one failure in five stays under the rate")
    }

    @Test("A failed probe reopens with a longer cooldown, doubling up to the configured one")
    func cooldownGrows() {
        var breaker = CircuitBreaker(threshold: 1, maxCooldown: .seconds(30))
        var now = Self.t0
        var cooldowns: [Duration] = []
        for _ in 0..<5 {
            breaker.failed(at: now)
            guard case .open(let until) = breaker.state else {
                Issue.record("expected open, got \(breaker.state)")
                return
            }
            cooldowns.append(until - now)
            now = until
            breaker.attemptStarted(at: now)
        }
        #expect(cooldowns == [.milliseconds(7500), .seconds(15), .seconds(30), .seconds(30), .seconds(30)])
        breaker.succeeded()
        breaker.failed(at: now)
        #expect(breaker.state == .open(until: now + .milliseconds(7500)), "a success starts the schedule over")
    }

    /// Two backends behind `chat`, breaker threshold 3 and cooldown 30 s.
    static func router() -> Router {
        var topology = TestFleet.topology([TestFleet.backend("a"), TestFleet.backend("b")], policy: .roundRobin)
        topology.routing.circuitBreaker = CircuitBreakerSettings(consecutiveFailures: 3, cooldownSeconds: 30)
        return Router(topology: topology, node: "n1", configuration: RoutingConfiguration(topology: topology))
    }

    @Test("A backend failing with 503 in a row is served around while open, probed once, and gets traffic back")
    func routerServesAround() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 1)
        let boom = UpstreamFailure.status(503, retryAfter: nil, body: .init(message: "down"))
        var n = 0
        func next(_ now: Instant, model: ModelName = "chat") -> AttemptPlan {
            n += 1
            return TestFleet.sent(router.requestArrived(TestFleet.request("r\(n)", model: model), now: now, rng: &rng))!
        }
        // Three failures in a row on `a` (its single-deployment model, so no failover muddles the count).
        for _ in 0..<3 {
            let plan = next(Self.t0, model: "only-a")
            #expect(plan.deployment.backend == "a")
            _ = router.failed(plan.attempt, boom, now: Self.t0, rng: &rng)
        }
        #expect(!router.isUsable("a", now: Self.t0 + .seconds(1)))
        // While open, every `chat` request goes to `b` (round-robin would alternate otherwise).
        for _ in 0..<6 {
            let plan = next(Self.t0 + .seconds(1))
            #expect(plan.deployment.backend == "b")
            router.completed(plan.attempt, usage: nil, now: Self.t0 + .seconds(1))
        }
        // After the first cooldown (7.5 s) exactly one probe goes to `a`; the rest still go to `b`.
        let probeTime = Self.t0 + .seconds(8)
        var toA: [AttemptPlan] = []
        for _ in 0..<6 {
            let plan = next(probeTime)
            if plan.deployment.backend == "a" { toA.append(plan) }
        }
        #expect(toA.count == 1)
        // The probe succeeds: `a` is closed and shares the load again.
        router.completed(toA[0].attempt, usage: nil, now: probeTime + .seconds(1))
        let after = (0..<6).map { _ in next(probeTime + .seconds(2)).deployment.backend }
        #expect(after.filter { $0 == "a" }.count == 3)
        #expect(router.status("a", now: probeTime + .seconds(2)).breaker == .closed)
    }

    @Test("A request the backend rejects as malformed (400) proves it up: the breaker does not count it")
    func clientErrorsDoNotOpen() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 2)
        for n in 0..<6 {
            let plan = TestFleet.sent(
                router.requestArrived(TestFleet.request("r\(n)", model: "only-a"), now: Self.t0, rng: &rng)
            )!
            let bad = UpstreamFailure.status(400, retryAfter: nil, body: .init(message: "bad request"))
            _ = router.failed(plan.attempt, bad, now: Self.t0, rng: &rng)
        }
        #expect(router.isUsable("a", now: Self.t0))
        #expect(router.status("a", now: Self.t0).breaker == .closed)
    }

    @Test("retry-after pauses a backend for every request, up to 60 s")
    func retryAfterPausesForAll() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 3)
        let plan = TestFleet.sent(
            router.requestArrived(TestFleet.request("first", model: "only-a"), now: Self.t0, rng: &rng)
        )!
        let later = UpstreamFailure.status(429, retryAfter: .seconds(30), body: .init(message: "slow down"))
        _ = router.failed(plan.attempt, later, now: Self.t0, rng: &rng)
        #expect(!router.isUsable("a", now: Self.t0 + .seconds(29)))
        #expect(router.status("a", now: Self.t0 + .seconds(29)).paused)
        for n in 0..<4 {
            let other = TestFleet.sent(
                router.requestArrived(TestFleet.request("r\(n)"), now: Self.t0 + .seconds(5), rng: &rng)
            )!
            #expect(other.deployment.backend == "b")
        }
        #expect(router.isUsable("a", now: Self.t0 + .seconds(30)))

        let long = TestFleet.sent(
            router.requestArrived(TestFleet.request("long", model: "only-a"), now: Self.t0 + .seconds(40), rng: &rng)
        )!
        let hour = UpstreamFailure.status(429, retryAfter: .seconds(3600), body: .init(message: "tomorrow"))
        _ = router.failed(long.attempt, hour, now: Self.t0 + .seconds(40), rng: &rng)
        #expect(!router.isUsable("a", now: Self.t0 + .seconds(99)))
        #expect(router.isUsable("a", now: Self.t0 + .seconds(100)), "a pause is capped at 60 s")
    }
}
