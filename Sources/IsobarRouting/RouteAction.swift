import IsobarModel

/// One attempt the shell must carry out: send the request to `deployment` on `backend`.
public struct AttemptPlan: Sendable, Equatable {
    public var attempt: AttemptID
    public var request: RequestID
    public var deployment: Deployment
    /// The backend's region.
    public var region: RegionID
    /// 1 for the first attempt of a request.
    public var attemptNumber: Int
    /// When the whole request must be over (arrival + the model's `timeouts.total_ms`).
    public var deadline: Instant
    /// Timeouts of this attempt: `routing.timeouts`, over them the backend's, over those the model's;
    /// `totalMs` is the request's budget.
    public var timeouts: TimeoutSettings
    /// The backend's own `timeouts.total_ms`: the longest this one attempt may take.
    public var attemptLimit: Duration?
    /// The node of the backend's region to forward the request to, when only that region reaches the
    /// backend (`reachable_from: region`); nil to call the backend directly. The node routes it among
    /// its own region's deployments and never forwards it again.
    public var via: NodeID?
    /// What the policy saw and why it picked this deployment (for the decision trace).
    public var decision: RouteDecision
}

/// One candidate of a decision as the trace line and the debug header show it.
public struct CandidateView: Sendable, Equatable {
    public var backend: BackendID
    public var inFlight: Int
    /// Expected time to first token there, in seconds.
    public var expectedTTFT: Double
    /// Prompt tokens it probably holds in its prefix cache.
    public var cachedTokens: Int
}

/// What a policy saw and picked, for the one trace line per routing decision.
public struct RouteDecision: Sendable, Equatable {
    public var policy: PolicyKind
    /// Every candidate with its load, when the router explains decisions; empty otherwise.
    public var candidates: [CandidateView]
    public var picked: BackendID
    /// Why this attempt exists: `initial`, `released` (held until an endpoint freed), or the failure
    /// label of the attempt before it.
    public var reason: String
    /// Why the policy picked this endpoint.
    public var pick: PickReason
}

/// Why a request is answered without (further) upstream attempts.
public enum RejectReason: Sendable, Equatable {
    /// No model group has this name.
    case unknownModel(ModelName, known: [ModelName])
    /// The model exists but none of its deployments can serve this operation (e.g. embeddings on an
    /// Anthropic backend).
    case unsupportedOperation(ModelName, Operation)
    /// The last attempt failed and no retry is left or allowed. `retriesSpent` tells the client the
    /// gateway already retried (`x-should-retry: false`).
    case upstream(UpstreamFailure, backend: BackendID, retriesSpent: Bool)
    /// Every endpoint is full (or would answer too late): admission control refuses the request.
    case overloaded
}

/// What a node answers when it has no candidate left: every deployment of the model and of its
/// fallbacks failed, or none can be sent a request now (circuit breakers open, backends paused).
public struct CatchAllPlan: Sendable, Equatable {
    public var mode: CatchAll.Mode
    /// When trying again may succeed.
    public var retryAfter: Duration
    /// Why nothing could serve, for the busy answer's message and the log.
    public var reason: String
    /// The last failure and its backend (for a backend that asked for a pause, a 429 standing for it):
    /// a busy answer keeps the status of a provider's own 4xx refusal (401, 403, 404, 429).
    public var failure: UpstreamFailure?
    public var backend: BackendID?
}

/// What the router tells the shell to do next for a request.
public enum RouteAction: Sendable, Equatable {
    /// Send an attempt now.
    case send(AttemptPlan)
    /// Send an attempt after a backoff.
    case retry(AttemptPlan, after: Duration)
    /// Answer the client with an error.
    case reject(RejectReason, retryAfter: Duration?)
    /// Answer from the catch-all.
    case catchAll(CatchAllPlan)
    /// Every endpoint is full: hold the request until `releaseHeld` plans it or `until` passes.
    case hold(until: Instant)
}

extension RouteAction {
    /// True for `.hold`.
    public var isHold: Bool {
        if case .hold = self { return true }
        return false
    }
}
