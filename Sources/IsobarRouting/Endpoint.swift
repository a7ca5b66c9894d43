import IsobarModel

/// What one node knows about one endpoint (a backend): its own in-flight ledger, the latest scraped
/// sample, and what it has learned of the endpoint's speed.
struct Endpoint: Sendable {
    let backend: Backend
    let isLocal: Bool
    /// Only the nodes of its region reach it, and this node is not one: requests go through a peer there.
    let needsHop: Bool
    /// Seconds from the node to the endpoint's region and back (zero within the node's region): the
    /// configured figure until gossip measures it.
    var rtt: Double

    // MARK: Ledger (this node's requests), credited at pick time
    /// Requests in flight.
    var requests = 0
    /// Of which still waiting for their first token.
    var awaitingFirstToken = 0
    /// Uncached prompt tokens of those, not yet prefilled.
    var prefillTokens = 0
    /// Requests past their first token, generating.
    var decodeStreams = 0
    /// Output tokens those are still expected to generate.
    var decodeTokens = 0
    /// KV tokens this node's requests there are expected to hold on average over their lives (prompt
    /// plus half the expected output).
    var kvTokens = 0

    // MARK: Observations
    var sample: LoadSample?
    /// The peer whose gossip brought `sample`, when this node did not scrape it itself. Such a sample
    /// stays fresh until the peer publishes a change (or for `Router.gossipFreshFor`), unless the peer
    /// turns suspect.
    var sampleFrom: NodeID?
    var sampleFreshFor: Duration?
    // MARK: Peers' view, from gossip (suspect peers left out)
    /// Requests other nodes have in flight there, and their prompt tokens not yet prefilled.
    var peerRequests = 0
    var peerPrefillTokens = 0
    /// Every node of the endpoint's own region that reports on it says it cannot be used (breaker open,
    /// unreachable or paused).
    var reportedDown = false
    /// Recent observed times to first token, for the health digest and the region health view.
    var ttfts = RecentSamples(capacity: 128)
    /// Prompt tokens per second the endpoint prefills, from the capacity hint, refined by uncontended
    /// times to first token and by the scraped prompt throughput while prefill is its bottleneck.
    var prefillRate: Double
    /// Output tokens per second of the whole endpoint with a full batch, likewise.
    var decodeRate: Double
    /// Sequences the endpoint batches at once (`max_num_seqs`), when hinted.
    let slots: Int?
    /// Tokens its KV cache holds: the capacity hint, replaced by the scraped geometry.
    var kvCapacityTokens: Int
    /// Peak-EWMA of observed time to first token, in seconds, and when it was last updated.
    var peakLatency = 0.0
    var peakLatencyAt = Instant.zero
    /// Last expected TTFT computed for it, in seconds (for /metrics).
    var lastScore = 0.0
    var prefixes: PrefixIndex
    var lastSuccess: Instant?
    /// When a call or a probe last found the endpoint unreachable.
    var lastFailure: Instant?
    /// When an attempt was last sent there.
    var lastPicked: Instant?
    var breaker: CircuitBreaker
    /// Until when the backend asked not to be sent requests (`retry-after`).
    var pausedUntil: Instant?

    /// Prompt tokens per second assumed when nothing better is known (a mid-size GPU on an 8B model).
    static let defaultPrefillRate = 20_000.0
    static let defaultDecodeRate = 2_000.0

    init(backend: Backend, isLocal: Bool, rtt: Double, breaker: CircuitBreaker) {
        self.backend = backend
        self.isLocal = isLocal
        needsHop = !isLocal && backend.reach == .region
        self.rtt = isLocal ? 0 : rtt
        self.breaker = breaker
        prefillRate = backend.capacity.prefillTokensPerSecond ?? Self.defaultPrefillRate
        decodeRate = backend.capacity.decodeTokensPerSecond ?? Self.defaultDecodeRate
        slots = backend.capacity.maxConcurrency
        kvCapacityTokens = backend.capacity.kvCacheTokens ?? backend.capacity.contextWindow.map { $0 * 4 } ?? 400_000
        prefixes = PrefixIndex(capacityTokens: kvCapacityTokens)
    }

    /// The scraped sample if it is fresh at `now`.
    func freshSample(at now: Instant, staleAfter: Duration) -> LoadSample? {
        isStale(at: now, staleAfter: staleAfter) ? nil : sample
    }

    /// It holds a sample that is no longer fresh at `now`: older than `staleAfter`, or than the time a
    /// gossiped reading stays usable.
    func isStale(at now: Instant, staleAfter: Duration) -> Bool {
        guard let sample else { return false }
        return sample.age(at: now) > (sampleFreshFor ?? staleAfter)
    }

    /// The endpoint's state as a health digest names it.
    func healthState(usable: Bool, now: Instant) -> HealthDigest.State {
        switch breaker.state {
        case .open: return .open
        case .halfOpen: return .probing
        case .closed:
            if (pausedUntil ?? now) > now { return .paused }
            return usable ? .healthy : .unreachable
        }
    }
}

/// Why a policy picked an endpoint.
public enum PickReason: String, Sendable, CaseIterable {
    /// The only candidate.
    case only
    /// The policy's best score (or its rule, for round-robin and random).
    case best
    /// Kept on the endpoint most likely holding the prompt prefix, within the affinity budget.
    case affinity
    /// A retry of the same deployment.
    case retry
}
