import DequeModule
import IsobarModel

/// The settings a router needs, taken from a topology.
public struct RoutingConfiguration: Sendable, Equatable {
    public var policy: PolicyKind
    public var retries: RetrySettings
    public var timeouts: TimeoutSettings
    public var catchAll: CatchAll
    public var balancing: BalancingSettings
    public var admission: AdmissionSettings
    /// Failures in a row that open a backend's breaker, and the longest it stays open; also how long a
    /// backend that could not be reached is passed over while others can serve.
    public var circuitBreaker: CircuitBreakerSettings
    /// Round-trip time from this node's region to another, in seconds (the isobar policy adds it).
    public var regionRTT: [RegionID: Double]
    /// Spill-over to other regions, its hysteresis, and session stickiness.
    public var proximity: ProximitySettings
    /// Fill `RouteDecision.candidates` with every candidate and its load (for the decision trace log and
    /// the debug header); off, decisions carry only the pick, which keeps a decision cheap.
    public var explainsDecisions: Bool

    public init(
        policy: PolicyKind = .isobar,
        retries: RetrySettings = RetrySettings(),
        timeouts: TimeoutSettings = TimeoutSettings(),
        catchAll: CatchAll = CatchAll(),
        balancing: BalancingSettings = BalancingSettings(),
        admission: AdmissionSettings = AdmissionSettings(),
        circuitBreaker: CircuitBreakerSettings = CircuitBreakerSettings(),
        regionRTT: [RegionID: Double] = [:],
        proximity: ProximitySettings = ProximitySettings(),
        explainsDecisions: Bool = false
    ) {
        self.policy = policy
        self.retries = retries
        self.timeouts = timeouts
        self.catchAll = catchAll
        self.balancing = balancing
        self.admission = admission
        self.circuitBreaker = circuitBreaker
        self.regionRTT = regionRTT
        self.proximity = proximity
        self.explainsDecisions = explainsDecisions
    }

    public init(topology: Topology, explainsDecisions: Bool = false) {
        self.init(
            policy: topology.routing.policy,
            retries: topology.routing.retries,
            timeouts: topology.routing.timeouts,
            catchAll: topology.catchAll,
            balancing: topology.routing.balancing,
            admission: topology.routing.admission,
            circuitBreaker: topology.routing.circuitBreaker,
            proximity: topology.routing.proximity,
            explainsDecisions: explainsDecisions || topology.routing.debugHeader
        )
    }
}

/// The routing decisions of one node: which deployment serves a request, what to do when an attempt
/// fails or every endpoint is full, and the signals those decisions read — this node's in-flight ledger
/// per endpoint (requests, unprefilled prompt tokens, decode streams, credited at pick time), scraped
/// engine load, learned prefill rates, observed time to first token, prefix affinity and the output
/// lengths each model really produces.
///
/// A pure instance (STYLE §1): it reads no clock and draws no randomness of its own. The gateway and the
/// simulator feed it events and carry out the `RouteAction`s it returns. Every request that arrives is
/// eventually ended by the shell with `completed`, `abandoned`, or a `failed` that returns `.reject` or
/// `.catchAll`, or is refused while held; the router then forgets it, so its memory is bounded by
/// requests in flight.
///
/// Internally backends and deployments are numbered once at start-up, so a decision over many candidates
/// does array work, not string hashing.
public struct Router: Sendable {
    public let node: NodeID
    /// The node's region: deployments here are preferred while one of them is usable.
    public let region: RegionID?
    public let configuration: RoutingConfiguration
    let backendIndex: [BackendID: Int]
    var groups: [Group]
    let groupIndex: [ModelName: Int]
    let knownModels: [ModelName]
    var policies: [any Policy]
    var endpoints: [Endpoint]
    var requests: [RequestID: RequestState] = [:]
    var attempts: [AttemptID: AttemptState] = [:]
    var nextAttempt: UInt64 = 1
    /// Requests held while every endpoint was full, oldest first.
    var held = Deque<RequestID>()
    // Reused by every decision.
    var scratch: [Int] = []
    var views: [PolicyCandidate] = []
    /// What other nodes gossiped (`Router+Gossip`), and each node's region.
    var peers: [NodeID: PeerReport] = [:]
    let nodeRegions: [NodeID: RegionID]
    /// The region of each pool (`Node.pool`), by the pool's name: its members' region.
    let poolRegions: [NodeID: RegionID]
    /// The live peers of each region, sorted (forwarding targets; `Router+Gossip`).
    var livePeers: [RegionID: [NodeID]] = [:]
    /// Peers a hop could not connect to, passed over as forwarding targets until then.
    var hopRefused: [NodeID: Instant] = [:]
    /// The region each recent session was last served in (`Router+Proximity`).
    var sessions = SessionPins()

    /// A model group with its deployments numbered, and what the node learns of its requests.
    struct Group {
        var model: ModelGroup
        /// Backend index of each deployment.
        var backendOf: [Int]
        /// Deployments that can serve each operation (indexed by `Operation.index`).
        var servable: [[Int]]
        /// The groups to downgrade to when every deployment failed: the model's `fallbacks` in order, each
        /// followed by its own, depth first, each group once.
        var fallbacks: [Int] = []
        /// The groups to try when the prompt is too long for every deployment left: `context_fallbacks`.
        var contextFallbacks: [Int] = []
        /// Timeouts of an attempt on each deployment (routing's, the backend's, the model's).
        var timeouts: [TimeoutSettings]
        /// A request's whole budget (the model's `total_ms`, else routing's).
        var budget: Duration
        var outputLengths = TokenQuantile()
        var promptLengths = TokenQuantile()
    }

    struct RequestState {
        var profile: RequestProfile
        var group: Int
        /// The group the client asked for (`group` changes when the request falls back).
        var originalGroup: Int
        var deadline: Instant
        /// Deployment indices tried so far (of `group`).
        var tried: [Int] = []
        /// How many of the original group's fallbacks were moved to.
        var fallbacksUsed = 0
        var contextFallbacksUsed = 0
        var sameDeploymentRetries = 0
        var attemptsMade = 0
        /// While held: when the node gives up waiting for an endpoint to free.
        var heldUntil: Instant?
    }

    struct AttemptState {
        var request: RequestID
        var deployment: Int
        var backend: Int
        var promptTokens: Int
        var uncachedTokens: Int
        var expectedOutput: Int
        /// Nothing was waiting for its first token on the endpoint when this attempt was sent (by this
        /// node's ledger and the latest scrape): its time to first token measures the prefill rate.
        var uncontended: Bool
        var pickedAt: Instant
        /// The node of the endpoint's region the attempt was forwarded through.
        var via: NodeID?
        var firstTokenSeen = false
    }

    /// Builds the router of `node`.
    public init(topology: Topology, node: NodeID, configuration: RoutingConfiguration) {
        self.node = node
        let region = topology.node(node)?.region
        self.region = region
        let (pools, named) = (topology.nodes.filter(\.pool), topology.nodes.filter { !$0.pool })
        nodeRegions = Dictionary(named.map { ($0.name, $0.region) }, uniquingKeysWith: { a, _ in a })
        poolRegions = Dictionary(pools.map { ($0.name, $0.region) }, uniquingKeysWith: { a, _ in a })
        self.configuration = configuration
        let backendIndex = Dictionary(
            topology.backends.enumerated().map { ($1.name, $0) },
            uniquingKeysWith: { a, _ in a }
        )
        self.backendIndex = backendIndex
        endpoints = topology.backends.map {
            Endpoint(
                backend: $0,
                isLocal: region == nil || $0.region == region,
                rtt: configuration.regionRTT[$0.region] ?? Self.defaultRTT,
                breaker: CircuitBreaker(
                    threshold: configuration.circuitBreaker.consecutiveFailures,
                    maxCooldown: configuration.circuitBreaker.cooldown,
                    window: configuration.circuitBreaker.window,
                    errorRate: configuration.circuitBreaker.errorRate
                )
            )
        }
        var groups: [Group] = []
        var groupIndex: [ModelName: Int] = [:]
        var policies: [any Policy] = []
        for model in topology.models where groupIndex[model.name] == nil {
            let backendOf = model.deployments.map { backendIndex[$0.backend] ?? -1 }
            let servable = Operation.allCases.map { operation in
                model.deployments.indices.filter { d in
                    guard backendOf[d] >= 0 else { return false }
                    switch operation {
                    case .chatCompletions, .messages: return true
                    case .completions, .embeddings: return topology.backends[backendOf[d]].api == .openai
                    }
                }
            }
            let timeouts = backendOf.map { b in
                configuration.timeouts.attempt(backend: b >= 0 ? topology.backends[b].timeouts : .init(), model: model)
            }
            let budget = Duration.milliseconds(configuration.timeouts.budgetMs(for: model))
            groupIndex[model.name] = groups.count
            groups.append(
                Group(model: model, backendOf: backendOf, servable: servable, timeouts: timeouts, budget: budget)
            )
            policies.append((model.policy ?? configuration.policy).makePolicy())
        }
        for g in groups.indices {
            var order: [Int] = []
            var visit = groups[g].model.fallbacks.reversed().compactMap { groupIndex[$0] }
            while let next = visit.popLast() {
                guard next != g, !order.contains(next) else { continue }
                order.append(next)
                visit += groups[next].model.fallbacks.reversed().compactMap { groupIndex[$0] }
            }
            groups[g].fallbacks = order
            groups[g].contextFallbacks = groups[g].model.contextFallbacks.compactMap { groupIndex[$0] }
        }
        self.groups = groups
        self.groupIndex = groupIndex
        self.policies = policies
        knownModels = topology.models.map(\.name).sorted()
    }

    // MARK: - Requests

    /// A request arrived: plan its first attempt, hold it until an endpoint frees, or refuse it.
    public mutating func requestArrived(
        _ request: RequestProfile,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> RouteAction {
        guard let g = groupIndex[request.model] else {
            return .reject(.unknownModel(request.model, known: knownModels), retryAfter: nil)
        }
        let servable = groups[g].servable[request.operation.index]
        guard !servable.isEmpty else {
            return .reject(.unsupportedOperation(request.model, request.operation), retryAfter: nil)
        }
        precondition(requests[request.id] == nil, "request id \(request.id) is already in flight; ids must be unique")
        let deadline = now + groups[g].budget
        requests[request.id] = RequestState(profile: request, group: g, originalGroup: g, deadline: deadline)
        groups[g].promptLengths.record(request.promptTokens)
        return admit(request.id, candidates: servable, reason: "initial", now: now, rng: &rng)
    }

    /// The first token of an attempt arrived (the shell committed to it): its prompt is prefilled.
    public mutating func firstToken(_ attempt: AttemptID, now: Instant) {
        guard var state = attempts[attempt], !state.firstTokenSeen else { return }
        state.firstTokenSeen = true
        attempts[attempt] = state
        endpoints[state.backend].awaitingFirstToken -= 1
        endpoints[state.backend].prefillTokens -= state.uncachedTokens
        endpoints[state.backend].decodeStreams += 1
        observeTTFT(state, now: now)
    }

    /// An attempt completed successfully; the request is over.
    public mutating func completed(_ attempt: AttemptID, usage: Usage?, now: Instant) {
        guard let state = attempts.removeValue(forKey: attempt) else { return }
        release(state)
        endpoints[state.backend].lastSuccess = now
        endpoints[state.backend].breaker.succeeded()
        if let request = requests.removeValue(forKey: state.request), let usage, usage.completionTokens > 0 {
            groups[request.group].outputLengths.record(usage.completionTokens)
        }
    }

    /// The client went away or the shell gave up on the request; the request is over.
    public mutating func abandoned(_ attempt: AttemptID, now: Instant) {
        guard let state = attempts.removeValue(forKey: attempt) else { return }
        release(state)
        endpoints[state.backend].breaker.abandoned()
        requests[state.request] = nil
    }

    /// An attempt failed: retry the same deployment with backoff while retries remain, fail over to the
    /// next untried deployment, then to the model's fallbacks, and when nothing is left answer from the
    /// catch-all (or, for a failure that blames the request or a request out of budget, with the error).
    /// When another deployment can take the request, a backend that is unreachable, silent, or asked for a
    /// long pause is not waited for: the request fails over at once. A prompt too long for the deployment
    /// goes to an untried deployment with a larger context window, then to the model's context fallbacks.
    public mutating func failed(
        _ attempt: AttemptID,
        _ failure: UpstreamFailure,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> RouteAction {
        guard let state = attempts.removeValue(forKey: attempt) else {
            preconditionFailure("failed(\(attempt)) reported for an attempt the router does not know")
        }
        release(state)
        // A hop that could not connect says nothing of the backend: the peer is passed over instead, and
        // the same deployment goes through another live node of its region when there is one.
        let peerRefused = state.via != nil && failure.neverConnected
        if let via = state.via, peerRefused {
            hopRefused[via] = now + configuration.circuitBreaker.cooldown
        } else {
            observe(failure, on: state.backend, now: now)
        }
        guard var request = requests[state.request] else {
            preconditionFailure("attempt \(attempt) belongs to an unknown request \(state.request)")
        }
        let backend = endpoints[state.backend].backend
        let giveUp = RouteAction.reject(
            .upstream(failure, backend: backend.name, retriesSpent: request.attemptsMade > 1),
            retryAfter: failure.retryAfter
        )
        guard now < request.deadline else { return end(state.request, giveUp) }
        let group = request.group
        if peerRefused, hasRoute(to: state.backend, forwarded: request.profile.forwarded, now: now) {
            scratch.removeAll(keepingCapacity: true)
            scratch.append(state.deployment)
            return .send(plan(state.request, group: group, reason: "hop_failed", now: now, rng: &rng))
        }
        let operation = request.profile.operation.index
        if failure.isContextLength {
            let larger = largerContext(state, window: backend.capacity.contextWindow, now: now, rng: &rng)
            return larger ?? end(state.request, giveUp)
        }
        guard failure.allowsFailover else { return end(state.request, giveUp) }
        preferReachable(
            groups[group].servable[operation].filter { !request.tried.contains($0) },
            group: group,
            now: now,
            forwarded: request.profile.forwarded
        )
        let alternatives = scratch
        // 1. The same deployment, after a backoff, while retries remain, the budget allows and its breaker
        //    will admit it.
        if failure.isRetryable, !(failure.prefersFailover && !alternatives.isEmpty),
            request.sameDeploymentRetries < configuration.retries.attempts
        {
            let backoff = max(backoff(retry: request.sameDeploymentRetries, rng: &rng), failure.retryAfter ?? .zero)
            if backoff <= .seconds(60), now + backoff < request.deadline,
                endpoints[state.backend].breaker.admits(at: now + backoff)
            {
                request.sameDeploymentRetries += 1
                requests[state.request] = request
                scratch.removeAll(keepingCapacity: true)
                scratch.append(state.deployment)
                let plan = plan(state.request, group: group, reason: failure.label, now: now, rng: &rng)
                return .retry(plan, after: backoff)
            }
        }
        // 2. Another deployment of the same model, at once.
        request.sameDeploymentRetries = 0
        requests[state.request] = request
        if !alternatives.isEmpty {
            return .send(plan(state.request, group: group, reason: failure.label, now: now, rng: &rng))
        }
        // 3. The model's fallbacks (a downgrade), in order, skipping those with nothing to send to.
        if let action = nextFallback(state.request, reason: failure.label, now: now, rng: &rng) { return action }
        // 4. The catch-all.
        let failed =
            peerRefused
            ? "no live node of region '\(backend.region)' could be reached to forward to backend '\(backend.name)'"
            : "backend '\(backend.name)' failed (\(failure))"
        let reason = "\(failed) and no other deployment or fallback is left"
        let answer = catchAll(reason: reason, retryAfter: failure.retryAfter, failure: failure, backend: backend.name)
        return end(state.request, answer)
    }

    /// Moves a request to the next of its original model's fallbacks that can be sent to now, and plans
    /// its attempt there; nil when none is left.
    private mutating func nextFallback(
        _ id: RequestID,
        reason: String,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> RouteAction? {
        nextGroup(id, from: \.fallbacks, used: \.fallbacksUsed, reason: reason, now: now, rng: &rng)
    }

    /// Moves a request to the next group of its original model's `list` (`fallbacks` or
    /// `contextFallbacks`, counted in `used`) that can be sent to now, and plans its attempt there; nil
    /// when none is left.
    private mutating func nextGroup(
        _ id: RequestID,
        from list: KeyPath<Group, [Int]>,
        used: WritableKeyPath<RequestState, Int>,
        reason: String,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> RouteAction? {
        guard var request = requests[id] else { return nil }
        let order = groups[request.originalGroup][keyPath: list]
        while request[keyPath: used] < order.count {
            let next = order[request[keyPath: used]]
            request[keyPath: used] += 1
            requests[id] = request
            if let action = switchGroup(id, to: next, reason: reason, now: now, rng: &rng) { return action }
        }
        return nil
    }

    /// After a prompt too long for the deployment of `state`: an untried deployment of the group whose
    /// context window is known and larger, else the original model's next context fallback.
    private mutating func largerContext(
        _ state: AttemptState,
        window: Int?,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> RouteAction? {
        guard let request = requests[state.request] else { return nil }
        let g = request.group
        if let window {
            let larger = groups[g].servable[request.profile.operation.index].filter { d in
                let b = groups[g].backendOf[d]
                return !request.tried.contains(d) && (endpoints[b].backend.capacity.contextWindow ?? 0) > window
            }
            preferReachable(larger, group: g, now: now, forwarded: request.profile.forwarded)
            if !scratch.isEmpty {
                return .send(plan(state.request, group: g, reason: "context_length", now: now, rng: &rng))
            }
        }
        return nextGroup(
            state.request,
            from: \.contextFallbacks,
            used: \.contextFallbacksUsed,
            reason: "context_length",
            now: now,
            rng: &rng
        )
    }

    /// Moves a request to group `next` and plans its first attempt there, or returns nil (leaving the
    /// request where it was) when `next` has nothing that can be sent the request now.
    private mutating func switchGroup(
        _ id: RequestID,
        to next: Int,
        reason: String,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> RouteAction? {
        guard let request = requests[id] else { return nil }
        preferReachable(
            groups[next].servable[request.profile.operation.index],
            group: next,
            now: now,
            forwarded: request.profile.forwarded
        )
        guard !scratch.isEmpty else { return nil }
        requests[id]?.group = next
        requests[id]?.tried = []
        return .send(plan(id, group: next, reason: reason, now: now, rng: &rng))
    }

    // MARK: - Held requests

    /// Plans held requests, oldest first, whose model has an endpoint with room; refuses those held too
    /// long. A request whose endpoints are all full stays held without blocking the requests of other
    /// models behind it. The shell calls it whenever capacity may have freed (a completion, a first token,
    /// a failure) and at the earliest `heldUntil` of the requests it holds.
    public mutating func releaseHeld(now: Instant, rng: inout some RandomNumberGenerator) -> [(RequestID, RouteAction)]
    {
        var out: [(RequestID, RouteAction)] = []
        var kept = Deque<RequestID>()
        // Model group and operation pairs found full in this pass: later requests of the pair stay held.
        var full: [Int] = []
        for id in held {
            guard let request = requests[id], let until = request.heldUntil else { continue }
            if now >= until {
                out.append((id, end(id, overloaded(retryAfter: .seconds(1)))))
                continue
            }
            let operation = request.profile.operation.index
            let key = request.group * Operation.allCases.count + operation
            if !full.contains(key) {
                let candidates = groups[request.group].servable[operation]
                preferReachable(candidates, group: request.group, now: now, forwarded: request.profile.forwarded)
                if scratch.isEmpty {
                    requests[id]?.heldUntil = nil
                    let action =
                        nextFallback(id, reason: "unavailable", now: now, rng: &rng)
                        ?? end(
                            id,
                            unavailable(
                                candidates,
                                group: request.group,
                                forwarded: request.profile.forwarded,
                                now: now
                            )
                        )
                    out.append((id, action))
                    continue
                }
                dropFullEndpoints(group: request.group, now: now)
                if scratch.isEmpty { full.append(key) }
            }
            guard !full.contains(key) else {
                kept.append(id)
                continue
            }
            requests[id]?.heldUntil = nil
            out.append((id, .send(plan(id, group: request.group, reason: "released", now: now, rng: &rng))))
        }
        held = kept
        return out
    }

    /// A held request's client went away.
    public mutating func abandonHeld(_ id: RequestID) {
        guard requests[id]?.heldUntil != nil else { return }
        requests[id] = nil
        held.removeAll { $0 == id }
    }

    /// Requests held, waiting for an endpoint.
    public var heldCount: Int { held.count }

    // MARK: - Observations

    /// A scrape of `backend`'s metrics.
    public mutating func scraped(_ backend: BackendID, _ sample: LoadSample, now: Instant) {
        guard let b = backendIndex[backend] else { return }
        endpoints[b].sample = sample
        endpoints[b].sampleFrom = nil
        endpoints[b].sampleFreshFor = nil
        if let tokens = sample.kvCacheTokens, tokens > 0 {
            endpoints[b].kvCapacityTokens = tokens
            endpoints[b].prefixes.resize(capacityTokens: tokens)
        }
        // Token counters measure capacity only at saturation: prompt throughput while requests wait with
        // sequence slots and KV room to spare (prefill is the bottleneck), output throughput while the
        // batch is full.
        let slots = endpoints[b].slots ?? Int.max
        let running = sample.running ?? 0
        if (sample.waiting ?? 0) > 0, running < slots, (sample.kvUsage ?? 0) < 0.9,
            let rate = sample.promptTokensPerSecond, rate > 0
        {
            endpoints[b].prefillRate = Self.refined(endpoints[b].prefillRate, toward: rate, weight: 0.2)
        }
        if running >= slots, let rate = sample.generationTokensPerSecond, rate > 0 {
            endpoints[b].decodeRate = Self.refined(endpoints[b].decodeRate, toward: rate, weight: 0.2)
        }
    }

    /// A health probe of `backend` (a metrics scrape, or `GET /v1/models` of an idle provider) reached it
    /// or not. An unreachable backend is passed over while others can serve, as after a failed call; a
    /// reachable one is usable again, and if its breaker is open it admits its probe attempt at once
    /// (`CircuitBreaker.reachedAgain`). Closing a breaker is left to real traffic: only a real call can
    /// show that completions work.
    public mutating func probed(_ backend: BackendID, reachable: Bool, now: Instant) {
        guard let b = backendIndex[backend] else { return }
        if reachable {
            if let failure = endpoints[b].lastFailure, (endpoints[b].lastSuccess ?? .zero) <= failure {
                endpoints[b].lastSuccess = now
                endpoints[b].breaker.reachedAgain()
            }
        } else {
            endpoints[b].lastFailure = now
        }
    }

    /// Whether `backend` has had no attempt for `idle` (or never had one): its health is known only from
    /// probes then.
    public func isIdle(_ backend: BackendID, for idle: Duration, now: Instant) -> Bool {
        guard let b = backendIndex[backend] else { return false }
        return endpoints[b].lastPicked.map { now - $0 >= idle } ?? true
    }

    // MARK: - Internals

    /// What a failed attempt says about its backend: the breaker counts the backend's own failures (an
    /// answer that blames the request closes it: the backend is up); an unreachable backend is passed
    /// over for the cooldown; a `retry-after` pauses it for every request, up to 60 s.
    mutating func observe(_ failure: UpstreamFailure, on b: Int, now: Instant) {
        if failure.meansUnreachable { endpoints[b].lastFailure = now }
        if failure.blamesBackend {
            endpoints[b].breaker.failed(at: now)
        } else {
            endpoints[b].breaker.succeeded()
        }
        if let pause = failure.retryAfter, pause > .zero {
            endpoints[b].pausedUntil = max(endpoints[b].pausedUntil ?? now, now + min(pause, .seconds(60)))
        }
    }

    /// Plans, holds or refuses a request that has its candidates.
    mutating func admit(
        _ id: RequestID,
        candidates: [Int],
        reason: String,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> RouteAction {
        let g = requests[id]!.group
        let profile = requests[id]!.profile
        preferReachable(
            candidates,
            group: g,
            now: now,
            pinned: pinnedRegion(profile.session, now: now),
            forwarded: profile.forwarded
        )
        if scratch.isEmpty {
            // Every deployment is out (breakers open, paused): the fallbacks serve, else the catch-all.
            return nextFallback(id, reason: "unavailable", now: now, rng: &rng)
                ?? end(id, unavailable(candidates, group: g, forwarded: profile.forwarded, now: now))
        }
        let admission = configuration.admission
        if admission.maxQueuePerEndpoint != nil {
            dropFullEndpoints(group: g, now: now)
            if scratch.isEmpty {
                guard held.count < admission.waitQueueRequests else {
                    return end(id, overloaded(retryAfter: .seconds(1)))
                }
                let until = now + .milliseconds(admission.maxWaitSeconds * 1000)
                requests[id]?.heldUntil = until
                held.append(id)
                return .hold(until: until)
            }
        }
        guard let limit = admission.maxPredictedTTFTSeconds else {
            return .send(plan(id, group: g, reason: reason, now: now, rng: &rng))
        }
        // Estimated once, whatever the policy: the same candidates serve the refusal and the pick.
        estimate(requests[id]!.profile, group: g, estimates: true, now: now)
        let best = views.map(\.expectedTTFT).min() ?? 0
        if best > limit {
            return end(id, overloaded(retryAfter: .milliseconds(max(1000, (best - limit) * 1000))))
        }
        return .send(pick(id, group: g, reason: reason, now: now, rng: &rng))
    }

    func overloaded(retryAfter: Duration) -> RouteAction {
        .reject(.overloaded, retryAfter: retryAfter)
    }

    /// The catch-all answer, with the upstream's `retry-after` or else the configured one.
    func catchAll(
        reason: String,
        retryAfter: Duration?,
        failure: UpstreamFailure? = nil,
        backend: BackendID? = nil
    ) -> RouteAction {
        let settings = configuration.catchAll
        return .catchAll(
            CatchAllPlan(
                mode: settings.mode,
                retryAfter: retryAfter ?? .seconds(settings.retryAfterSeconds),
                reason: reason,
                failure: failure,
                backend: backend
            )
        )
    }

    /// The catch-all for a request none of whose `candidates` can be sent anything now (breakers open,
    /// backends paused, or reachable only through a hop it cannot take): retry after the first of them
    /// opens again, from 1 s to 60 s.
    func unavailable(_ candidates: [Int], group g: Int, forwarded: Bool, now: Instant) -> RouteAction {
        let reopens = candidates.compactMap { d -> Duration? in
            let e = endpoints[groups[g].backendOf[d]]
            var until = e.pausedUntil ?? now
            if case .open(let open) = e.breaker.state { until = max(until, open) }
            return until > now ? until - now : nil
        }
        let wait = min(
            max(reopens.min() ?? .seconds(configuration.catchAll.retryAfterSeconds), .seconds(1)),
            .seconds(60)
        )
        let model = groups[g].model.name
        if !candidates.isEmpty,
            candidates.allSatisfy({ !hasRoute(to: groups[g].backendOf[$0], forwarded: forwarded, now: now) })
        {
            let why =
                forwarded
                ? "this request was forwarded here by another node already"
                : "no live node there can be reached"
            let regions = Set(candidates.map { endpoints[groups[g].backendOf[$0]].backend.region.rawValue })
            let reason =
                "every deployment of '\(model)' is reachable only from region "
                + "\(regions.sorted().map { "'\($0)'" }.joined(separator: ", ")) and \(why)"
            return catchAll(reason: reason, retryAfter: wait)
        }
        let reason = "every deployment of '\(model)' is unavailable (circuit breaker open or backend paused)"
        // A backend that asked for time is a provider's rate limit: the client hears it as one.
        guard let paused = candidates.first(where: { (endpoints[groups[g].backendOf[$0]].pausedUntil ?? now) > now })
        else { return catchAll(reason: reason, retryAfter: wait) }
        let backend = endpoints[groups[g].backendOf[paused]].backend.name
        let message =
            "Backend '\(backend)' asked for time (retry-after); every deployment of '\(groups[g].model.name)' "
            + "is paused or unavailable"
        let limited = UpstreamFailure.status(
            429,
            retryAfter: wait,
            body: .init(message: message, type: "rate_limit_error")
        )
        return catchAll(reason: reason, retryAfter: wait, failure: limited, backend: backend)
    }

    mutating func end(_ id: RequestID, _ action: RouteAction) -> RouteAction {
        requests[id] = nil
        return action
    }

    /// Exponential backoff with full jitter (Brooker, "Exponential Backoff And Jitter", AWS Architecture
    /// Blog 2015): uniform in [0, min(max, base * 2^retry)].
    func backoff(retry: Int, rng: inout some RandomNumberGenerator) -> Duration {
        let settings = configuration.retries
        let ceiling = min(settings.backoffMaxMs, settings.backoffBaseMs * Double(1 << min(retry, 30)))
        guard ceiling > 0 else { return .zero }
        return .milliseconds(Double.random(in: 0...ceiling, using: &rng))
    }
}

extension Operation {
    /// Position in `Operation.allCases`.
    var index: Int {
        switch self {
        case .chatCompletions: 0
        case .completions: 1
        case .embeddings: 2
        case .messages: 3
        }
    }
}

extension UpstreamFailure {
    /// The upstream's `retry-after`, if it sent one.
    public var retryAfter: Duration? {
        if case .status(_, let retryAfter, _) = self { return retryAfter }
        return nil
    }
}
