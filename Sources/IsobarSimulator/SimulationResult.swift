import IsobarModel

/// What one policy achieved on a scenario.
public struct PolicyResult: Sendable, Equatable {
    public var policy: PolicyKind
    /// Time to first token, time per output token and end-to-end latency of completed requests.
    public var ttft = LatencyHistogram()
    public var tpot = LatencyHistogram()
    public var e2e = LatencyHistogram()
    /// Requests that arrived (after warm-up).
    public var arrived = 0
    public var completed = 0
    /// Requests the gateways refused or could not serve (every attempt failed).
    public var rejected = 0
    /// Streams cut after their first token (a backend failed mid-answer).
    public var failedAfterFirstToken = 0
    /// Completed requests that met every SLO.
    public var metSLO = 0
    public var promptTokens = 0
    public var outputTokens = 0
    public var preemptions = 0
    /// Completed requests served by a backend outside the client's region.
    public var crossRegion = 0
    /// Prefix cache: prompt tokens looked up and found.
    public var prefixQueryTokens = 0
    public var prefixHitTokens = 0
    /// Measured window in simulated seconds (from the end of warm-up to the last completion).
    public var windowSeconds = 0.0
    /// Simulated seconds until the last request finished.
    public var makespanSeconds = 0.0
    /// Per backend: busy fraction of the makespan.
    public var utilisation: [BackendID: Double] = [:]
    /// Cost of the run in US dollars (replica-hours plus token prices).
    public var costUSD = 0.0
    /// Engine steps simulated.
    public var steps = 0
    public var timeSeries = TimeSeries()

    public init(policy: PolicyKind) { self.policy = policy }

    /// Requests meeting every SLO per second of the measured window.
    public var goodput: Double { windowSeconds > 0 ? Double(metSLO) / windowSeconds : 0 }
    /// Output tokens per second of the measured window.
    public var throughput: Double { windowSeconds > 0 ? Double(outputTokens) / windowSeconds : 0 }
    public var crossRegionShare: Double { completed > 0 ? Double(crossRegion) / Double(completed) : 0 }
    public var costPerMTok: Double {
        let tokens = promptTokens + outputTokens
        return tokens > 0 ? costUSD / (Double(tokens) / 1e6) : 0
    }
    public var meanUtilisation: Double {
        utilisation.isEmpty ? 0 : utilisation.values.reduce(0, +) / Double(utilisation.count)
    }
    public var maxUtilisation: Double { utilisation.values.max() ?? 0 }
    public var prefixHitRate: Double {
        prefixQueryTokens > 0 ? Double(prefixHitTokens) / Double(prefixQueryTokens) : 0
    }
}

/// Per-backend samples taken at a fixed interval of simulated time.
public struct TimeSeries: Sendable, Equatable {
    public var intervalSeconds = 1.0
    /// The backends, in the order of the outer arrays below.
    public var backends: [BackendID] = []
    /// `waiting[backend][sample]`: requests waiting in the backend's queue; the first sample is at t = 0.
    public var waiting: [[Int]] = []
    /// `running[backend][sample]`: requests in the backend's batch.
    public var running: [[Int]] = []
    /// `tokensPerSecond[backend][sample]`: output tokens per second over the interval ending at the sample.
    public var tokensPerSecond: [[Double]] = []

    public init() {}
}

/// The result of running one scenario under every policy it compares.
public struct ScenarioResult: Sendable, Equatable {
    public var scenario: String
    public var seed: UInt64
    /// Requests offered per policy run.
    public var requests: Int
    public var wallSeconds: Double
    public var policies: [PolicyResult]
    public var slo: SLO

    public init(scenario: String, seed: UInt64, requests: Int, wallSeconds: Double, policies: [PolicyResult], slo: SLO)
    {
        self.scenario = scenario
        self.seed = seed
        self.requests = requests
        self.wallSeconds = wallSeconds
        self.policies = policies
        self.slo = slo
    }
}

/// One completed or failed request, for the optional per-request CSV.
public struct RequestRecord: Sendable, Equatable {
    public var policy: PolicyKind
    public var id: UInt64
    public var region: RegionID
    public var backend: BackendID?
    public var arrival: Double
    public var promptTokens: Int
    public var outputTokens: Int
    /// Seconds; `nil` if the request got no first token.
    public var ttft: Double?
    public var e2e: Double?
    public var outcome: Outcome

    public enum Outcome: String, Sendable, Equatable {
        case completed, rejected, cut
    }
}
