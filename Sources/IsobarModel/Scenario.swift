/// A validated simulation scenario: a fleet (a topology whose emulated backends name engine profiles),
/// the load offered to it, the network between regions, faults, the policies to compare and the SLOs.
/// Built by IsobarConfig from a scenario file; run by IsobarSimulator.
public struct Scenario: Sendable, Equatable {
    public var name: String
    public var seed: UInt64
    public var stop: Stop
    /// The fleet. Every backend is an emulated engine whose `emulate.profile` names an engine profile;
    /// `replicas: N` in the file is already expanded into N backends (`name-1` … `name-N`).
    public var topology: Topology
    /// Engine profiles by name: the presets plus any profile files the scenario loads.
    public var profiles: [String: EngineProfile]
    public var workloads: [Workload]
    public var network: Network
    public var faults: [Fault]
    /// Policies compared side by side; each runs the same workload from the same seed.
    public var policies: [PolicyKind]
    public var slo: SLO
    /// How often gateways scrape engine metrics, in seconds.
    public var scrapeIntervalSeconds: Double
    /// Requests arriving before this time are served but left out of the statistics, in seconds.
    public var warmupSeconds: Double
    /// The share of the fleet's capacity the workload represents, as the scenario's author derived it
    /// (offered work over saturation throughput); `scaled(toLoad:)` uses it to run the same scenario at
    /// other loads.
    public var load: Double?

    public init(
        name: String,
        seed: UInt64 = 42,
        stop: Stop,
        topology: Topology,
        profiles: [String: EngineProfile] = [:],
        workloads: [Workload],
        network: Network = Network(),
        faults: [Fault] = [],
        policies: [PolicyKind] = [.roundRobin, .leastRequest, .powerOfTwo],
        slo: SLO = SLO(),
        scrapeIntervalSeconds: Double = 0.25,
        warmupSeconds: Double = 0,
        load: Double? = nil
    ) {
        self.name = name
        self.seed = seed
        self.stop = stop
        self.topology = topology
        self.profiles = profiles
        self.workloads = workloads
        self.network = network
        self.faults = faults
        self.policies = policies
        self.slo = slo
        self.scrapeIntervalSeconds = scrapeIntervalSeconds
        self.warmupSeconds = warmupSeconds
        self.load = load
    }

    /// The scenario with every workload's arrivals scaled by `load / self.load` (synthetic rates multiplied,
    /// trace time compressed), or `nil` if the scenario states no load.
    public func scaled(toLoad target: Double) -> Scenario? {
        guard let load, load > 0, target > 0 else { return nil }
        let factor = target / load
        var scenario = self
        scenario.load = target
        scenario.workloads = workloads.map { workload in
            var workload = workload
            switch workload.source {
            case .synthetic(var arrivals, let lengths):
                arrivals.rate *= factor
                workload.source = .synthetic(arrivals: arrivals, lengths: lengths)
            case .trace(var trace):
                trace.timeScale /= factor
                workload.source = .trace(trace)
            }
            return workload
        }
        return scenario
    }

    /// When a run stops generating arrivals (requests in flight then finish).
    public enum Stop: Sendable, Equatable {
        case requests(Int)
        case duration(seconds: Double)
    }

    /// The engine profile of a backend of the fleet.
    public func profile(of backend: Backend) -> EngineProfile? {
        backend.emulate.flatMap { profiles[$0.profile] ?? EngineProfile.named($0.profile) }
    }
}

/// Service-level objectives a request must meet to count toward goodput.
public struct SLO: Sendable, Equatable {
    /// Time to first token, in seconds.
    public var ttftSeconds: Double?
    /// Time per output token after the first, in seconds.
    public var tpotSeconds: Double?
    /// End-to-end latency, in seconds.
    public var e2eSeconds: Double?

    public init(ttftSeconds: Double? = nil, tpotSeconds: Double? = nil, e2eSeconds: Double? = nil) {
        self.ttftSeconds = ttftSeconds
        self.tpotSeconds = tpotSeconds
        self.e2eSeconds = e2eSeconds
    }
}

/// Round-trip times between regions; a region to itself is `sameRegionRTTSeconds`.
public struct Network: Sendable, Equatable {
    /// RTT between two different regions, in seconds, keyed both ways.
    public var rttSeconds: [RegionPair: Double]
    public var sameRegionRTTSeconds: Double
    /// RTT of a pair missing from the matrix, in seconds.
    public var defaultRTTSeconds: Double

    public init(
        rttSeconds: [RegionPair: Double] = [:],
        sameRegionRTTSeconds: Double = 0.0005,
        defaultRTTSeconds: Double = 0.08
    ) {
        self.rttSeconds = rttSeconds
        self.sameRegionRTTSeconds = sameRegionRTTSeconds
        self.defaultRTTSeconds = defaultRTTSeconds
    }

    public func rtt(_ a: RegionID, _ b: RegionID) -> Double {
        if a == b { return sameRegionRTTSeconds }
        return rttSeconds[RegionPair(a, b)] ?? defaultRTTSeconds
    }
}

/// An unordered pair of regions.
public struct RegionPair: Hashable, Sendable {
    public let first: RegionID
    public let second: RegionID

    public init(_ a: RegionID, _ b: RegionID) {
        if a < b {
            first = a
            second = b
        } else {
            first = b
            second = a
        }
    }
}

/// Load offered by the clients of one region.
public struct Workload: Sendable, Equatable {
    /// Where the clients are; they call a gateway node of this region.
    public var region: RegionID
    /// The model they ask for.
    public var model: ModelName
    public var source: Source
    /// Clients ask for streams (TTFT is measured either way).
    public var stream: Bool

    public init(region: RegionID, model: ModelName, source: Source, stream: Bool = true) {
        self.region = region
        self.model = model
        self.source = source
        self.stream = stream
    }

    /// Where requests come from.
    public enum Source: Sendable, Equatable {
        /// Synthetic arrivals with lengths drawn from distributions.
        case synthetic(arrivals: Arrivals, lengths: Lengths)
        /// A recorded trace replayed with its own arrival times and lengths.
        case trace(TraceFile)
    }
}

/// An arrival process.
public struct Arrivals: Sendable, Equatable {
    /// Mean arrival rate, requests per second.
    public var rate: Double
    public var process: Process

    public init(rate: Double, process: Process = .poisson) {
        self.rate = rate
        self.process = process
    }

    public enum Process: Sendable, Equatable {
        /// Exponential gaps.
        case poisson
        /// Gamma-distributed gaps with this coefficient of variation (> 1 is bursty).
        case gamma(cv: Double)
        /// Poisson with a rate that follows a sine over `periodSeconds`:
        /// rate × (1 + amplitude × sin(2π t / period)).
        case diurnal(periodSeconds: Double, amplitude: Double)
    }
}

/// How prompt and output lengths are drawn.
public enum Lengths: Sendable, Equatable {
    /// Independent prompt and output distributions.
    case independent(prompt: LengthDistribution, output: LengthDistribution)
    /// (prompt, output) pairs sampled jointly from a length-only trace.
    case pairs(TraceFile)
}

/// A distribution of token counts; samples are rounded and clamped to [min, max].
public struct LengthDistribution: Sendable, Equatable {
    public var shape: Shape
    public var min: Int
    public var max: Int

    public init(_ shape: Shape, min: Int = 1, max: Int = 131_072) {
        self.shape = shape
        self.min = min
        self.max = max
    }

    public indirect enum Shape: Sendable, Equatable {
        case constant(Int)
        case uniform(low: Int, high: Int)
        /// Lognormal with this median and log-space standard deviation.
        case lognormal(median: Double, sigma: Double)
        /// Pareto (type I) with scale `xm` and shape `alpha`.
        case pareto(xm: Double, alpha: Double)
        /// Exponential with this mean.
        case exponential(mean: Double)
        /// A mixture: each component drawn with its weight.
        case mixture([(weight: Double, shape: Shape)])
        /// An empirical CDF: points (tokens, cumulative fraction), sampled by inverse transform with linear
        /// interpolation.
        case empirical([(tokens: Double, cumulative: Double)])

        public static func == (lhs: Shape, rhs: Shape) -> Bool {
            switch (lhs, rhs) {
            case (.constant(let a), .constant(let b)): a == b
            case (.uniform(let a, let b), .uniform(let c, let d)): a == c && b == d
            case (.lognormal(let a, let b), .lognormal(let c, let d)): a == c && b == d
            case (.pareto(let a, let b), .pareto(let c, let d)): a == c && b == d
            case (.exponential(let a), .exponential(let b)): a == b
            case (.mixture(let a), .mixture(let b)):
                a.count == b.count && zip(a, b).allSatisfy { $0.weight == $1.weight && $0.shape == $1.shape }
            case (.empirical(let a), .empirical(let b)):
                a.count == b.count && zip(a, b).allSatisfy { $0.tokens == $1.tokens && $0.cumulative == $1.cumulative }
            default: false
            }
        }
    }
}

/// A trace file to replay or sample from.
public struct TraceFile: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable, CaseIterable {
        /// Azure LLM inference trace: `TIMESTAMP,ContextTokens,GeneratedTokens`.
        case azure
        /// Mooncake JSONL: `{"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}`.
        case mooncake
        /// Length-only CSV: `num_prefill_tokens,num_decode_tokens,...`.
        case lengths
    }

    public var format: Format
    /// Absolute path (resolved against the scenario file); `.gz` files are decompressed.
    public var path: String
    /// Arrival times are multiplied by this (0.5 replays twice as fast).
    public var timeScale: Double
    /// Tokens covered by one Mooncake hash id.
    public var hashBlockTokens: Int

    public init(format: Format, path: String, timeScale: Double = 1, hashBlockTokens: Int = 512) {
        self.format = format
        self.path = path
        self.timeScale = timeScale
        self.hashBlockTokens = hashBlockTokens
    }
}

/// A fault injected at a simulated time.
public struct Fault: Sendable, Equatable {
    /// When it starts, in seconds from the start of the run.
    public var atSeconds: Double
    /// When it ends (the backend comes back, the partition heals), if it does.
    public var untilSeconds: Double?
    public var kind: Kind

    public init(atSeconds: Double, untilSeconds: Double? = nil, kind: Kind) {
        self.atSeconds = atSeconds
        self.untilSeconds = untilSeconds
        self.kind = kind
    }

    public enum Kind: Sendable, Equatable {
        /// The backends stop: requests in flight fail, new connections are refused.
        case down([BackendID])
        /// Gateways of one region cannot reach backends of the other, and the reverse.
        case partition(RegionID, RegionID)
        /// The backends' steps take `factor` times as long.
        case slow([BackendID], factor: Double)
    }
}
