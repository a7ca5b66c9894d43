import IsobarModel

/// What a policy sees of one candidate: which backend it is (an index the router assigned) and how
/// loaded this node believes it is.
public struct PolicyCandidate: Sendable, Equatable {
    /// The router's number for the backend.
    public var index: Int
    /// Requests this node has in flight on the backend (credited at pick time).
    public var inFlight: Int

    public init(index: Int, inFlight: Int) {
        self.index = index
        self.inFlight = inFlight
    }
}

/// A balancing policy: picks one candidate deployment for a request.
///
/// Policies are values owned by a `Router` (one per model group), so a policy with state (round-robin's
/// cursor) keeps it per model. `pick` is only called with a non-empty candidate list and returns an
/// index into it. Randomness comes from the caller's generator, so a seeded run is reproducible.
public protocol Policy: Sendable {
    var kind: PolicyKind { get }
    mutating func pick(from candidates: [PolicyCandidate], rng: inout some RandomNumberGenerator) -> Int
}

/// Cycles through the candidates in order.
public struct RoundRobinPolicy: Policy {
    private var cursor = 0
    public init() {}
    public var kind: PolicyKind { .roundRobin }

    public mutating func pick(from candidates: [PolicyCandidate], rng: inout some RandomNumberGenerator) -> Int {
        defer { cursor &+= 1 }
        return cursor % candidates.count
    }
}

/// Picks uniformly at random.
public struct RandomPolicy: Policy {
    public init() {}
    public var kind: PolicyKind { .random }

    public func pick(from candidates: [PolicyCandidate], rng: inout some RandomNumberGenerator) -> Int {
        Int.random(in: 0..<candidates.count, using: &rng)
    }
}

/// Picks the candidate with the fewest requests in flight from this node; ties are broken at random so a
/// burst does not pile onto the first candidate.
public struct LeastRequestPolicy: Policy {
    public init() {}
    public var kind: PolicyKind { .leastRequest }

    public func pick(from candidates: [PolicyCandidate], rng: inout some RandomNumberGenerator) -> Int {
        var best = Int.max
        var ties = 0
        var choice = 0
        for (index, candidate) in candidates.enumerated() {
            if candidate.inFlight < best {
                best = candidate.inFlight
                ties = 1
                choice = index
            } else if candidate.inFlight == best {
                // Reservoir sampling keeps each tied candidate with equal probability.
                ties += 1
                if Int.random(in: 0..<ties, using: &rng) == 0 { choice = index }
            }
        }
        return choice
    }
}

/// The power of two random choices (Mitzenmacher, "The Power of Two Choices in Randomized Load
/// Balancing", IEEE TPDS 2001): sample two distinct candidates, take the one with fewer requests in
/// flight. Nearly as good as least-request with fresh data, and far less prone to herding on stale data.
public struct PowerOfTwoPolicy: Policy {
    public init() {}
    public var kind: PolicyKind { .powerOfTwo }

    public func pick(from candidates: [PolicyCandidate], rng: inout some RandomNumberGenerator) -> Int {
        guard candidates.count > 1 else { return 0 }
        let first = Int.random(in: 0..<candidates.count, using: &rng)
        var second = Int.random(in: 0..<(candidates.count - 1), using: &rng)
        if second >= first { second += 1 }
        let a = candidates[first].inFlight
        let b = candidates[second].inFlight
        if a == b { return Bool.random(using: &rng) ? first : second }
        return a < b ? first : second
    }
}

extension PolicyKind {
    /// A fresh policy of this kind, or `nil` for a policy this build does not implement.
    public func makePolicy() -> (any Policy)? {
        switch self {
        case .roundRobin: RoundRobinPolicy()
        case .random: RandomPolicy()
        case .leastRequest: LeastRequestPolicy()
        case .powerOfTwo: PowerOfTwoPolicy()
        case .isobar, .leastTokens, .peakEWMA: nil
        }
    }
}
