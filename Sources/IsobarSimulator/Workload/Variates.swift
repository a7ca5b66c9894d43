#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Random variates drawn from a caller's seeded generator; nothing here reads a global source.
enum Variates {
    /// Uniform on [0, 1), a multiple of 2⁻⁵³.
    @inline(__always)
    static func unit(_ rng: inout some RandomNumberGenerator) -> Double {
        Double(rng.next() >> 11) * 0x1p-53
    }

    /// Uniform on (0, 1]: safe to take the logarithm of.
    @inline(__always)
    static func positiveUnit(_ rng: inout some RandomNumberGenerator) -> Double {
        Double((rng.next() >> 11) + 1) * 0x1p-53
    }

    /// Exponential with mean 1, by inversion.
    @inline(__always)
    static func exponential(_ rng: inout some RandomNumberGenerator) -> Double {
        -log(positiveUnit(&rng))
    }

    /// Standard normal by the Box–Muller transform (Box, Muller, "A Note on the Generation of Random Normal
    /// Deviates", Ann. Math. Statist. 29, 1958): √(−2 ln u₁) · cos(2π u₂). The transform yields a pair; the
    /// sine half is dropped so that callers need keep no state, at the price of one extra uniform draw.
    static func normal(_ rng: inout some RandomNumberGenerator) -> Double {
        let radius = (-2 * log(positiveUnit(&rng))).squareRoot()
        return radius * cos(2 * Double.pi * unit(&rng))
    }
}

/// A gamma distribution with shape k and scale θ, sampled by Marsaglia and Tsang's method (Marsaglia, Tsang,
/// "A Simple Method for Generating Gamma Variables", ACM TOMS 26(3), 2000): for k ≥ 1, with d = k − 1/3 and
/// c = 1/√(9d), draw a normal x until v = (1 + cx)³ > 0 passes the squeeze u < 1 − 0.0331x⁴ or the full test
/// ln u < x²/2 + d(1 − v + ln v), and return d·v. For k < 1 the paper's boost applies: draw with shape k + 1
/// and multiply by u^(1/k).
struct GammaDistribution: Sendable, Equatable {
    let scale: Double
    private let d: Double
    private let c: Double
    /// 1/k when k < 1 (the boost), else nil.
    private let boost: Double?

    /// A gamma distribution; `shape` and `scale` must be positive and finite.
    init(shape: Double, scale: Double) {
        precondition(shape > 0 && shape.isFinite && scale > 0 && scale.isFinite, "gamma(\(shape), \(scale))")
        self.scale = scale
        let base = shape < 1 ? shape + 1 : shape
        d = base - 1.0 / 3.0
        c = 1 / (9 * d).squareRoot()
        boost = shape < 1 ? 1 / shape : nil
    }

    func sample(using rng: inout some RandomNumberGenerator) -> Double {
        var value = standard(&rng)
        if let boost { value *= pow(Variates.positiveUnit(&rng), boost) }
        return value * scale
    }

    /// Gamma(max(k, k + 1 when k < 1), 1).
    private func standard(_ rng: inout some RandomNumberGenerator) -> Double {
        while true {
            let x = Variates.normal(&rng)
            let t = 1 + c * x
            guard t > 0 else { continue }
            let v = t * t * t
            let u = Variates.positiveUnit(&rng)
            let x2 = x * x
            if u < 1 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + d * (1 - v + log(v)) { return d * v }
        }
    }
}
