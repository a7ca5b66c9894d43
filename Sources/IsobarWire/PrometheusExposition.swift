/// What one Prometheus text exposition said: its samples in document order, the declared type and help of each
/// metric family, and the lines that could not be read (`PrometheusParser` builds it).
///
/// Lookups by name are indexed, so reading a dozen metrics out of a 50 KB exposition costs a dozen hash
/// lookups, not a dozen scans.
public struct PrometheusExposition: Sendable {
    /// One sample line: `name{labels} value [timestamp]`.
    public struct Sample: Sendable, Equatable, CustomStringConvertible {
        /// The sample's name as written (`vllm:prompt_tokens_total`, `x_bucket`), not its family's.
        public var name: String
        /// Label pairs in document order, values unescaped.
        public var labels: [(String, String)]
        public var value: Double
        /// Milliseconds since the Unix epoch, if the line carried a timestamp.
        public var timestamp: Int64?

        public init(name: String, labels: [(String, String)] = [], value: Double, timestamp: Int64? = nil) {
            self.name = name
            self.labels = labels
            self.value = value
            self.timestamp = timestamp
        }

        /// The value of label `name`, if the sample has it.
        public func label(_ name: String) -> String? {
            labels.first { $0.0 == name }?.1
        }

        /// True if the sample carries every pair of `labels` (and maybe others).
        public func matches(_ labels: [(String, String)]) -> Bool {
            labels.allSatisfy { wanted in self.labels.contains { $0.0 == wanted.0 && $0.1 == wanted.1 } }
        }

        /// Equal names, labels (in order), timestamps and values; two NaN values are equal.
        public static func == (lhs: Sample, rhs: Sample) -> Bool {
            lhs.name == rhs.name && lhs.timestamp == rhs.timestamp
                && (lhs.value == rhs.value || (lhs.value.isNaN && rhs.value.isNaN))
                && lhs.labels.elementsEqual(rhs.labels, by: ==)
        }

        public var description: String {
            let pairs = labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",")
            return "\(name){\(pairs)} \(value)" + (timestamp.map { " \($0)" } ?? "")
        }
    }

    /// A line that could not be read, and why. The rest of the exposition is still read.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// 1-based line number.
        public var line: Int
        public var message: String

        public init(line: Int, message: String) {
            self.line = line
            self.message = message
        }

        public var description: String { "line \(line): \(message)" }
    }

    /// A family type from `# TYPE` (Prometheus 0.0.4 and OpenMetrics names).
    public enum MetricType: String, Sendable, CaseIterable {
        case counter, gauge, histogram, summary, untyped
        case unknown, info, stateset, gaugehistogram
    }

    /// Every sample, in document order.
    public internal(set) var samples: [Sample] = []
    /// Declared family types by family name.
    public internal(set) var types: [String: MetricType] = [:]
    /// `# HELP` texts by family name, unescaped.
    public internal(set) var help: [String: String] = [:]
    /// Lines skipped, with the reason (at most `PrometheusParser.maxProblems`, then one summary line).
    public internal(set) var problems: [Problem] = []
    /// Sample indices by sample name.
    private var index: [String: [Int]] = [:]

    public init() {}

    /// True if no sample was read.
    public var isEmpty: Bool { samples.isEmpty }

    /// The samples named `name` (exactly: `x_bucket`, not family `x`), in document order.
    public func samples(named name: String) -> [Sample] {
        guard let indices = index[name] else { return [] }
        return indices.map { samples[$0] }
    }

    /// The positions in `samples` of the samples named `name` (no copy of the samples).
    func sampleIndices(named name: String) -> [Int] { index[name] ?? [] }

    /// True if at least one sample is named `name`.
    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The value of the first sample named `name` that carries every pair of `labels`.
    public func value(_ name: String, where labels: [(String, String)] = []) -> Double? {
        guard let indices = index[name] else { return nil }
        for i in indices where samples[i].matches(labels) { return samples[i].value }
        return nil
    }

    /// The sum over every sample named `name` that carries every pair of `labels` (all label sets of a
    /// metric, by default); `nil` if there is none.
    public func sum(_ name: String, where labels: [(String, String)] = []) -> Double? {
        guard let indices = index[name] else { return nil }
        var total = 0.0
        var found = false
        for i in indices where samples[i].matches(labels) {
            total += samples[i].value
            found = true
        }
        return found ? total : nil
    }

    /// The declared type of the family a sample name belongs to: `x_bucket`, `x_sum` and `x_count` belong to
    /// histogram or summary `x`, `x_total` and `x_created` to counter `x` (OpenMetrics), and so on.
    public func type(of sampleName: String) -> MetricType? {
        if let exact = types[sampleName] { return exact }
        for suffix in ["_bucket", "_sum", "_count", "_total", "_created", "_gsum", "_gcount", "_info"]
        where sampleName.hasSuffix(suffix) {
            if let type = types[String(sampleName.dropLast(suffix.count))] { return type }
        }
        return nil
    }

    // MARK: - Building (PrometheusParser)

    mutating func append(_ sample: Sample) {
        samples.append(sample)
    }

    mutating func declare(_ name: String, type: MetricType) -> Bool {
        guard types[name] == nil else { return false }
        types[name] = type
        return true
    }

    mutating func describe(_ name: String, help text: String) -> Bool {
        guard help[name] == nil else { return false }
        help[name] = text
        return true
    }

    mutating func report(line: Int, _ message: String, limit: Int) {
        if problems.count < limit {
            problems.append(Problem(line: line, message: message))
        } else if problems.count == limit {
            problems.append(Problem(line: line, message: "more problems not listed"))
        }
    }

    /// Builds the name index; samples of one name usually come in runs, so a run costs one lookup.
    mutating func finish() {
        var run: (name: String, indices: [Int])?
        for i in samples.indices {
            let name = samples[i].name
            if run?.name == name {
                run?.indices.append(i)
                continue
            }
            if let done = run { index[done.name, default: []].append(contentsOf: done.indices) }
            run = (name, [i])
        }
        if let done = run { index[done.name, default: []].append(contentsOf: done.indices) }
    }
}
