import Foundation
import IsobarModel

/// `prompt_tokens:` and `output_tokens:`: length distributions, with empirical CDFs read at load time.
extension ScenarioValidator {
    /// The distributions `dist` names.
    enum DistributionKind: String, CaseIterable {
        case constant, uniform, lognormal, pareto, exponential, mixture, empirical
    }

    /// The default bounds of a length distribution, in tokens.
    static let defaultLengthBounds = 1...131_072

    /// A whole length distribution: a shape with its `[min, max]` clamp.
    func distribution(_ file: DistributionFile?, _ key: String, in owner: Location) -> LengthDistribution? {
        guard let file else {
            log.missing(
                owner.key(key),
                "required key is missing: a length distribution such as {dist: lognormal, median: 1000, sigma: 1}, "
                    + "or lengths: {trace: FILE} for both"
            )
            return nil
        }
        let shape = shape(file)
        let min = integer(file.min, in: 1...Int.max) ?? Self.defaultLengthBounds.lowerBound
        let max = integer(file.max, in: 1...Int.max) ?? Self.defaultLengthBounds.upperBound
        if min > max, let location = file.max?.location ?? file.min?.location {
            log.error(location, "min (\(min)) must not exceed max (\(max))")
            return nil
        }
        return shape.map { LengthDistribution($0, min: min, max: max) }
    }

    /// The shape a distribution mapping describes, its parameters in range.
    private func shape(_ file: DistributionFile) -> LengthDistribution.Shape? {
        let kind = required(file.dist, "dist", in: file.location).flatMap { choice($0, "dist") as DistributionKind? }
        let number = { (key: String) in required(file.numbers[key], key, in: file.location) }
        let count = { (key: String) in integer(required(file.integers[key], key, in: file.location), in: 1...Int.max) }
        switch kind {
        case .constant:
            return count("value").map { .constant($0) }
        case .uniform:
            guard let low = count("low"), let high = count("high") else { return nil }
            if low > high, let location = file.integers["high"]?.location {
                log.error(location, "high (\(high)) must not be below low (\(low))")
                return nil
            }
            return .uniform(low: low, high: high)
        case .lognormal:
            let median = positive(number("median"))
            let sigma = nonNegative(number("sigma"))
            return median.flatMap { median in sigma.map { .lognormal(median: median, sigma: $0) } }
        case .pareto:
            let xm = positive(number("xm"))
            let alpha = positive(number("alpha"))
            return xm.flatMap { xm in alpha.map { .pareto(xm: xm, alpha: $0) } }
        case .exponential:
            return positive(number("mean")).map { .exponential(mean: $0) }
        case .mixture:
            return mixture(file)
        case .empirical:
            return required(file.file, "file", in: file.location).flatMap(empiricalPoints).map { .empirical($0) }
        case nil:
            return nil
        }
    }

    private func mixture(_ file: DistributionFile) -> LengthDistribution.Shape? {
        guard let list = required(file.components, "components", in: file.location) else { return nil }
        guard !list.value.isEmpty else {
            log.error(list.location, "at least one component is needed")
            return nil
        }
        let components = list.value.map { component in
            (weight: nonNegative(required(component.weight, "weight", in: component.location)), shape: shape(component))
        }
        if components.allSatisfy({ ($0.weight ?? 1) == 0 }) {
            log.error(list.location, "at least one component needs a weight above 0")
            return nil
        }
        let valid = components.compactMap { component in
            component.weight.flatMap { weight in component.shape.map { (weight: weight, shape: $0) } }
        }
        guard valid.count == components.count else { return nil }
        return .mixture(valid)
    }

    // MARK: - Empirical CDFs

    /// The points of a fleet-sim CDF file: `[[tokens, cumulative], ...]`, or an object whose `cdf` holds
    /// them. Tokens and fractions never decrease, fractions are in [0, 1] and the last one is 1.
    private func empiricalPoints(_ path: Sourced<String>) -> [(tokens: Double, cumulative: Double)]? {
        guard let (resolved, text) = text(path, "CDF file") else { return nil }
        let data = Data(text.utf8)
        let decoder = JSONDecoder()
        guard
            let rows = (try? decoder.decode([[Double]].self, from: data))
                ?? (try? decoder.decode(CDFDocument.self, from: data))?.cdf
        else {
            log.error(
                path.location,
                "'\(resolved)' is not a CDF: expected [[tokens, cumulative], ...] or {\"cdf\": ...}"
            )
            return nil
        }
        var points: [(tokens: Double, cumulative: Double)] = []
        for (index, row) in rows.enumerated() {
            guard let problem = pointProblem(row, after: points.last) else {
                points.append((row[0], row[1]))
                continue
            }
            log.error(path.location, "'\(resolved)': point \(index + 1): \(problem)")
            return nil
        }
        guard let last = points.last, abs(last.cumulative - 1) <= 1e-9 else {
            let end =
                points.last.map { "the last cumulative fraction is \($0.cumulative), not 1" } ?? "it has no points"
            log.error(path.location, "'\(resolved)' is not a CDF: \(end)")
            return nil
        }
        return points
    }

    private func pointProblem(_ row: [Double], after previous: (tokens: Double, cumulative: Double)?) -> String? {
        guard row.count == 2 else { return "expected [tokens, cumulative], got \(row.count) numbers" }
        guard row[0] >= 0 else { return "tokens must not be negative" }
        guard (0...1).contains(row[1]) else { return "the cumulative fraction must be from 0 to 1" }
        guard let previous, row[0] < previous.tokens || row[1] < previous.cumulative else { return nil }
        return "tokens and cumulative fractions must not decrease"
    }
}

/// A CDF file in object form; keys other than `cdf` (`source`, `provenance`, ...) are ignored.
private struct CDFDocument: Decodable {
    var cdf: [[Double]]
}
