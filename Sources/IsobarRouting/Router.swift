import IsobarModel

/// The settings a router needs, taken from a topology.
public struct RoutingConfiguration: Sendable, Equatable {
    public var policy: PolicyKind
    public var retries: RetrySettings
    public var timeouts: TimeoutSettings
    public var catchAll: CatchAll
    /// How long a backend that could not be reached is passed over while others can serve.
    public var unreachableCooldown: Duration
    /// Fill `RouteDecision.candidates` with every candidate and its load (for the decision trace log);
    /// off, decisions carry only the pick, which keeps a decision over many candidates cheap.
    public var explainsDecisions: Bool

    public init(
        policy: PolicyKind = .leastRequest,
        retries: RetrySettings = RetrySettings(),
        timeouts: TimeoutSettings = TimeoutSettings(),
        catchAll: CatchAll = CatchAll(),
        unreachableCooldown: Duration = .seconds(30),
        explainsDecisions: Bool = false
    ) {
        self.policy = policy
        self.retries = retries
        self.timeouts = timeouts
        self.catchAll = catchAll
        self.unreachableCooldown = unreachableCooldown
        self.explainsDecisions = explainsDecisions
    }

    public init(topology: Topology, explainsDecisions: Bool = false) {
        self.init(
            policy: topology.routing.policy,
            retries: topology.routing.retries,
            timeouts: topology.routing.timeouts,
            catchAll: topology.catchAll,
            unreachableCooldown: .milliseconds(topology.routing.circuitBreaker.cooldownSeconds * 1000),
            explainsDecisions: explainsDecisions
        )
    }
}

/// The routing decisions of one node: which deployment serves a request, what to do when an attempt
/// fails, and the in-flight ledger those decisions read.
///
/// A pure instance (STYLE §1): it reads no clock and draws no randomness of its own. The gateway and the
/// simulator feed it events and carry out the `RouteAction`s it returns. Every request that arrives is
/// eventually ended by the shell with `completed`, `abandoned`, or a `failed` that returns `.reject` or
/// `.catchAll`; the router then forgets it, so its memory is bounded by requests in flight.
///
/// Internally backends and deployments are numbered once at start-up, so a decision over many candidates
/// does array work, not string hashing.
public struct Router: Sendable {
    public let node: NodeID
    /// The node's region: deployments here are preferred while one of them is usable.
    public let region: RegionID?
    public let configuration: RoutingConfiguration
    private let backends: [Backend]
    private let backendIndex: [BackendID: Int]
    /// Per backend: it is in the node's region.
    private let isLocal: [Bool]
    private let groups: [Group]
    private let groupIndex: [ModelName: Int]
    private let knownModels: [ModelName]
    private var policies: [any Policy]
    private var inFlight: [Int]
    private var lastSuccess: [Instant?]
    private var lastFailure: [Instant?]
    private var requests: [RequestID: RequestState] = [:]
    private var attempts: [AttemptID: AttemptState] = [:]
    private var nextAttempt: UInt64 = 1
    // Reused by every decision.
    private var scratch: [Int] = []
    private var views: [PolicyCandidate] = []

    /// A model group with its deployments numbered.
    struct Group {
        var model: ModelGroup
        /// Backend index of each deployment.
        var backendOf: [Int]
        /// Deployments that can serve each operation (indexed by `Operation.index`).
        var servable: [[Int]]
    }

    struct RequestState {
        var profile: RequestProfile
        var group: Int
        var deadline: Instant
        /// Deployment indices tried so far.
        var tried: [Int] = []
        var sameDeploymentRetries = 0
        var attemptsMade = 0
    }

    struct AttemptState {
        var request: RequestID
        var deployment: Int
        var backend: Int
    }

    /// Builds the router of `node`. Policies named in the topology must be available
    /// (`PolicyKind.isAvailable`); IsobarConfig rejects the others.
    public init(topology: Topology, node: NodeID, configuration: RoutingConfiguration) {
        self.node = node
        let region = topology.node(node)?.region
        self.region = region
        self.configuration = configuration
        backends = topology.backends
        let backendIndex = Dictionary(
            topology.backends.enumerated().map { ($1.name, $0) },
            uniquingKeysWith: { a, _ in a }
        )
        self.backendIndex = backendIndex
        isLocal = topology.backends.map { $0.region == region }
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
            groupIndex[model.name] = groups.count
            groups.append(Group(model: model, backendOf: backendOf, servable: servable))
            policies.append((model.policy ?? configuration.policy).makePolicy() ?? LeastRequestPolicy())
        }
        self.groups = groups
        self.groupIndex = groupIndex
        self.policies = policies
        knownModels = topology.models.map(\.name).sorted()
        inFlight = Array(repeating: 0, count: backends.count)
        lastSuccess = Array(repeating: nil, count: backends.count)
        lastFailure = Array(repeating: nil, count: backends.count)
    }

    // MARK: - Events

    /// A request arrived: plan its first attempt, or reject it.
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
        let deadline = now + .milliseconds(configuration.timeouts.totalMs)
        requests[request.id] = RequestState(profile: request, group: g, deadline: deadline)
        preferReachable(servable, group: g, now: now)
        return .send(plan(request.id, group: g, reason: "initial", rng: &rng))
    }

    /// The first token of an attempt arrived (the shell committed to it).
    public mutating func firstToken(_ attempt: AttemptID, now: Instant) {}

    /// An attempt completed successfully; the request is over.
    public mutating func completed(_ attempt: AttemptID, usage: Usage?, now: Instant) {
        guard let state = attempts.removeValue(forKey: attempt) else { return }
        release(state.backend)
        requests[state.request] = nil
        lastSuccess[state.backend] = now
    }

    /// The client went away or the shell gave up on the request; the request is over.
    public mutating func abandoned(_ attempt: AttemptID, now: Instant) {
        guard let state = attempts.removeValue(forKey: attempt) else { return }
        release(state.backend)
        requests[state.request] = nil
    }

    /// An attempt failed: retry the same deployment with backoff while retries remain, fail over to the
    /// next untried deployment, or give up. When another deployment can take the request, a backend that
    /// is unreachable, silent, or asked for a long pause is not waited for: the request fails over at once.
    public mutating func failed(
        _ attempt: AttemptID,
        _ failure: UpstreamFailure,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> RouteAction {
        guard let state = attempts.removeValue(forKey: attempt) else {
            preconditionFailure("failed(\(attempt)) reported for an attempt the router does not know")
        }
        release(state.backend)
        if failure.meansUnreachable { lastFailure[state.backend] = now }
        guard var request = requests[state.request] else {
            preconditionFailure("attempt \(attempt) belongs to an unknown request \(state.request)")
        }
        let giveUp = RouteAction.reject(
            .upstream(failure, backend: backends[state.backend].name, retriesSpent: request.attemptsMade > 1),
            retryAfter: failure.retryAfter
        )
        let group = request.group
        let servable = groups[group].servable[request.profile.operation.index]
        let alternatives =
            failure.allowsFailover && now < request.deadline ? servable.filter { !request.tried.contains($0) } : []
        // 1. The same deployment, after a backoff, while retries remain and the budget allows.
        if failure.isRetryable, !(failure.prefersFailover && !alternatives.isEmpty),
            request.sameDeploymentRetries < configuration.retries.attempts
        {
            let backoff = max(backoff(retry: request.sameDeploymentRetries, rng: &rng), failure.retryAfter ?? .zero)
            if backoff <= .seconds(60), now + backoff < request.deadline {
                request.sameDeploymentRetries += 1
                requests[state.request] = request
                scratch.removeAll(keepingCapacity: true)
                scratch.append(state.deployment)
                return .retry(plan(state.request, group: group, reason: failure.label, rng: &rng), after: backoff)
            }
        }
        // 2. Another deployment of the same model, at once.
        guard !alternatives.isEmpty else { return end(state.request, giveUp) }
        request.sameDeploymentRetries = 0
        requests[state.request] = request
        preferReachable(alternatives, group: group, now: now)
        return .send(plan(state.request, group: group, reason: failure.label, rng: &rng))
    }

    // MARK: - Queries

    /// Requests this node has in flight on `backend`.
    public func inFlight(on backend: BackendID) -> Int { backendIndex[backend].map { inFlight[$0] } ?? 0 }

    /// Requests the router is tracking (in flight or waiting for a retry).
    public var activeRequests: Int { requests.count }

    /// False while `backend` is passed over: its last call could not reach it (connect failure, reset or
    /// timeout), no call succeeded since, and the cooldown since that failure has not run out.
    public func isUsable(_ backend: BackendID, now: Instant) -> Bool {
        backendIndex[backend].map { isUsable(index: $0, now: now) } ?? false
    }

    /// The model groups clients can ask for, sorted by name.
    public var modelNames: [ModelName] { knownModels }

    // MARK: - Internals

    private func isUsable(index b: Int, now: Instant) -> Bool {
        guard let failure = lastFailure[b] else { return true }
        return (lastSuccess[b] ?? .zero) > failure || now - failure >= configuration.unreachableCooldown
    }

    /// Fills `scratch` with the deployments to pick among: the usable ones in the node's region, else the
    /// usable ones anywhere, else all of them (one may have recovered). Load-aware spill-over between
    /// regions comes with gossip; until then a region serves its own traffic while it can.
    private mutating func preferReachable(_ candidates: [Int], group g: Int, now: Instant) {
        scratch.removeAll(keepingCapacity: true)
        var usableAnywhere = 0
        for d in candidates {
            let b = groups[g].backendOf[d]
            guard isUsable(index: b, now: now) else { continue }
            usableAnywhere += 1
            if isLocal[b] { scratch.append(d) }
        }
        guard scratch.isEmpty else { return }
        if usableAnywhere > 0 {
            for d in candidates where isUsable(index: groups[g].backendOf[d], now: now) { scratch.append(d) }
        } else {
            scratch.append(contentsOf: candidates)
        }
    }

    /// Picks one of the deployments in `scratch` with the group's policy and credits the ledger.
    private mutating func plan(
        _ id: RequestID,
        group g: Int,
        reason: String,
        rng: inout some RandomNumberGenerator
    ) -> AttemptPlan {
        views.removeAll(keepingCapacity: true)
        for d in scratch {
            let b = groups[g].backendOf[d]
            views.append(PolicyCandidate(index: b, inFlight: inFlight[b]))
        }
        let pick = scratch.count == 1 ? 0 : policies[g].pick(from: views, rng: &rng)
        let deployment = scratch[pick]
        let backend = groups[g].backendOf[deployment]
        let attempt = AttemptID(nextAttempt)
        nextAttempt &+= 1
        attempts[attempt] = AttemptState(request: id, deployment: deployment, backend: backend)
        inFlight[backend] += 1
        var request = requests[id]!
        request.attemptsMade += 1
        if !request.tried.contains(deployment) { request.tried.append(deployment) }
        requests[id] = request
        let explained: [CandidateView] =
            configuration.explainsDecisions
            ? views.map { CandidateView(backend: backends[$0.index].name, inFlight: $0.inFlight) } : []
        return AttemptPlan(
            attempt: attempt,
            request: id,
            deployment: groups[g].model.deployments[deployment],
            region: backends[backend].region,
            attemptNumber: request.attemptsMade,
            deadline: request.deadline,
            decision: RouteDecision(
                policy: policies[g].kind,
                candidates: explained,
                picked: backends[backend].name,
                reason: reason
            )
        )
    }

    private mutating func release(_ backend: Int) {
        precondition(inFlight[backend] > 0, "in-flight ledger of \(backends[backend].name) would go negative")
        inFlight[backend] -= 1
    }

    private mutating func end(_ id: RequestID, _ action: RouteAction) -> RouteAction {
        requests[id] = nil
        return action
    }

    /// Exponential backoff with full jitter (Brooker, "Exponential Backoff And Jitter", AWS Architecture
    /// Blog 2015): uniform in [0, min(max, base * 2^retry)].
    private func backoff(retry: Int, rng: inout some RandomNumberGenerator) -> Duration {
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
