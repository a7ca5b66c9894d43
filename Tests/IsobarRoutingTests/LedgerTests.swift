import IsobarModel
import IsobarRouting
import Testing

/// The node's in-flight ledger per endpoint, as `/metrics` shows it: credited when a request is picked,
/// moved from prefill to decode at its first token, cleared when the attempt ends however it ends.
@Suite("Router ledger")
struct LedgerTests {
    static let pair = [TestFleet.backend("a"), TestFleet.backend("b")]

    @Test("a pick credits the endpoint; the first token releases the prefill credit; completion clears it")
    func pickFirstTokenCompletion() throws {
        var router = TestFleet.router(Self.pair)
        var rng = Xoshiro256(seed: 1)
        let action = router.requestArrived(
            TestFleet.request("r1", model: "only-a", prompt: 1500),
            now: .zero,
            rng: &rng
        )
        let plan = try #require(TestFleet.sent(action))
        #expect(router.ledger("a") == [1, 1, 1500, 0])
        #expect(router.ledger("b") == [0, 0, 0, 0])

        router.firstToken(plan.attempt, now: TestFleet.at(0.1))
        #expect(router.ledger("a") == [1, 0, 0, 1])
        // A second report of the same first token changes nothing.
        router.firstToken(plan.attempt, now: TestFleet.at(0.2))
        #expect(router.ledger("a") == [1, 0, 0, 1])

        router.completed(plan.attempt, usage: Usage(promptTokens: 1500, completionTokens: 80), now: TestFleet.at(1))
        #expect(router.ledger("a") == [0, 0, 0, 0])
        #expect(router.activeRequests == 0)
    }

    @Test("abandoned and failed attempts release everything they hold, before or after their first token")
    func abandonAndFailRelease() throws {
        var router = TestFleet.router(Self.pair)
        var rng = Xoshiro256(seed: 2)
        let refused = UpstreamFailure.status(400, retryAfter: nil, body: .init(message: "bad"))
        for n in 0..<4 {
            let action = router.requestArrived(
                TestFleet.request("r\(n)", model: "only-a", prompt: 700 + n),
                now: .zero,
                rng: &rng
            )
            let plan = try #require(TestFleet.sent(action))
            #expect(router.ledger("a") == [1, 1, 700 + n, 0])
            let afterFirstToken = n % 2 == 1
            if afterFirstToken {
                router.firstToken(plan.attempt, now: TestFleet.at(0.1))
                #expect(router.ledger("a") == [1, 0, 0, 1])
            }
            if n < 2 {
                router.abandoned(plan.attempt, now: TestFleet.at(0.2))
            } else {
                let end = router.failed(plan.attempt, refused, now: TestFleet.at(0.2), rng: &rng)
                #expect(TestFleet.sent(end) == nil, "a 400 on the only deployment is not retried")
            }
            #expect(router.ledger("a") == [0, 0, 0, 0], "request \(n)")
        }
        #expect(router.activeRequests == 0)
    }

    @Test("a burst of identical requests on equal endpoints water-fills instead of herding")
    func burstWaterFills() {
        let backends = ["a", "b", "c", "d"].map { TestFleet.backend(BackendID($0)) }
        for policy in [PolicyKind.isobar, .leastTokens] {
            var router = TestFleet.router(backends, policy: policy)
            var rng = Xoshiro256(seed: 3)
            // 40 requests before any first token: only the pick-time credit tells the endpoints apart.
            for n in 0..<40 {
                let action = router.requestArrived(TestFleet.request("r\(n)", prompt: 2000), now: .zero, rng: &rng)
                #expect(TestFleet.sent(action) != nil)
            }
            for backend in backends {
                #expect(router.inFlight(on: backend.name) == 10, "\(policy) on \(backend.name)")
                #expect(router.status(backend.name).prefillTokens == 20_000, "\(policy) on \(backend.name)")
            }
        }
    }
}
