import IsobarModel

/// The settings a router needs, taken from a topology.
public struct RoutingConfiguration: Sendable, Equatable {
    public var policy: PolicyKind
    public var retries: RetrySettings
    public var timeouts: TimeoutSettings
    public var catchAll: CatchAll
    /// How long a backend that could not be reached is passed over while others can serve.
    public var unreachableCooldown: Duration

    public init(
        policy: PolicyKind = .leastRequest,
        retries: RetrySettings = RetrySettings(),
        timeouts: TimeoutSettings = TimeoutSettings(),
        catchAll: CatchAll = CatchAll(),
        unreachableCooldown: Duration = .seconds(30)
    ) {
        self.policy = policy
        self.retries = retries
        self.timeouts = timeouts
        self.catchAll = catchAll
        self.unreachableCooldown = unreachableCooldown
    }

    public init(topology: Topology) {
        self.init(
            policy: topology.routing.policy,
            retries: topology.routing.retries,
            timeouts: topology.routing.timeouts,
            catchAll: topology.catchAll,
            unreachableCooldown: .milliseconds(topology.routing.circuitBreaker.cooldownSeconds * 1000)
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
public struct Router: Sendable {
    public let node: NodeID
    /// The node's region: deployments here are preferred while one of them is usable.
    public let region: RegionID?
    public let configuration: RoutingConfiguration
    private let models: [ModelName: ModelGroup]
    private let knownModels: [ModelName]
    private let backends: [BackendID: Backend]
    private var policies: [ModelName: any Policy] = [:]
    private var inFlight: [BackendID: Int] = [:]
    private var requests: [RequestID: RequestState] = [:]
    private var attempts: [AttemptID: AttemptState] = [:]
    private var nextAttempt: UInt64 = 1
    private var health: [BackendID: PassiveHealth] = [:]

    /// What the node saw of a backend's last calls.
    struct PassiveHealth {
        var lastSuccess: Instant?
        var lastFailure: Instant?
    }

    struct RequestState {
        var profile: RequestProfile
        var deadline: Instant
        var tried: [Deployment] = []
        var sameDeploymentRetries = 0
        var attemptsMade = 0
    }

    struct AttemptState {
        var request: RequestID
        var deployment: Deployment
    }

    /// Builds the router of `node`. Policies named in the topology must be available
    /// (`PolicyKind.isAvailable`); IsobarConfig rejects the others.
    public init(topology: Topology, node: NodeID, configuration: RoutingConfiguration) {
        self.node = node
        self.region = topology.node(node)?.region
        self.configuration = configuration
        self.models = Dictionary(topology.models.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.knownModels = topology.models.map(\.name).sorted()
        self.backends = Dictionary(topology.backends.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for group in topology.models {
            let kind = group.policy ?? configuration.policy
            policies[group.name] = kind.makePolicy() ?? LeastRequestPolicy()
        }
    }

    // MARK: - Events

    /// A request arrived: plan its first attempt, or reject it.
    public mutating func requestArrived(
        _ request: RequestProfile,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> RouteAction {
        guard let group = models[request.model] else {
            return .reject(.unknownModel(request.model, known: knownModels), retryAfter: nil)
        }
        let candidates = deployments(of: group, for: request.operation)
        guard !candidates.isEmpty else {
            return .reject(.unsupportedOperation(request.model, request.operation), retryAfter: nil)
        }
        precondition(requests[request.id] == nil, "request id \(request.id) is already in flight; ids must be unique")
        let deadline = now + .milliseconds(configuration.timeouts.totalMs)
        requests[request.id] = RequestState(profile: request, deadline: deadline)
        let reachable = preferReachable(candidates, now: now)
        return .send(plan(request.id, group: group, among: reachable, reason: "initial", rng: &rng))
    }

    /// The first token of an attempt arrived (the shell committed to it).
    public mutating func firstToken(_ attempt: AttemptID, now: Instant) {}

    /// An attempt completed successfully; the request is over.
    public mutating func completed(_ attempt: AttemptID, usage: Usage?, now: Instant) {
        guard let state = attempts.removeValue(forKey: attempt) else { return }
        release(state.deployment.backend)
        requests[state.request] = nil
        health[state.deployment.backend, default: PassiveHealth()].lastSuccess = now
    }

    /// The client went away or the shell gave up on the request; the request is over.
    public mutating func abandoned(_ attempt: AttemptID, now: Instant) {
        guard let state = attempts.removeValue(forKey: attempt) else { return }
        release(state.deployment.backend)
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
        release(state.deployment.backend)
        if failure.meansUnreachable { health[state.deployment.backend, default: PassiveHealth()].lastFailure = now }
        guard var request = requests[state.request], let group = models[request.profile.model] else {
            preconditionFailure("attempt \(attempt) belongs to an unknown request \(state.request)")
        }
        let giveUp = RouteAction.reject(
            .upstream(failure, backend: state.deployment.backend, retriesSpent: request.attemptsMade > 1),
            retryAfter: failure.retryAfter
        )
        let alternatives =
            failure.allowsFailover && now < request.deadline
            ? deployments(of: group, for: request.profile.operation).filter { !request.tried.contains($0) } : []
        // 1. The same deployment, after a backoff, while retries remain and the budget allows.
        if failure.isRetryable, !(failure.prefersFailover && !alternatives.isEmpty),
            request.sameDeploymentRetries < configuration.retries.attempts
        {
            let backoff = max(backoff(retry: request.sameDeploymentRetries, rng: &rng), failure.retryAfter ?? .zero)
            if backoff <= .seconds(60), now + backoff < request.deadline {
                request.sameDeploymentRetries += 1
                requests[state.request] = request
                let next = plan(
                    state.request,
                    group: group,
                    among: [state.deployment],
                    reason: failure.label,
                    rng: &rng
                )
                return .retry(next, after: backoff)
            }
        }
        // 2. Another deployment of the same model, at once.
        guard !alternatives.isEmpty else { return end(state.request, giveUp) }
        request.sameDeploymentRetries = 0
        requests[state.request] = request
        let reachable = preferReachable(alternatives, now: now)
        return .send(plan(state.request, group: group, among: reachable, reason: failure.label, rng: &rng))
    }

    // MARK: - Queries

    /// Requests this node has in flight on `backend`.
    public func inFlight(on backend: BackendID) -> Int { inFlight[backend, default: 0] }

    /// Requests the router is tracking (in flight or waiting for a retry).
    public var activeRequests: Int { requests.count }

    /// False while `backend` is passed over: its last call could not reach it (connect failure, reset or
    /// timeout), no call succeeded since, and the cooldown since that failure has not run out.
    public func isUsable(_ backend: BackendID, now: Instant) -> Bool {
        guard let entry = health[backend], let failure = entry.lastFailure else { return true }
        return (entry.lastSuccess ?? .zero) > failure || now - failure >= configuration.unreachableCooldown
    }

    /// The model groups clients can ask for, sorted by name.
    public var modelNames: [ModelName] { knownModels }

    // MARK: - Internals

    private func deployments(of group: ModelGroup, for operation: Operation) -> [Deployment] {
        group.deployments.filter { deployment in
            guard let backend = backends[deployment.backend] else { return false }
            switch operation {
            case .chatCompletions, .messages: return true
            case .completions, .embeddings: return backend.api == .openai
            }
        }
    }

    /// The candidates to pick among: the usable ones in the node's region, else the usable ones anywhere,
    /// else all of them (one may have recovered). Load-aware spill-over between regions comes with gossip;
    /// until then a region serves its own traffic while it can.
    private func preferReachable(_ candidates: [Deployment], now: Instant) -> [Deployment] {
        let usable = candidates.filter { isUsable($0.backend, now: now) }
        guard !usable.isEmpty else { return candidates }
        let local = usable.filter { backends[$0.backend]?.region == region }
        return local.isEmpty ? usable : local
    }

    private mutating func plan(
        _ id: RequestID,
        group: ModelGroup,
        among candidates: [Deployment],
        reason: String,
        rng: inout some RandomNumberGenerator
    ) -> AttemptPlan {
        let views = candidates.map { PolicyCandidate(backend: $0.backend, inFlight: inFlight[$0.backend, default: 0]) }
        let kind: PolicyKind
        let index: Int
        if candidates.count == 1 {
            kind = policies[group.name]?.kind ?? configuration.policy
            index = 0
        } else {
            kind = policies[group.name]!.kind
            index = policies[group.name]!.pick(from: views, rng: &rng)
        }
        let deployment = candidates[index]
        let attempt = AttemptID(nextAttempt)
        nextAttempt &+= 1
        attempts[attempt] = AttemptState(request: id, deployment: deployment)
        inFlight[deployment.backend, default: 0] += 1
        requests[id]!.attemptsMade += 1
        if !requests[id]!.tried.contains(deployment) { requests[id]!.tried.append(deployment) }
        let request = requests[id]!
        return AttemptPlan(
            attempt: attempt,
            request: id,
            deployment: deployment,
            region: backends[deployment.backend]!.region,
            attemptNumber: request.attemptsMade,
            deadline: request.deadline,
            decision: RouteDecision(policy: kind, candidates: views, picked: deployment.backend, reason: reason)
        )
    }

    private mutating func release(_ backend: BackendID) {
        let count = inFlight[backend, default: 0]
        precondition(count > 0, "in-flight ledger of \(backend) would go negative")
        inFlight[backend] = count - 1
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

extension UpstreamFailure {
    /// The upstream's `retry-after`, if it sent one.
    public var retryAfter: Duration? {
        if case .status(_, let retryAfter, _) = self { return retryAfter }
        return nil
    }
}
