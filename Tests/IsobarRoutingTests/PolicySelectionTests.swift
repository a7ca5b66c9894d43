import IsobarModel
import IsobarRouting
import Testing

/// The other load-aware policies as the router feeds them (its ledger, its observed first tokens), and
/// the choice of policy per model group.
@Suite("Policies in the router")
struct PolicySelectionTests {
    @Test("least-tokens picks the endpoint with the fewest outstanding tokens, not the fewest requests")
    func leastTokens() throws {
        for policy in [PolicyKind.leastTokens, .leastRequest] {
            var router = TestFleet.router([TestFleet.backend("a"), TestFleet.backend("b")], policy: policy)
            var rng = Xoshiro256(seed: 1)
            // `a`: one request of 30,000 prompt tokens; `b`: five of 100 tokens (10 output tokens each).
            _ = router.requestArrived(
                TestFleet.request("long", model: "only-a", prompt: 30_000, maxTokens: 10),
                now: .zero,
                rng: &rng
            )
            for n in 0..<5 {
                _ = router.requestArrived(
                    TestFleet.request("s\(n)", model: "only-b", prompt: 100, maxTokens: 10),
                    now: .zero,
                    rng: &rng
                )
            }
            let plan = try #require(
                TestFleet.sent(router.requestArrived(TestFleet.request("next"), now: .zero, rng: &rng))
            )
            #expect(plan.deployment.backend == (policy == .leastTokens ? "b" : "a"), "\(policy)")
            #expect(plan.decision.policy == policy)
        }
        // Output counts too: a long generation under way outweighs a few short prompts.
        var router = TestFleet.router([TestFleet.backend("a"), TestFleet.backend("b")], policy: .leastTokens)
        var rng = Xoshiro256(seed: 2)
        let writer = try #require(
            TestFleet.sent(
                router.requestArrived(
                    TestFleet.request("writer", model: "only-a", prompt: 100, maxTokens: 8000),
                    now: .zero,
                    rng: &rng
                )
            )
        )
        router.firstToken(writer.attempt, now: TestFleet.at(0.1))
        for n in 0..<3 {
            _ = router.requestArrived(TestFleet.request("s\(n)", model: "only-b", prompt: 1000), now: .zero, rng: &rng)
        }
        let plan = try #require(TestFleet.sent(router.requestArrived(TestFleet.request("next"), now: .zero, rng: &rng)))
        #expect(plan.deployment.backend == "b")
    }

    @Test("peak-ewma prefers the endpoint whose observed first tokens came faster")
    func peakEWMA() throws {
        var router = TestFleet.router([TestFleet.backend("a"), TestFleet.backend("b")], policy: .peakEWMA)
        var rng = Xoshiro256(seed: 3)
        // One observation each: `a` answered its first token after 2 s, `b` after 0.1 s.
        for (backend, seconds) in [("a", 2.0), ("b", 0.1)] {
            let request = TestFleet.request("probe-\(backend)", model: ModelName("only-\(backend)"))
            let plan = try #require(TestFleet.sent(router.requestArrived(request, now: .zero, rng: &rng)))
            router.firstToken(plan.attempt, now: TestFleet.at(seconds))
            router.completed(plan.attempt, usage: nil, now: TestFleet.at(seconds))
        }
        // Cost is latency × (in flight + 1): `b` wins until it has 20 times the requests of `a`.
        var picks: [BackendID: Int] = [:]
        for n in 0..<15 {
            let plan = try #require(
                TestFleet.sent(router.requestArrived(TestFleet.request("r\(n)"), now: TestFleet.at(2), rng: &rng))
            )
            picks[plan.deployment.backend, default: 0] += 1
        }
        #expect(picks == ["b": 15])
    }

    @Test("each model group runs the policy it names; the others run routing.policy")
    func policyPerModel() throws {
        let backends = [TestFleet.backend("a"), TestFleet.backend("b")]
        let deployments = backends.map { Deployment(backend: $0.name, model: "m") }
        let groups = PolicyKind.allCases.map {
            ModelGroup(name: ModelName("with-\($0.rawValue)"), deployments: deployments, policy: $0)
        }
        let topology = TestFleet.topology(backends, policy: .powerOfTwo, models: groups)
        var router = Router(topology: topology, node: "n1", configuration: RoutingConfiguration(topology: topology))
        var rng = Xoshiro256(seed: 4)
        for kind in PolicyKind.allCases {
            let request = TestFleet.request("r-\(kind.rawValue)", model: ModelName("with-\(kind.rawValue)"))
            let plan = try #require(TestFleet.sent(router.requestArrived(request, now: .zero, rng: &rng)))
            #expect(plan.decision.policy == kind)
        }
        let plain = try #require(
            TestFleet.sent(router.requestArrived(TestFleet.request("plain"), now: .zero, rng: &rng))
        )
        #expect(plain.decision.policy == .powerOfTwo)
        // A group's policy keeps its own state: round-robin alternates whatever other groups do.
        var picks: [BackendID] = []
        for n in 0..<4 {
            let request = TestFleet.request("rr\(n)", model: "with-round-robin")
            picks.append(
                try #require(TestFleet.sent(router.requestArrived(request, now: .zero, rng: &rng))).deployment.backend
            )
            _ = router.requestArrived(TestFleet.request("other\(n)", model: "with-random"), now: .zero, rng: &rng)
        }
        #expect(picks[0] != picks[1] && picks[1] != picks[2] && picks[2] != picks[3])
    }

    @Test("routing.debug_header makes every decision carry its candidates; without it only the pick")
    func debugHeaderExplains() throws {
        let backends = [TestFleet.backend("a"), TestFleet.backend("b")]
        var topology = TestFleet.topology(backends)
        var rng = Xoshiro256(seed: 5)
        var quiet = Router(topology: topology, node: "n1", configuration: RoutingConfiguration(topology: topology))
        let bare = try #require(TestFleet.sent(quiet.requestArrived(TestFleet.request("r"), now: .zero, rng: &rng)))
        #expect(bare.decision.candidates.isEmpty)
        topology.routing.debugHeader = true
        var explained = Router(topology: topology, node: "n1", configuration: RoutingConfiguration(topology: topology))
        let plan = try #require(TestFleet.sent(explained.requestArrived(TestFleet.request("r"), now: .zero, rng: &rng)))
        #expect(plan.decision.candidates.map(\.backend).sorted() == ["a", "b"])
        #expect(plan.decision.candidates.allSatisfy { close($0.expectedTTFT, 1000.0 / 20_000) })
        #expect(plan.decision.picked == plan.deployment.backend)
    }
}
