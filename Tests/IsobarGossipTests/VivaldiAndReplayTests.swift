import IsobarModel
import Testing

@testable import IsobarGossip

@Suite struct VivaldiTests {
    @Test func coordinatesLearnAThreeRegionLatencyMatrix() {
        // 12 nodes in 3 regions: 1 ms within a region, 75/120/190 ms between.
        let region = (0..<12).map { $0 % 3 }
        let between: [[Double]] = [[0.001, 0.075, 0.190], [0.075, 0.001, 0.120], [0.190, 0.120, 0.001]]
        var coordinates = Array(repeating: VivaldiCoordinate(), count: 12)
        var rng = Xoshiro256(seed: 4)
        for _ in 0..<4000 {
            let a = Int.random(in: 0..<12, using: &rng)
            var b = Int.random(in: 0..<12, using: &rng)
            if b == a { b = (a + 1) % 12 }
            let rtt = between[region[a]][region[b]] * Double.random(in: 0.95...1.1, using: &rng)
            coordinates[a].update(rtt: rtt, other: coordinates[b], rng: &rng)
        }
        var worst = 0.0
        for a in 0..<12 {
            for b in 0..<12 where region[a] != region[b] {
                let truth = between[region[a]][region[b]]
                worst = max(worst, abs(coordinates[a].distance(to: coordinates[b]) - truth) / truth)
            }
        }
        #expect(worst < 0.25, "every cross-region estimate within 25 % (worst \(worst))")
        #expect(coordinates.map(\.error).sorted()[6] < 0.5, "and most nodes are confident in them")
    }

    @Test func nonsenseSamplesLeaveTheCoordinateAlone() {
        var c = VivaldiCoordinate()
        var rng = Xoshiro256(seed: 1)
        let other = VivaldiCoordinate(vector: Array(repeating: 0.01, count: 8), height: 0.001, error: 0.2)
        for rtt in [-1.0, 0, .nan, .infinity] { c.update(rtt: rtt, other: other, rng: &rng) }
        #expect(c == VivaldiCoordinate())
    }
}

@Suite struct ReplayGuardTests {
    @Test func acceptsNewAndReorderedPacketsRefusesRepeatsAndOldOnes() throws {
        var guardian = ReplayGuard(windowMilliseconds: 30_000)
        let now: UInt64 = 1_790_000_000_000
        let base: UInt64 = now << 20
        try guardian.admit(sender: "a", sequence: base + 10, sentAtMilliseconds: now, nowMilliseconds: now)
        try guardian.admit(sender: "a", sequence: base + 12, sentAtMilliseconds: now, nowMilliseconds: now)
        try guardian.admit(sender: "a", sequence: base + 11, sentAtMilliseconds: now, nowMilliseconds: now)
        #expect(throws: GossipError.self) {
            try guardian.admit(sender: "a", sequence: base + 11, sentAtMilliseconds: now, nowMilliseconds: now)
        }
        try guardian.admit(sender: "a", sequence: base + 200, sentAtMilliseconds: now, nowMilliseconds: now)
        #expect(throws: GossipError.self) {
            try guardian.admit(sender: "a", sequence: base + 100, sentAtMilliseconds: now, nowMilliseconds: now)
        }
        // Another sender has its own window.
        try guardian.admit(sender: "b", sequence: base + 11, sentAtMilliseconds: now, nowMilliseconds: now)
        // Outside the time window, however new the sequence.
        #expect(throws: GossipError.self) {
            try guardian.admit(
                sender: "a",
                sequence: base + 500,
                sentAtMilliseconds: now - 31_000,
                nowMilliseconds: now
            )
        }
        // A restarted sender numbers from its new boot time: accepted.
        let later = now + 5_000
        try guardian.admit(sender: "a", sequence: later << 20, sentAtMilliseconds: later, nowMilliseconds: later)
    }
}
