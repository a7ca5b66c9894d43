import IsobarModel
import Testing

@testable import IsobarRouting

@Suite("Model fallbacks")
struct FallbackTests {
    /// `big` on backend `a` falls back to `mid` (on `b`), which falls back to `small` (on `c`) and to `big`
    /// (a cycle the router must not follow twice). No same-deployment retries.
    static func router() -> Router {
        let backends = ["a", "b", "c"].map { TestFleet.backend(BackendID($0)) }
        let models = [
            ModelGroup(name: "big", deployments: [Deployment(backend: "a", model: "big-m")], fallbacks: ["mid"]),
            ModelGroup(
                name: "mid",
                deployments: [Deployment(backend: "b", model: "mid-m")],
                fallbacks: ["small", "big"]
            ),
            ModelGroup(name: "small", deployments: [Deployment(backend: "c", model: "small-m")]),
        ]
        var topology = TestFleet.topology(backends)
        topology.models = models
        return Router(topology: topology, node: "n1", configuration: RoutingConfiguration(topology: topology))
    }

    static let down = UpstreamFailure.status(503, retryAfter: nil, body: .init(message: "overloaded"))

    @Test("When every deployment of a model fails, the request goes down its fallbacks in order, then to the catch-all")
    func downgrade() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 1)
        let first = TestFleet.sent(router.requestArrived(TestFleet.request("r", model: "big"), now: .zero, rng: &rng))!
        #expect(first.deployment.model == "big-m")
        let second = TestFleet.sent(router.failed(first.attempt, Self.down, now: .zero, rng: &rng))
        #expect(second?.deployment.model == "mid-m")
        #expect(second?.attemptNumber == 2)
        let third = second.flatMap { TestFleet.sent(router.failed($0.attempt, Self.down, now: .zero, rng: &rng)) }
        #expect(third?.deployment.model == "small-m")
        guard let third else { return }
        let last = router.failed(third.attempt, Self.down, now: .zero, rng: &rng)
        guard case .catchAll(let answer) = last else {
            Issue.record("expected the catch-all, got \(last)")
            return
        }
        #expect(
            answer.reason == "backend 'c' failed (HTTP 503: overloaded) and no other deployment or fallback is left"
        )
        #expect(router.activeRequests == 0)
    }

    @Test("A request the upstream rejects as malformed (400) does not fall back: no model would take it")
    func noFallbackForBadRequests() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 2)
        let first = TestFleet.sent(router.requestArrived(TestFleet.request("r", model: "big"), now: .zero, rng: &rng))!
        let bad = UpstreamFailure.status(400, retryAfter: nil, body: .init(message: "bad"))
        let action = router.failed(first.attempt, bad, now: .zero, rng: &rng)
        #expect(action == .reject(.upstream(bad, backend: "a", retriesSpent: false), retryAfter: nil))
    }

    @Test("A fallback's success ends the request and teaches the fallback model's output lengths")
    func fallbackServes() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 3)
        let first = TestFleet.sent(router.requestArrived(TestFleet.request("r", model: "big"), now: .zero, rng: &rng))!
        let second = TestFleet.sent(router.failed(first.attempt, Self.down, now: .zero, rng: &rng))!
        #expect(router.ledger("b") == [1, 1, 1000, 0])
        router.completed(second.attempt, usage: Usage(promptTokens: 1000, completionTokens: 40), now: .zero)
        #expect(router.ledger("b") == [0, 0, 0, 0])
        #expect(router.activeRequests == 0)
    }
}
