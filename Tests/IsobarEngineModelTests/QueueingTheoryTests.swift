import Foundation
import IsobarEngineModel
import IsobarModel
import Testing

/// With a constant step time and a batch cap of 1, the engine is an M/G/1 queue: service time is
/// (output tokens) × step. Its mean wait must match the Pollaczek–Khinchine formula
/// Wq = λ E[S²] / (2 (1 − ρ)).
@Suite("Engine model against queueing theory")
struct QueueingTheoryTests {
    static let step = 0.001

    /// Mean wait before service of `count` Poisson arrivals at utilisation `rho`, simulated and analytic.
    static func meanWait(rho: Double, count: Int, seed: UInt64) -> (simulated: Double, analytic: Double) {
        var rng = Xoshiro256(seed: seed)
        // Output tokens uniform on 1...20: E[S] = 10.5 steps, E[S²] = (20·21·41/6)/20 steps².
        let meanService = 10.5 * step
        let secondMoment = (20.0 * 21 * 41 / 6) / 20 * step * step
        let rate = rho / meanService
        var engine = EngineModel(profile: .fixedStep(step, seqs: 1))
        var now = 0.0
        var nextArrival = 0.0
        var arrivals: [UInt64: Double] = [:]
        var waited = 0.0
        var served = 0
        var id: UInt64 = 0
        var events: [EngineEvent] = []
        while served < count {
            if !engine.hasWork || nextArrival <= now {
                if !engine.hasWork { now = max(now, nextArrival) }
                id += 1
                arrivals[id] = nextArrival
                engine.add(EngineRequest(id: id, promptTokens: 1, outputTokens: Int.random(in: 1...20, using: &rng)))
                nextArrival += -log(1 - Double.random(in: 0..<1, using: &rng)) / rate
                continue
            }
            events.removeAll(keepingCapacity: true)
            let start = now
            now += engine.step(events: &events)
            for case .firstToken(let done) in events {
                // Service began at the start of the step that produced the first token.
                waited += start - arrivals.removeValue(forKey: done)!
                served += 1
            }
        }
        return (waited / Double(served), rate * secondMoment / (2 * (1 - rho)))
    }

    @Test("mean queueing delay within 3 % of Pollaczek–Khinchine at utilisation 0.5")
    func halfLoad() {
        let (simulated, analytic) = Self.meanWait(rho: 0.5, count: 400_000, seed: 1)
        #expect(abs(simulated / analytic - 1) < 0.03, "simulated \(simulated), analytic \(analytic)")
    }

    @Test("mean queueing delay within 3 % of Pollaczek–Khinchine at utilisation 0.8")
    func highLoad() {
        let (simulated, analytic) = Self.meanWait(rho: 0.8, count: 1_000_000, seed: 2)
        #expect(abs(simulated / analytic - 1) < 0.03, "simulated \(simulated), analytic \(analytic)")
    }
}
