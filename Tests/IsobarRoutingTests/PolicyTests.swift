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
        let picks = (0..<9).map { _ in policy.pick(from: Self.candidates([5, 0, 9]), rng: &rng) }
        #expect(picks == [0, 1, 2, 0, 1, 2, 0, 1, 2])
    }

    @Test("random spreads picks roughly uniformly")
    func randomIsUniform() {
        let policy = RandomPolicy()
        var rng = Xoshiro256(seed: 7)
        var counts = [0, 0, 0, 0]
        for _ in 0..<40_000 { counts[policy.pick(from: Self.candidates([0, 0, 0, 0]), rng: &rng)] += 1 }
        for count in counts { #expect(abs(count - 10_000) < 600) }
    }

    @Test("least-request picks the least loaded candidate")
    func leastRequestPicksMinimum() {
        let policy = LeastRequestPolicy()
        var rng = Xoshiro256(seed: 3)
        for _ in 0..<100 {
            #expect(policy.pick(from: Self.candidates([4, 2, 7, 3]), rng: &rng) == 1)
        }
    }

    @Test("least-request breaks ties at random instead of herding on the first candidate")
    func leastRequestSpreadsTies() {
        let policy = LeastRequestPolicy()
        var rng = Xoshiro256(seed: 11)
        var counts = [0, 0, 0, 0]
        for _ in 0..<30_000 { counts[policy.pick(from: Self.candidates([1, 0, 0, 0]), rng: &rng)] += 1 }
        #expect(counts[0] == 0)
        for count in counts[1...] { #expect(abs(count - 10_000) < 600) }
    }

    @Test("power-of-two never picks the most loaded of many, and picks two distinct candidates")
    func powerOfTwoAvoidsWorst() {
        let policy = PowerOfTwoPolicy()
        var rng = Xoshiro256(seed: 5)
        let loads = [9, 1, 2, 3, 4]
        var counts = Array(repeating: 0, count: loads.count)
        for _ in 0..<50_000 { counts[policy.pick(from: Self.candidates(loads), rng: &rng)] += 1 }
        // The most loaded candidate loses every comparison it is sampled into.
        #expect(counts[0] == 0)
        // The least loaded wins every comparison it is in: sampled in 2 of 5 pairs -> 40 %.
        #expect(abs(Double(counts[1]) / 50_000 - 0.4) < 0.01)
        #expect(policy.pick(from: Self.candidates([3]), rng: &rng) == 0)
    }

    @Test("a burst water-fills when the ledger is credited at pick time")
    func burstWaterFills() {
        // Simulates the router's ledger: each pick adds one in-flight request before the next pick.
        for kind in [PolicyKind.leastRequest, .powerOfTwo, .roundRobin] {
            var policy = kind.makePolicy()!
            var rng = Xoshiro256(seed: 99)
            var loads = [0, 0, 0, 0]
            for _ in 0..<400 { loads[policy.pick(from: Self.candidates(loads), rng: &rng)] += 1 }
            #expect(loads.max()! - loads.min()! <= (kind == .powerOfTwo ? 3 : 1), "\(kind): \(loads)")
        }
    }

    @Test("only the policies of this build are available")
    func availability() {
        for kind in PolicyKind.allCases {
            #expect((kind.makePolicy() != nil) == kind.isAvailable)
            #expect(kind.makePolicy()?.kind ?? kind == kind)
        }
    }
}
