import Foundation

/// A fixed-memory histogram of positive durations with logarithmic buckets: quantiles to within 0.5 %
/// relative error, exact count, mean and maximum. Memory does not grow with the number of samples, so a
/// run of millions of requests keeps constant memory.
public struct LatencyHistogram: Sendable, Equatable {
    /// Relative width of a bucket.
    static let growth = 1.01
    /// Smallest resolved value, in seconds; smaller values share the first bucket.
    static let floor = 1e-5
    static let bucketCount = 2400
    private static let logGrowth = 1 / log(growth)

    private var buckets = [UInt32](repeating: 0, count: bucketCount)
    public private(set) var count = 0
    public private(set) var sum = 0.0
    public private(set) var maximum = 0.0

    public init() {}

    public mutating func record(_ seconds: Double) {
        count += 1
        sum += seconds
        if seconds > maximum { maximum = seconds }
        let index = seconds <= Self.floor ? 0 : Int(log(seconds / Self.floor) * Self.logGrowth) + 1
        buckets[min(index, Self.bucketCount - 1)] += 1
    }

    public var mean: Double { count == 0 ? 0 : sum / Double(count) }

    /// The value below which a fraction `q` of samples fall (the bucket's geometric middle; exact at the
    /// top end, where the maximum is returned).
    public func quantile(_ q: Double) -> Double {
        guard count > 0 else { return 0 }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        if rank >= count { return maximum }
        var seen = 0
        for (index, n) in buckets.enumerated() where n > 0 {
            seen += Int(n)
            if seen >= rank {
                guard index > 0 else { return Self.floor }
                let low = Self.floor * pow(Self.growth, Double(index - 1))
                return min(maximum, low * sqrt(Self.growth))
            }
        }
        return maximum
    }

    /// Fractions of samples at or below each of `values` (an empirical CDF, for charts).
    public func cdf(at values: [Double]) -> [Double] {
        guard count > 0 else { return values.map { _ in 0 } }
        var cumulative = [Int](repeating: 0, count: Self.bucketCount)
        var running = 0
        for (index, n) in buckets.enumerated() {
            running += Int(n)
            cumulative[index] = running
        }
        return values.map { value in
            let index = value <= Self.floor ? 0 : Int(log(value / Self.floor) * Self.logGrowth) + 1
            return Double(cumulative[min(index, Self.bucketCount - 1)]) / Double(count)
        }
    }

    /// Adds another histogram's samples.
    public mutating func merge(_ other: LatencyHistogram) {
        for i in buckets.indices { buckets[i] += other.buckets[i] }
        count += other.count
        sum += other.sum
        maximum = max(maximum, other.maximum)
    }
}

extension [Double] {
    /// The exact `q` quantile by nearest rank (the smallest value with at least `q` of the values at or
    /// below it), 0 when empty. For the few-thousand-value samples of calibration and experiments, where a
    /// histogram's bucket error would matter.
    func nearestRank(_ q: Double) -> Double {
        guard !isEmpty else { return 0 }
        let sorted = sorted()
        return sorted[Swift.min(sorted.count - 1, Int((q * Double(sorted.count)).rounded(.up)) - 1)]
    }
}
