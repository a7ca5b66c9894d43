import IsobarModel
import IsobarWire

/// Empirical length CDF files in the fleet-sim JSON format: `[[tokens, cumulative], ...]`, or an object whose
/// `cdf` key holds that array (other keys, such as `source` and `provenance`, are ignored).
public enum EmpiricalCDF {
    /// The points of the CDF in `path` (`.gz` files are decompressed), for `LengthDistribution.Shape.empirical`.
    ///
    /// The points must have non-decreasing tokens and cumulative fractions in [0, 1], the last fraction 1.
    /// Syntax errors name the line; problems with a point name it by its index (`cdf[3]`).
    public static func load(path: String) throws(SimulatorError) -> [(tokens: Double, cumulative: Double)] {
        let bytes = try TraceInput.contents(path: path)
        let document: JSON
        switch bytes.withUnsafeBytes({ JSON.parse($0) }) {
        case .success(let value): document = value
        case .failure(let error):
            let line = 1 + bytes.prefix(error.offset).lazy.filter { $0 == UInt8(ascii: "\n") }.count
            throw .malformed(path, line: line, error.message)
        }
        return try points(of: document, file: path)
    }

    /// Why `points` are not a CDF, or nil when they are.
    static func problem(_ points: [(tokens: Double, cumulative: Double)]) -> String? {
        for index in points.indices {
            if let problem = problem(points[index], after: index > 0 ? points[index - 1] : nil) {
                return "point \(index + 1): \(problem)"
            }
        }
        return endProblem(points)
    }

    private static func points(
        of document: JSON,
        file: String
    ) throws(SimulatorError) -> [(tokens: Double, cumulative: Double)] {
        let path = document.objectValue == nil ? "" : "cdf"
        guard let pairs = document.objectValue?["cdf"]?.arrayValue ?? document.arrayValue else {
            throw .malformed(
                file,
                line: 0,
                "expected [[tokens, cumulative], ...] or an object with a 'cdf' key holding it"
            )
        }
        var points: [(tokens: Double, cumulative: Double)] = []
        for (index, pair) in pairs.enumerated() {
            guard let numbers = pair.arrayValue, numbers.count == 2,
                let tokens = numbers[0].doubleValue, let cumulative = numbers[1].doubleValue
            else {
                throw .malformed(
                    file,
                    line: 0,
                    "\(path)[\(index)]: expected [tokens, cumulative], got \(SimulatorError.quote(pair.text))"
                )
            }
            if let problem = problem((tokens, cumulative), after: points.last) {
                throw .malformed(file, line: 0, "\(path)[\(index)]: \(problem)")
            }
            points.append((tokens, cumulative))
        }
        if let problem = endProblem(points) { throw .malformed(file, line: 0, problem) }
        return points
    }

    private static func problem(
        _ point: (tokens: Double, cumulative: Double),
        after previous: (tokens: Double, cumulative: Double)?
    ) -> String? {
        guard point.tokens >= 0, point.tokens.isFinite else { return "tokens must be a non-negative number" }
        guard (0...1).contains(point.cumulative) else { return "the cumulative fraction must be in [0, 1]" }
        guard let previous, previous.tokens > point.tokens || previous.cumulative > point.cumulative else { return nil }
        return "tokens and cumulative fractions must not decrease"
    }

    private static func endProblem(_ points: [(tokens: Double, cumulative: Double)]) -> String? {
        guard let last = points.last else { return "the CDF has no points" }
        guard abs(last.cumulative - 1) > 1e-9 else { return nil }
        return "the last cumulative fraction is \(last.cumulative), not 1"
    }
}
