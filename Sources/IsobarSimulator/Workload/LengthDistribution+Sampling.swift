import IsobarModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension LengthDistribution {
    /// One token count: a draw from `shape`, rounded to the nearest integer and clamped to [min, max].
    ///
    /// The distribution must be valid (`problem` is nil); an invalid one traps.
    public func sample(using rng: inout some RandomNumberGenerator) -> Int {
        let value = shape.draw(using: &rng)
        guard value < Double(max) else { return max }
        guard value > Double(min) else { return min }
        return Int(value.rounded())
    }

    /// Why samples cannot be drawn (a parameter out of range), or nil when they can.
    public var problem: String? {
        guard min <= max else { return "min \(min) is above max \(max)" }
        return shape.problem
    }
}

extension LengthDistribution.Shape {
    /// Why samples cannot be drawn from this shape, or nil when they can.
    public var problem: String? {
        switch self {
        case .constant: return nil
        case .uniform(let low, let high): return low <= high ? nil : "uniform: low \(low) is above high \(high)"
        case .lognormal(let median, let sigma):
            return median > 0 && median.isFinite && sigma >= 0 && sigma.isFinite
                ? nil : "lognormal: median must be positive and sigma non-negative"
        case .pareto(let xm, let alpha):
            return xm > 0 && xm.isFinite && alpha > 0 && alpha.isFinite ? nil : "pareto: xm and alpha must be positive"
        case .exponential(let mean): return mean > 0 && mean.isFinite ? nil : "exponential: mean must be positive"
        case .mixture(let components):
            guard components.allSatisfy({ $0.weight >= 0 && $0.weight.isFinite }),
                components.contains(where: { $0.weight > 0 })
            else { return "mixture: weights must be non-negative, and one positive" }
            return components.lazy.compactMap(\.shape.problem).first
        case .empirical(let points): return EmpiricalCDF.problem(points).map { "empirical: \($0)" }
        }
    }

    /// One unrounded draw.
    func draw(using rng: inout some RandomNumberGenerator) -> Double {
        switch self {
        case .constant(let value):
            return Double(value)
        case .uniform(let low, let high):
            precondition(low <= high, "uniform(low: \(low), high: \(high))")
            return Double(Int.random(in: low...high, using: &rng))
        case .lognormal(let median, let sigma):
            return median * exp(sigma * Variates.normal(&rng))
        case .pareto(let xm, let alpha):
            // Inversion: F(x) = 1 − (xm/x)^α.
            return xm * pow(Variates.positiveUnit(&rng), -1 / alpha)
        case .exponential(let mean):
            return mean * Variates.exponential(&rng)
        case .mixture(let components):
            return Self.component(of: components, using: &rng).draw(using: &rng)
        case .empirical(let points):
            return Self.quantile(points, Variates.unit(&rng))
        }
    }

    /// A component picked with probability proportional to its weight.
    private static func component(
        of components: [(weight: Double, shape: Self)],
        using rng: inout some RandomNumberGenerator
    ) -> Self {
        var total = 0.0
        for component in components { total += component.weight }
        precondition(total > 0, "a mixture needs a positive weight")
        var remaining = Variates.unit(&rng) * total
        for component in components where component.weight > 0 {
            if remaining < component.weight { return component.shape }
            remaining -= component.weight
        }
        // Rounding left `remaining` at or just past the total: the last weighted component.
        return components.last { $0.weight > 0 }!.shape
    }

    /// The inverse of a piecewise-linear CDF at `u`: between the points around `u`, tokens are interpolated
    /// linearly; below the first point's fraction the first point's tokens are returned (the file gives no
    /// shape below it).
    static func quantile(_ points: [(tokens: Double, cumulative: Double)], _ u: Double) -> Double {
        precondition(!points.isEmpty, "an empirical CDF needs points")
        // Binary search for the first point with cumulative ≥ u.
        var low = 0
        var high = points.count
        while low < high {
            let middle = (low + high) / 2
            if points[middle].cumulative >= u { high = middle } else { low = middle + 1 }
        }
        guard low < points.count else { return points[points.count - 1].tokens }
        guard low > 0 else { return points[0].tokens }
        let below = points[low - 1]
        let above = points[low]
        let fraction = (u - below.cumulative) / (above.cumulative - below.cumulative)
        return below.tokens + fraction * (above.tokens - below.tokens)
    }
}
