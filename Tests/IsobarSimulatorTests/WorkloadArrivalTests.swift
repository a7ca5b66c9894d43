import Foundation
import IsobarModel
import Testing

@testable import IsobarSimulator

@Suite("Arrival processes")
struct WorkloadArrivalTests {
    /// The first `count` arrival times of `arrivals` from a fixed seed.
    func times(_ arrivals: Arrivals, count: Int, seed: UInt64 = 11) -> [Double] {
        var clock = ArrivalClock(arrivals)
        var rng = Xoshiro256(seed: seed)
        return (0..<count).map { _ in clock.next(using: &rng) }
    }

    @Test(
        "Long-run mean rate",
        arguments: [
            Arrivals.Process.poisson, .gamma(cv: 0.5), .gamma(cv: 1.5), .diurnal(periodSeconds: 10, amplitude: 0.8),
        ]
    )
    func longRunRateIsTheRequestedRate(process: Arrivals.Process) {
        let arrivals = times(Arrivals(rate: 100, process: process), count: 200_000)
        let rate = Double(arrivals.count) / arrivals.last!
        #expect(abs(rate / 100 - 1) < 0.01, "measured \(rate) req/s")
        #expect(zip(arrivals, arrivals.dropFirst()).allSatisfy { $0 <= $1 })
    }

    @Test("Gamma gaps have the requested coefficient of variation", arguments: [0.5, 1, 2, 4])
    func gammaGapsHaveTheRequestedCV(cv: Double) {
        let arrivals = times(Arrivals(rate: 50, process: .gamma(cv: cv)), count: 200_000)
        let gaps = zip([0] + arrivals, arrivals).map { $1 - $0 }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        let variance = gaps.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(gaps.count - 1)
        #expect(abs(variance.squareRoot() / mean / cv - 1) < 0.05, "cv \(variance.squareRoot() / mean)")
    }

    @Test func diurnalRateFollowsTheSine() {
        // Over each period, the half with the positive sine carries (1 + 2a/π)/2 of the arrivals.
        let period = 20.0
        let amplitude = 0.5
        let arrivals = times(
            Arrivals(rate: 200, process: .diurnal(periodSeconds: period, amplitude: amplitude)),
            count: 100_000
        )
        let rising = arrivals.filter { $0.truncatingRemainder(dividingBy: period) < period / 2 }.count
        let expected = (1 + 2 * amplitude / Double.pi) / 2
        #expect(abs(Double(rising) / Double(arrivals.count) - expected) < 0.01)
    }

    @Test func zeroCVIsEvenlySpacedAndZeroRateNeverArrives() {
        #expect(times(Arrivals(rate: 4, process: .gamma(cv: 0)), count: 4) == [0.25, 0.5, 0.75, 1])
        #expect(times(Arrivals(rate: 0), count: 2) == [.infinity, .infinity])
    }

    @Test func clockStartsAfterItsStart() {
        var clock = ArrivalClock(Arrivals(rate: 10), start: 100)
        var rng = Xoshiro256(seed: 1)
        #expect(clock.time == 100)
        #expect(clock.next(using: &rng) > 100)
    }

    @Test func sameSeedSameArrivals() {
        let arrivals = Arrivals(rate: 30, process: .gamma(cv: 3))
        #expect(times(arrivals, count: 1000, seed: 5) == times(arrivals, count: 1000, seed: 5))
        #expect(times(arrivals, count: 1000, seed: 5) != times(arrivals, count: 1000, seed: 6))
    }

    @Test func invalidParametersAreNamed() {
        #expect(Arrivals(rate: 1, process: .diurnal(periodSeconds: 60, amplitude: 0.3)).problem == nil)
        #expect(Arrivals(rate: -1).problem == "rate must be a non-negative number")
        #expect(Arrivals(rate: 1, process: .gamma(cv: -2)).problem == "gamma: cv must be a non-negative number")
        #expect(Arrivals(rate: 1, process: .diurnal(periodSeconds: 60, amplitude: 2)).problem != nil)
    }
}
