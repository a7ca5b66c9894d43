import Foundation
import IsobarModel
import Testing

@testable import IsobarSimulator

@Suite("Length distributions")
struct WorkloadDistributionTests {
    /// `count` samples of `distribution` from a fixed seed.
    func samples(_ distribution: LengthDistribution, count: Int = 100_000, seed: UInt64 = 7) -> [Int] {
        var rng = Xoshiro256(seed: seed)
        return (0..<count).map { _ in distribution.sample(using: &rng) }
    }

    func mean(_ values: [Int]) -> Double { Double(values.reduce(0, +)) / Double(values.count) }

    /// The value below which `fraction` of `values` lie.
    func quantile(_ values: [Int], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        return Double(sorted[Int(fraction * Double(sorted.count - 1))])
    }

    /// How many of the sorted `values` are at most `limit`.
    func countAtMost(_ limit: Double, in values: [Int]) -> Int {
        var low = 0
        var high = values.count
        while low < high {
            let middle = (low + high) / 2
            if Double(values[middle]) > limit { high = middle } else { low = middle + 1 }
        }
        return low
    }

    @Test func constantIsRoundedAndClamped() {
        #expect(samples(LengthDistribution(.constant(300)), count: 10) == Array(repeating: 300, count: 10))
        #expect(samples(LengthDistribution(.constant(9000), max: 4096), count: 3) == [4096, 4096, 4096])
        #expect(samples(LengthDistribution(.constant(0)), count: 3) == [1, 1, 1])
    }

    @Test func uniformCoversItsRangeEvenly() {
        let values = samples(LengthDistribution(.uniform(low: 10, high: 20)), count: 50_000)
        #expect(Set(values) == Set(10...20))
        #expect(abs(mean(values) - 15) < 0.05)
    }

    @Test func lognormalHasItsMedianAndSpread() {
        let values = samples(LengthDistribution(.lognormal(median: 1000, sigma: 0.8), max: 1_000_000))
        #expect(abs(quantile(values, 0.5) / 1000 - 1) < 0.02)
        // One standard deviation above the mean in log space: median × e^σ, the 84.13th percentile.
        #expect(abs(quantile(values, 0.8413) / (1000 * exp(0.8)) - 1) < 0.03)
    }

    @Test func paretoHasItsMeanAndScale() {
        let values = samples(LengthDistribution(.pareto(xm: 100, alpha: 3), max: 100_000_000))
        #expect(values.min()! >= 100)
        // Mean of Pareto type I: α·xm / (α − 1).
        #expect(abs(mean(values) / 150 - 1) < 0.02)
    }

    @Test func exponentialHasItsMean() {
        let values = samples(LengthDistribution(.exponential(mean: 500), min: 0))
        #expect(abs(mean(values) / 500 - 1) < 0.015)
        // Median of the exponential: mean × ln 2.
        #expect(abs(quantile(values, 0.5) / (500 * log(2.0)) - 1) < 0.02)
    }

    @Test func mixtureDrawsComponentsByWeight() {
        let shape = LengthDistribution.Shape.mixture([
            (weight: 3, shape: .constant(10)), (weight: 0, shape: .constant(55)), (weight: 7, shape: .constant(1000)),
        ])
        let values = samples(LengthDistribution(shape))
        let short = Double(values.filter { $0 == 10 }.count) / Double(values.count)
        #expect(abs(short - 0.3) < 0.01)
        #expect(!values.contains(55))
        #expect(Set(values) == [10, 1000])
    }

    @Test func empiricalQuantilesMatchTheFilePoints() throws {
        let points = try EmpiricalCDF.load(path: WorkloadFixture.trace("length_cdfs/fleetsim_azure_cdf.json"))
        let values = samples(LengthDistribution(.empirical(points), max: 1_000_000)).sorted()
        for point in points where point.cumulative > 0.01 && point.cumulative < 0.99 {
            let fraction = Double(countAtMost(point.tokens, in: values)) / Double(values.count)
            #expect(abs(fraction - point.cumulative) < 0.01, "at \(point.tokens) tokens")
        }
        // The inverse transform hits every point exactly at its fraction, and interpolates between them.
        for (index, point) in points.enumerated() where index == 0 || points[index - 1].cumulative < point.cumulative {
            #expect(LengthDistribution.Shape.quantile(points, point.cumulative) == point.tokens)
        }
        #expect(LengthDistribution.Shape.quantile(points, 0) == 64)
        let middle = (points[3].cumulative + points[4].cumulative) / 2
        #expect(abs(LengthDistribution.Shape.quantile(points, middle) - 640) < 1e-9)
    }

    @Test func samplesStayWithinBounds() {
        let values = samples(LengthDistribution(.lognormal(median: 2000, sigma: 3), min: 16, max: 8192))
        #expect(values.min() == 16)
        #expect(values.max() == 8192)
    }

    @Test func sameSeedSameSamples() {
        let distribution = LengthDistribution(.lognormal(median: 800, sigma: 1))
        #expect(samples(distribution, count: 1000, seed: 1) == samples(distribution, count: 1000, seed: 1))
        #expect(samples(distribution, count: 1000, seed: 1) != samples(distribution, count: 1000, seed: 2))
    }

    @Test func invalidParametersAreNamed() {
        #expect(LengthDistribution(.constant(5)).problem == nil)
        #expect(LengthDistribution(.constant(5), min: 10, max: 2).problem == "min 10 is above max 2")
        #expect(LengthDistribution(.lognormal(median: -1, sigma: 1)).problem?.hasPrefix("lognormal") == true)
        #expect(LengthDistribution(.pareto(xm: 1, alpha: 0)).problem?.hasPrefix("pareto") == true)
        #expect(LengthDistribution(.mixture([(weight: 0, shape: .constant(1))])).problem?.hasPrefix("mixture") == true)
        let decreasing = LengthDistribution.Shape.empirical([(tokens: 10, cumulative: 0.5), (tokens: 5, cumulative: 1)])
        #expect(decreasing.problem == "empirical: point 2: tokens and cumulative fractions must not decrease")
    }
}
