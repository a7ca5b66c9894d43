import IsobarModel
import IsobarRouting
import Testing

@Suite("Balancing policies")
struct PolicyTests {
    static func candidates(_ inFlight: [Int]) -> [PolicyCandidate] {
        inFlight.enumerated().map { PolicyCandidate(index: $0.offset, inFlight: $0.element) }
    }

    @Test("round-robin visits every candidate once per cycle, in order")
    func roundRobinCycles() {
        var policy = RoundRobinPolicy()
        var rng = Xoshiro256(seed: 1)
        let picks = (0..<9).map { _ in
            policy.pick(from: Self.candidates([5, 0, 9]), affinityBudget: 0, rng: &rng).index
        }
        #expect(picks == [0, 1, 2, 0, 1, 2, 0, 1, 2])
    }

    @Test("random spreads picks roughly uniformly")
    func randomIsUniform() {
        let policy = RandomPolicy()
        var rng = Xoshiro256(seed: 7)
        var counts = [0, 0, 0, 0]
        for _ in 0..<40_000 {
            counts[policy.pick(from: Self.candidates([0, 0, 0, 0]), affinityBudget: 0, rng: &rng).index] += 1
        }
        for count in counts { #expect(abs(count - 10_000) < 600) }
    }

    @Test("least-request picks the least loaded candidate")
    func leastRequestPicksMinimum() {
        let policy = LeastRequestPolicy()
        var rng = Xoshiro256(seed: 3)
        for _ in 0..<100 {
            #expect(policy.pick(from: Self.candidates([4, 2, 7, 3]), affinityBudget: 0, rng: &rng).index == 1)
        }
    }

    @Test("least-request breaks ties at random instead of herding on the first candidate")
    func leastRequestSpreadsTies() {
        let policy = LeastRequestPolicy()
        var rng = Xoshiro256(seed: 11)
        var counts = [0, 0, 0, 0]
        for _ in 0..<30_000 {
            counts[policy.pick(from: Self.candidates([1, 0, 0, 0]), affinityBudget: 0, rng: &rng).index] += 1
        }
        #expect(counts[0] == 0)
        for count in counts[1...] { #expect(abs(count - 10_000) < 600) }
    }

    @Test("power-of-two never picks the most loaded of many, and picks two distinct candidates")
    func powerOfTwoAvoidsWorst() {
        let policy = PowerOfTwoPolicy()
        var rng = Xoshiro256(seed: 5)
        let loads = [9, 1, 2, 3, 4]
        var counts = Array(repeating: 0, count: loads.count)
        for _ in 0..<50_000 {
            counts[policy.pick(from: Self.candidates(loads), affinityBudget: 0, rng: &rng).index] += 1
        }
        // The most loaded candidate loses every comparison it is sampled into.
        #expect(counts[0] == 0)
        // The least loaded wins every comparison it is in: sampled in 2 of 5 pairs -> 40 %.
        #expect(abs(Double(counts[1]) / 50_000 - 0.4) < 0.01)
        #expect(policy.pick(from: Self.candidates([3]), affinityBudget: 0, rng: &rng).index == 0)
    }

    @Test("a burst water-fills when the ledger is credited at pick time")
    func burstWaterFills() {
        // Simulates the router's ledger: each pick adds one in-flight request before the next pick.
        for kind in [PolicyKind.leastRequest, .powerOfTwo, .roundRobin] {
            var policy = kind.makePolicy()
            var rng = Xoshiro256(seed: 99)
            var loads = [0, 0, 0, 0]
            for _ in 0..<400 {
                loads[policy.pick(from: Self.candidates(loads), affinityBudget: 0, rng: &rng).index] += 1
            }
            #expect(loads.max()! - loads.min()! <= (kind == .powerOfTwo ? 3 : 1), "\(kind): \(loads)")
        }
    }

    @Test("every policy of the design makes itself")
    func availability() {
        for kind in PolicyKind.allCases {
            #expect(kind.makePolicy().kind == kind)
        }
    }

    static func views(
        _ rows: [(inFlight: Int, tokens: Double, ttft: Double, cached: Int, latency: Double)]
    ) -> [PolicyCandidate] {
        rows.enumerated().map {
            PolicyCandidate(
                index: $0.offset,
                inFlight: $0.element.inFlight,
                outstandingTokens: $0.element.tokens,
                expectedTTFT: $0.element.ttft,
                cachedTokens: $0.element.cached,
                latency: $0.element.latency
            )
        }
    }

    @Test("least-tokens weighs requests by their token work, not their number")
    func leastTokens() {
        let policy = LeastTokensPolicy()
        var rng = Xoshiro256(seed: 1)
        // One endpoint with a single 30k-token prompt, one with five short requests.
        let candidates = Self.views([(1, 30_000, 0, 0, 0), (5, 2_000, 0, 0, 0)])
        #expect(policy.pick(from: candidates, affinityBudget: 0, rng: &rng).index == 1)
        #expect(LeastRequestPolicy().pick(from: candidates, affinityBudget: 0, rng: &rng).index == 0)
    }

    @Test("isobar picks the lowest expected TTFT, and keeps prefix affinity only within the budget")
    func isobarAffinity() {
        let policy = IsobarPolicy()
        var rng = Xoshiro256(seed: 1)
        let plain = Self.views([(0, 0, 0.30, 0, 0), (0, 0, 0.10, 0, 0), (0, 0, 0.20, 0, 0)])
        #expect(policy.pick(from: plain, affinityBudget: 0.2, rng: &rng) == (1, .best))
        // Endpoint 2 holds 4k of the prompt and is within 0.2 s of the best: affinity.
        let warm = Self.views([(0, 0, 0.30, 0, 0), (0, 0, 0.10, 0, 0), (0, 0, 0.25, 4096, 0)])
        #expect(policy.pick(from: warm, affinityBudget: 0.2, rng: &rng) == (2, .affinity))
        // Beyond the budget the cache is not worth the wait.
        let hot = Self.views([(0, 0, 0.30, 0, 0), (0, 0, 0.10, 0, 0), (0, 0, 0.45, 4096, 0)])
        #expect(policy.pick(from: hot, affinityBudget: 0.2, rng: &rng) == (1, .best))
    }

    @Test("peak-EWMA prefers the endpoint with the lower latency-weighted load of two samples")
    func peakEWMA() {
        let policy = PeakEWMAPolicy()
        var rng = Xoshiro256(seed: 4)
        var counts = [0, 0]
        let candidates = Self.views([(2, 0, 0, 0, 0.9), (2, 0, 0, 0, 0.1)])
        for _ in 0..<1000 { counts[policy.pick(from: candidates, affinityBudget: 0, rng: &rng).index] += 1 }
        #expect(counts == [0, 1000])
    }
}
