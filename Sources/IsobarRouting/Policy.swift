import IsobarModel

/// What a policy sees of one candidate: the router's number for the backend, and the node's view of its
/// load, computed by the router the same way for every policy (so policies differ only in their rule).
public struct PolicyCandidate: Sendable, Equatable {
    /// The router's number for the backend.
    public var index: Int
    /// Requests this node has in flight on it (credited at pick time).
    public var inFlight: Int
    /// Token work ahead of a new request: this node's unprefilled prompt tokens and expected remaining
    /// output tokens there, plus the prompt tokens of other clients' queued requests (scraped).
    public var outstandingTokens: Double
    /// Expected time to first token of this request there, in seconds (see `Router` for the estimate).
    public var expectedTTFT: Double
    /// Prompt tokens of this request the endpoint probably holds in its prefix cache.
    public var cachedTokens: Int
    /// Peak-EWMA of observed time to first token, in seconds; 0 before any observation.
    public var latency: Double
    /// KV tokens held there (this node's requests' expected share, or the scraped KV usage when that is
    /// higher): decode attention reads all of them every step, so a new request's time per output token
    /// grows with it.
    public var kvTokens: Double
    /// It is in another region than the node.
    public var remote: Bool

    public init(
        index: Int,
        inFlight: Int,
        outstandingTokens: Double = 0,
        expectedTTFT: Double = 0,
        cachedTokens: Int = 0,
        latency: Double = 0,
        kvTokens: Double = 0,
        remote: Bool = false
    ) {
        self.index = index
        self.inFlight = inFlight
        self.outstandingTokens = outstandingTokens
        self.expectedTTFT = expectedTTFT
        self.cachedTokens = cachedTokens
        self.latency = latency
        self.kvTokens = kvTokens
        self.remote = remote
    }
}

/// A balancing policy: picks one candidate deployment for a request.
///
/// Policies are values owned by a `Router` (one per model group), so a policy with state (round-robin's
/// cursor) keeps it per model. `pick` is only called with a non-empty candidate list and returns an
/// index into it and why. Randomness comes from the caller's generator, so a seeded run is reproducible.
public protocol Policy: Sendable {
    var kind: PolicyKind { get }
    /// Whether `pick` reads the candidates' estimates (expected TTFT, outstanding tokens, cached tokens,
    /// latency, KV tokens). When false the router fills in only `inFlight`, sparing the estimate of
    /// every candidate.
    var readsEstimates: Bool { get }
    mutating func pick(
        from candidates: [PolicyCandidate],
        affinityBudget: Double,
        rng: inout some RandomNumberGenerator
    ) -> (index: Int, reason: PickReason)
}

extension Policy {
    public var readsEstimates: Bool { true }
}

/// Cycles through the candidates in order.
public struct RoundRobinPolicy: Policy {
    private var cursor = 0
    public init() {}
    public var kind: PolicyKind { .roundRobin }
    public var readsEstimates: Bool { false }

    public mutating func pick(
        from candidates: [PolicyCandidate],
        affinityBudget: Double,
        rng: inout some RandomNumberGenerator
    ) -> (index: Int, reason: PickReason) {
        defer { cursor &+= 1 }
        return (cursor % candidates.count, .best)
    }
}

/// Picks uniformly at random.
public struct RandomPolicy: Policy {
    public init() {}
    public var kind: PolicyKind { .random }
    public var readsEstimates: Bool { false }

    public func pick(
        from candidates: [PolicyCandidate],
        affinityBudget: Double,
        rng: inout some RandomNumberGenerator
    ) -> (index: Int, reason: PickReason) {
        (Int.random(in: 0..<candidates.count, using: &rng), .best)
    }
}

/// The candidate with the lowest `cost`; ties are broken at random so a burst does not pile onto the
/// first candidate. One pass finds the minimum and counts its ties, one random draw picks among them.
func argmin(
    _ candidates: [PolicyCandidate],
    rng: inout some RandomNumberGenerator,
    cost: (PolicyCandidate) -> Double
) -> Int {
    var best = Double.infinity
    var ties = 0
    var first = 0
    for (index, candidate) in candidates.enumerated() {
        let c = cost(candidate)
        if c < best {
            best = c
            ties = 1
            first = index
        } else if c == best {
            ties += 1
        }
    }
    guard ties > 1 else { return first }
    var skip = Int(rng.next() % UInt64(ties))
    for index in first..<candidates.count where cost(candidates[index]) == best {
        if skip == 0 { return index }
        skip -= 1
    }
    return first
}

/// Picks the candidate with the fewest requests in flight from this node.
public struct LeastRequestPolicy: Policy {
    public init() {}
    public var kind: PolicyKind { .leastRequest }
    public var readsEstimates: Bool { false }

    public func pick(
        from candidates: [PolicyCandidate],
        affinityBudget: Double,
        rng: inout some RandomNumberGenerator
    ) -> (index: Int, reason: PickReason) {
        (argmin(candidates, rng: &rng) { Double($0.inFlight) }, .best)
    }
}

/// Picks the candidate with the least token work ahead (prefill and expected decode), so a few long
/// requests count for what they cost, not as "one request".
public struct LeastTokensPolicy: Policy {
    public init() {}
    public var kind: PolicyKind { .leastTokens }

    public func pick(
        from candidates: [PolicyCandidate],
        affinityBudget: Double,
        rng: inout some RandomNumberGenerator
    ) -> (index: Int, reason: PickReason) {
        (argmin(candidates, rng: &rng) { $0.outstandingTokens }, .best)
    }
}

/// Two distinct candidates at random, the better of them by `cost` (ties at random).
func powerOfTwo(
    _ candidates: [PolicyCandidate],
    rng: inout some RandomNumberGenerator,
    cost: (PolicyCandidate) -> Double
) -> Int {
    guard candidates.count > 1 else { return 0 }
    let first = Int.random(in: 0..<candidates.count, using: &rng)
    var second = Int.random(in: 0..<(candidates.count - 1), using: &rng)
    if second >= first { second += 1 }
    let a = cost(candidates[first])
    let b = cost(candidates[second])
    if a == b { return Bool.random(using: &rng) ? first : second }
    return a < b ? first : second
}

/// The power of two random choices (Mitzenmacher, "The Power of Two Choices in Randomized Load
/// Balancing", IEEE TPDS 2001): sample two distinct candidates, take the one with fewer requests in
/// flight. Nearly as good as least-request with fresh data, and far less prone to herding on stale data.
public struct PowerOfTwoPolicy: Policy {
    public init() {}
    public var kind: PolicyKind { .powerOfTwo }
    public var readsEstimates: Bool { false }

    public func pick(
        from candidates: [PolicyCandidate],
        affinityBudget: Double,
        rng: inout some RandomNumberGenerator
    ) -> (index: Int, reason: PickReason) {
        (powerOfTwo(candidates, rng: &rng) { Double($0.inFlight) }, .best)
    }
}

/// Peak-EWMA (as in Finagle and Linkerd): each endpoint's cost is its peak-sensitive moving average of
/// observed latency (time to first token here) times its requests in flight plus one, compared between
/// two random candidates. Endpoints without observations cost the mean of those with.
public struct PeakEWMAPolicy: Policy {
    public init() {}
    public var kind: PolicyKind { .peakEWMA }

    public func pick(
        from candidates: [PolicyCandidate],
        affinityBudget: Double,
        rng: inout some RandomNumberGenerator
    ) -> (index: Int, reason: PickReason) {
        var known = 0.0
        var count = 0
        for candidate in candidates where candidate.latency > 0 {
            known += candidate.latency
            count += 1
        }
        let fallback = count > 0 ? known / Double(count) : 1
        let index = powerOfTwo(candidates, rng: &rng) {
            ($0.latency > 0 ? $0.latency : fallback) * Double($0.inFlight + 1)
        }
        return (index, .best)
    }
}

/// Isobar's policy: the candidate with the lowest expected time to first token — queued and in-flight
/// prefill work over the endpoint's prefill rate, a convex KV-pressure term, the RTT to its region —
/// computed with this node's ledger credited at every pick, so a burst water-fills instead of herding.
/// Among the endpoints within a small margin of that best time (a quarter of it, at least 20 ms), the
/// one holding the fewest KV tokens wins, which keeps time per output token even. A request stays
/// on the endpoint most likely holding its prompt prefix while that costs at most `affinityBudget`
/// seconds more than the best endpoint. When the fastest is in the node's region, other regions' endpoints
/// (already charged RTT and hysteresis) are left out of both: traffic leaves the region only for an
/// endpoint that is plainly faster, never for a tie-break or a cached prefix.
public struct IsobarPolicy: Policy {
    public init() {}
    public var kind: PolicyKind { .isobar }

    /// Expected-TTFT margin within which decode load decides: `max(floor, share × best)`.
    public static let marginShare = 0.25
    public static let marginFloor = 0.02

    public func pick(
        from candidates: [PolicyCandidate],
        affinityBudget: Double,
        rng: inout some RandomNumberGenerator
    ) -> (index: Int, reason: PickReason) {
        let fastest = argmin(candidates, rng: &rng) { $0.expectedTTFT }
        let limit =
            candidates[fastest].expectedTTFT
            + max(Self.marginFloor, Self.marginShare * candidates[fastest].expectedTTFT)
        let stayLocal = !candidates[fastest].remote
        let best = argmin(candidates, rng: &rng) {
            $0.expectedTTFT <= limit && !(stayLocal && $0.remote)
                ? $0.kvTokens + $0.expectedTTFT / (limit + 1) : .infinity
        }
        var affine = -1
        for (index, candidate) in candidates.enumerated()
        where candidate.cachedTokens > 0 && !(stayLocal && candidate.remote) {
            if affine < 0 || candidate.cachedTokens > candidates[affine].cachedTokens
                || (candidate.cachedTokens == candidates[affine].cachedTokens
                    && candidate.expectedTTFT < candidates[affine].expectedTTFT)
            {
                affine = index
            }
        }
        if affine >= 0, affine != best,
            candidates[affine].expectedTTFT <= candidates[best].expectedTTFT + affinityBudget
        {
            return (affine, .affinity)
        }
        return (best, .best)
    }
}

extension PolicyKind {
    /// A fresh policy of this kind.
    public func makePolicy() -> any Policy {
        switch self {
        case .roundRobin: RoundRobinPolicy()
        case .random: RandomPolicy()
        case .leastRequest: LeastRequestPolicy()
        case .powerOfTwo: PowerOfTwoPolicy()
        case .leastTokens: LeastTokensPolicy()
        case .peakEWMA: PeakEWMAPolicy()
        case .isobar: IsobarPolicy()
        }
    }
}
