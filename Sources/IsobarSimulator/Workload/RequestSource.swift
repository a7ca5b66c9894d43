import IsobarModel

/// One request a workload offers: when it arrives and what it asks of an engine.
public struct GeneratedRequest: Sendable, Equatable {
    /// Arrival time, in seconds from the start of the run.
    public var arrival: Double
    /// Prompt tokens, at least 1.
    public var promptTokens: Int
    /// Output tokens, at least 1.
    public var outputTokens: Int
    /// Hashes of the prompt's prefix blocks, for prefix caching; empty unless a trace gives them.
    public var prefixHashes: [UInt64]
    /// Tokens covered by one prefix hash.
    public var hashBlockTokens: Int

    public init(arrival: Double, promptTokens: Int, outputTokens: Int, prefixHashes: [UInt64], hashBlockTokens: Int) {
        self.arrival = arrival
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.prefixHashes = prefixHashes
        self.hashBlockTokens = hashBlockTokens
    }
}

/// The requests of one workload in arrival order, produced lazily as the simulator pulls them.
///
/// A synthetic source runs without end (the simulator decides when to stop) in constant memory: arrivals
/// come from an `ArrivalClock`, lengths from the workload's distributions or from random rows of a
/// length-only trace. Arrivals and lengths draw from two separate generators, so changing the length
/// distribution leaves the arrival times as they were. A trace source yields the trace's records in order
/// and ends with the trace.
///
/// Same workload and seed, same sequence. Sources of the policies of one scenario share trace records through
/// the `TraceCache`.
public struct RequestSource: Sendable {
    private let plan: Plan
    private var clock: ArrivalClock
    private var arrivalRNG: Xoshiro256
    private var lengthRNG: Xoshiro256
    private var position = 0

    private enum Plan: Sendable {
        case independent(prompt: LengthDistribution, output: LengthDistribution)
        case pairs([TraceRecord])
        case replay([TraceRecord], hashBlockTokens: Int)
    }

    /// Block size reported with synthetic requests, which carry no prefix hashes.
    static let syntheticHashBlockTokens = 512

    /// A source for `workload` drawing from `seed`; traces it names are read through `traces`.
    ///
    /// Distributions and arrival parameters must be valid (their `problem` is nil); an invalid one traps.
    public init(workload: Workload, seed: UInt64, traces: TraceCache) throws(SimulatorError) {
        var mix = SplitMix64(seed: seed)
        arrivalRNG = Xoshiro256(seed: mix.next())
        lengthRNG = Xoshiro256(seed: mix.next())
        switch workload.source {
        case .synthetic(let arrivals, .independent(let prompt, let output)):
            precondition(prompt.problem == nil && output.problem == nil, "\(prompt.problem ?? output.problem ?? "")")
            clock = ArrivalClock(arrivals)
            plan = .independent(prompt: prompt, output: output)
        case .synthetic(let arrivals, .pairs(let file)):
            clock = ArrivalClock(arrivals)
            plan = .pairs(try traces.records(file))
        case .trace(let file):
            clock = ArrivalClock(Arrivals(rate: 0))
            plan = .replay(try traces.records(file), hashBlockTokens: file.hashBlockTokens)
        }
    }

    /// A source for workload `index` of `scenario`, seeded by `seed(scenarioSeed:workloadIndex:)`.
    public init(scenario: Scenario, workloadIndex index: Int, traces: TraceCache) throws(SimulatorError) {
        let seed = Self.seed(scenarioSeed: scenario.seed, workloadIndex: index)
        try self.init(workload: scenario.workloads[index], seed: seed, traces: traces)
    }

    /// The seed of workload `index` of a scenario: output `index + 1` of SplitMix64 seeded with the scenario
    /// seed, so it depends on nothing but the two (adding a workload leaves the others' requests unchanged).
    public static func seed(scenarioSeed: UInt64, workloadIndex index: Int) -> UInt64 {
        precondition(index >= 0, "workload index \(index)")
        // SplitMix64's state advances by a fixed increment per output, so output `index + 1` is the first
        // output of a generator started `index` increments further along.
        var mix = SplitMix64(seed: scenarioSeed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        return mix.next()
    }

    /// The next request, or nil when a trace has ended.
    public mutating func next() -> GeneratedRequest? {
        switch plan {
        case .independent(let prompt, let output):
            let arrival = clock.next(using: &arrivalRNG)
            return GeneratedRequest(
                arrival: arrival,
                promptTokens: prompt.sample(using: &lengthRNG),
                outputTokens: output.sample(using: &lengthRNG),
                prefixHashes: [],
                hashBlockTokens: Self.syntheticHashBlockTokens
            )
        case .pairs(let records):
            let arrival = clock.next(using: &arrivalRNG)
            let row = records[Int.random(in: 0..<records.count, using: &lengthRNG)]
            return GeneratedRequest(
                arrival: arrival,
                promptTokens: row.promptTokens,
                outputTokens: row.outputTokens,
                prefixHashes: [],
                hashBlockTokens: Self.syntheticHashBlockTokens
            )
        case .replay(let records, let hashBlockTokens):
            guard position < records.count else { return nil }
            let row = records[position]
            position += 1
            return GeneratedRequest(
                arrival: row.arrival,
                promptTokens: row.promptTokens,
                outputTokens: row.outputTokens,
                prefixHashes: row.hashIDs,
                hashBlockTokens: hashBlockTokens
            )
        }
    }
}
