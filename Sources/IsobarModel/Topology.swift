/// A validated topology: the regions, gateway nodes, backends and model groups of one mesh, with routing
/// settings. Built by IsobarConfig from a topology file; every reference in it resolves and every name in
/// it is unique, so code that holds a `Topology` never re-checks it.
public struct Topology: Sendable, Equatable {
    public var mesh: Mesh
    public var regions: [Region]
    public var nodes: [Node]
    public var backends: [Backend]
    public var models: [ModelGroup]
    public var routing: RoutingSettings
    public var catchAll: CatchAll
    public var limits: Limits
    /// Virtual keys and teams; `nil`: every request is served without a key.
    public var keys: KeySettings?
    /// The shared store of limits and budgets; `nil`: each node counts on its own.
    public var redis: RedisSettings?

    public init(
        mesh: Mesh,
        regions: [Region],
        nodes: [Node],
        backends: [Backend],
        models: [ModelGroup],
        routing: RoutingSettings = RoutingSettings(),
        catchAll: CatchAll = CatchAll(),
        limits: Limits = Limits(),
        keys: KeySettings? = nil,
        redis: RedisSettings? = nil
    ) {
        self.mesh = mesh
        self.regions = regions
        self.nodes = nodes
        self.backends = backends
        self.models = models
        self.routing = routing
        self.catchAll = catchAll
        self.limits = limits
        self.keys = keys
        self.redis = redis
    }

    /// The node named `id`: a named node, or a member of a pool (`POOL/INSTANCE`, see `Node.pool`).
    public func node(_ id: NodeID) -> Node? {
        if let named = nodes.first(where: { $0.name == id && !$0.pool }) { return named }
        guard let (pool, instance) = id.poolMember,
            let entry = nodes.first(where: { $0.pool && $0.name == pool })
        else { return nil }
        return entry.member(instance)
    }

    /// Every gossip address a node joins the mesh through: the named nodes' and `mesh.seeds`.
    public var seeds: [HostPort] { nodes.filter { !$0.pool }.compactMap(\.gossip) + mesh.seeds }

    public func backend(_ id: BackendID) -> Backend? { backends.first { $0.name == id } }
    public func model(_ name: ModelName) -> ModelGroup? { models.first { $0.name == name } }

    /// Whether `node` scrapes `backend`'s metrics itself: a node in a mesh scrapes its own region's engines
    /// and those of regions without a gossiping node; the others' load reaches it by gossip (their own
    /// networks may not even be reachable from it). A node outside any mesh scrapes every engine it can
    /// reach (not another region's `reachable_from: region` ones). `gossips` tells which nodes take part
    /// in the gossip.
    public func scrapes(_ backend: Backend, from node: Node, gossips: (Node) -> Bool) -> Bool {
        guard backend.region != node.region else { return true }
        guard backend.isReachable(from: node.region) else { return false }
        guard gossips(node) else { return true }
        return !nodes.contains { $0.region == backend.region && gossips($0) }
    }
}

/// Mesh-wide settings.
public struct Mesh: Sendable, Equatable {
    /// The mesh name; also the associated data of gossip encryption.
    public var name: String
    /// The environment variable holding the base64 gossip key, if any.
    public var gossipKeyEnv: String?
    /// Addresses a node also joins the mesh through, besides the named nodes' gossip addresses: what pool
    /// members find each other by. A DNS name stands for every address it resolves to (a Kubernetes
    /// headless Service), resolved again from time to time.
    public var seeds: [HostPort]

    public init(name: String, gossipKeyEnv: String? = nil, seeds: [HostPort] = []) {
        self.name = name
        self.gossipKeyEnv = gossipKeyEnv
        self.seeds = seeds
    }
}

/// A region of the mesh.
public struct Region: Sendable, Equatable {
    public var name: RegionID
    public init(name: RegionID) { self.name = name }
}

/// A gateway node: one `isobar serve` process; or, with `pool`, any number of them.
public struct Node: Sendable, Equatable {
    public var name: NodeID
    public var region: RegionID
    /// Where the node serves HTTP (OpenAI API, health, metrics). Port 0 picks a free port.
    public var listen: HostPort
    /// Where the node gossips (UDP), if it joins a mesh.
    public var gossip: HostPort?
    /// A pool of interchangeable nodes (a Kubernetes Deployment, an autoscaling group): every process
    /// started as this entry is a member named `NAME/INSTANCE`, listening and gossiping on the entry's
    /// ports, and the mesh learns its address by gossip. A pool always gossips.
    public var pool: Bool

    public init(name: NodeID, region: RegionID, listen: HostPort, gossip: HostPort? = nil, pool: Bool = false) {
        self.name = name
        self.region = region
        self.listen = listen
        self.gossip = gossip
        self.pool = pool
    }

    /// The member `instance` of this pool, as the other nodes know it before gossip tells its address.
    public func member(_ instance: String) -> Node {
        Node(name: NodeID("\(name.rawValue)/\(instance)"), region: region, listen: listen, gossip: gossip, pool: true)
    }

    /// Whether `instance` may name a pool member: what a node name may be (`[A-Za-z0-9._-]+`), at most 63
    /// characters (a host name label, as Kubernetes pod names are).
    public static func isValidInstance(_ instance: String) -> Bool {
        !instance.isEmpty && instance.count <= 63
            && instance.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "._-".contains($0) }
    }
}

extension NodeID {
    /// The pool and instance of a pool member's name (`POOL/INSTANCE`); nil for a named node.
    public var poolMember: (pool: NodeID, instance: String)? {
        guard let slash = rawValue.firstIndex(of: "/") else { return nil }
        return (NodeID(String(rawValue[..<slash])), String(rawValue[rawValue.index(after: slash)...]))
    }

    /// The topology entry the node runs as: its pool for a pool member, else itself. Metrics label peers by
    /// it, so that pods coming and going do not grow them.
    public var entry: NodeID { poolMember?.pool ?? self }
}

/// Which gateway nodes can open connections to a backend (`reachable_from`).
public enum Reach: String, Sendable, Equatable, CaseIterable {
    /// Every node (a public provider, or a network every region reaches).
    case anywhere
    /// Only the nodes of the backend's own region (a private network): other regions' nodes forward
    /// their requests for it to a node of that region.
    case region
}

/// The kind of server behind a backend.
public enum EngineKind: String, Sendable, Equatable, CaseIterable {
    case vllm, sglang, tgi, llamacpp, trtllm, openai, anthropic
    case openAICompatible = "openai-compatible"
    case emulated

    /// True for engines that run on the operator's own hardware and expose load metrics.
    public var isSelfHosted: Bool {
        switch self {
        case .vllm, .sglang, .tgi, .llamacpp, .trtllm, .emulated: true
        case .openai, .anthropic, .openAICompatible: false
        }
    }
}

/// The wire protocol a backend speaks.
public enum WireAPI: String, Sendable, Equatable, CaseIterable {
    /// OpenAI's `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`.
    case openai
    /// Anthropic's `/v1/messages`.
    case anthropic
}

/// One upstream server: a provider account, or one replica of a self-hosted engine.
public struct Backend: Sendable, Equatable {
    public var name: BackendID
    public var region: RegionID
    public var engine: EngineKind
    /// The server's root; request paths (`/v1/chat/completions`) are appended to its path.
    public var url: UpstreamURL
    /// Where load metrics are scraped (self-hosted engines only).
    public var metricsURL: UpstreamURL?
    /// The API key sent upstream, read from the environment or a file at load time.
    public var apiKey: Secret?
    /// The upstream model names this backend serves.
    public var models: [String]
    public var capacity: Capacity
    public var price: Price
    /// Settings of the emulated engine `isobar up` starts for this backend (`engine: emulated` only).
    public var emulate: EmulateSettings?
    /// Timeouts of calls to this backend, over `routing.timeouts` (a model's own override these); its
    /// `totalMs` caps one attempt here.
    public var timeouts: TimeoutOverrides
    /// Which nodes can reach it.
    public var reach: Reach

    public init(
        name: BackendID,
        region: RegionID,
        engine: EngineKind,
        url: UpstreamURL,
        metricsURL: UpstreamURL? = nil,
        apiKey: Secret? = nil,
        models: [String],
        capacity: Capacity = Capacity(),
        price: Price = Price(),
        emulate: EmulateSettings? = nil,
        timeouts: TimeoutOverrides = TimeoutOverrides(),
        reach: Reach = .anywhere
    ) {
        self.name = name
        self.region = region
        self.engine = engine
        self.url = url
        self.metricsURL = metricsURL
        self.apiKey = apiKey
        self.models = models
        self.capacity = capacity
        self.price = price
        self.emulate = emulate
        self.timeouts = timeouts
        self.reach = reach
    }

    /// Whether a node of `region` can open connections to it.
    public func isReachable(from region: RegionID) -> Bool { reach == .anywhere || region == self.region }

    /// The protocol the gateway speaks to this backend.
    public var api: WireAPI {
        switch engine {
        case .anthropic: .anthropic
        case .emulated: emulate?.api ?? .openai
        default: .openai
        }
    }
}

/// What a backend can do, as hinted by the operator. Routing refines these from observation.
public struct Capacity: Sendable, Equatable {
    public var prefillTokensPerSecond: Double?
    public var decodeTokensPerSecond: Double?
    /// Requests the backend serves at once.
    public var maxConcurrency: Int?
    /// The model's context window in tokens.
    public var contextWindow: Int?
    /// Tokens the backend's KV cache holds (per replica): sizes the router's guess of what it has cached
    /// until a scrape reports the engine's own geometry.
    public var kvCacheTokens: Int?

    public init(
        prefillTokensPerSecond: Double? = nil,
        decodeTokensPerSecond: Double? = nil,
        maxConcurrency: Int? = nil,
        contextWindow: Int? = nil,
        kvCacheTokens: Int? = nil
    ) {
        self.prefillTokensPerSecond = prefillTokensPerSecond
        self.decodeTokensPerSecond = decodeTokensPerSecond
        self.maxConcurrency = maxConcurrency
        self.contextWindow = contextWindow
        self.kvCacheTokens = kvCacheTokens
    }
}

/// What a backend costs, in US dollars: per million tokens (providers) and per hour of running
/// (self-hosted replicas).
public struct Price: Sendable, Equatable {
    public var inputPerMTok: Double
    public var outputPerMTok: Double
    /// Cost of one replica-hour.
    public var perHour: Double

    public init(inputPerMTok: Double = 0, outputPerMTok: Double = 0, perHour: Double = 0) {
        self.inputPerMTok = inputPerMTok
        self.outputPerMTok = outputPerMTok
        self.perHour = perHour
    }
}

/// How an emulated engine behaves.
public struct EmulateSettings: Sendable, Equatable {
    /// The engine profile: a name in `EngineProfile.presets` (or, in a scenario, in its `profiles`).
    public var profile: String
    /// The protocol the emulated engine speaks.
    public var api: WireAPI
    /// If set, every step takes 1/N seconds instead of the profile's step time: each sequence gets N
    /// tokens per second whatever the batch.
    public var tokensPerSecond: Double?
    /// Sequences batched at once (`max_num_seqs`); more wait in the queue. `nil` keeps the profile's.
    public var maxConcurrency: Int?
    /// Answer every request with this failure instead of a completion (for tests and drills).
    public var fault: EmulatedFault?

    public init(
        profile: String,
        api: WireAPI = .openai,
        tokensPerSecond: Double? = nil,
        maxConcurrency: Int? = nil,
        fault: EmulatedFault? = nil
    ) {
        self.profile = profile
        self.api = api
        self.tokensPerSecond = tokensPerSecond
        self.maxConcurrency = maxConcurrency
        self.fault = fault
    }
}

/// A failure an emulated engine answers with.
public struct EmulatedFault: Sendable, Equatable {
    /// The HTTP status returned (400–599).
    public var status: Int
    /// The `retry-after` header in seconds, if any.
    public var retryAfterSeconds: Int?

    public init(status: Int, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// A model as clients name it, and where it can be served.
public struct ModelGroup: Sendable, Equatable {
    public var name: ModelName
    public var deployments: [Deployment]
    /// Models tried, in order, after every deployment of this one failed.
    public var fallbacks: [ModelName]
    /// The balancing policy for this model; `nil` uses `routing.policy`.
    public var policy: PolicyKind?
    /// Models tried, in order, when a deployment answers that the prompt exceeds its context window and
    /// no deployment of this model with a larger `context_window` is left.
    public var contextFallbacks: [ModelName]
    /// Timeouts of this model's calls, over the backend's and `routing.timeouts`; its `totalMs` is the
    /// request's whole budget.
    public var timeouts: TimeoutOverrides
    /// The exact response cache of this model; `nil`: off.
    public var cache: ResponseCacheSettings?

    public init(
        name: ModelName,
        deployments: [Deployment],
        fallbacks: [ModelName] = [],
        policy: PolicyKind? = nil,
        contextFallbacks: [ModelName] = [],
        timeouts: TimeoutOverrides = TimeoutOverrides(),
        cache: ResponseCacheSettings? = nil
    ) {
        self.name = name
        self.deployments = deployments
        self.fallbacks = fallbacks
        self.policy = policy
        self.contextFallbacks = contextFallbacks
        self.timeouts = timeouts
        self.cache = cache
    }
}

/// A model's exact response cache (`models[].cache`): a request identical to an earlier one of the same
/// key (same operation and the same JSON, whatever its key order and spacing) is answered from it.
public struct ResponseCacheSettings: Sendable, Equatable {
    /// How long an answer is kept, in seconds.
    public var ttlSeconds: Double
    /// Cache requests sampled with `temperature` above 0 too (absent, OpenAI's default is 1): their
    /// answers are meant to vary, so by default only `temperature: 0` requests are cached.
    public var force: Bool
    /// Where answers are kept: this node's memory, or the `redis:` store every node shares (and this
    /// node's memory in front of it).
    public var store: Store

    public enum Store: String, Sendable, Equatable, CaseIterable {
        case memory
        case redis
    }

    public init(ttlSeconds: Double = 300, force: Bool = false, store: Store = .memory) {
        self.ttlSeconds = ttlSeconds
        self.force = force
        self.store = store
    }
}

/// A model on a backend: requests routed here have their `model` rewritten to `model`.
public struct Deployment: Sendable, Equatable, Hashable {
    public var backend: BackendID
    /// The model name the backend knows.
    public var model: String

    public init(backend: BackendID, model: String) {
        self.backend = backend
        self.model = model
    }
}

/// The balancing policies.
public enum PolicyKind: String, Sendable, Equatable, CaseIterable {
    case isobar
    case roundRobin = "round-robin"
    case random
    case leastRequest = "least-request"
    case powerOfTwo = "power-of-two"
    case leastTokens = "least-tokens"
    case peakEWMA = "peak-ewma"
}

/// Routing settings of the whole mesh.
public struct RoutingSettings: Sendable, Equatable {
    public var policy: PolicyKind
    /// When traffic leaves the node's region and when it comes back, and how long sessions stay put.
    public var proximity: ProximitySettings
    public var retries: RetrySettings
    public var timeouts: TimeoutSettings
    public var circuitBreaker: CircuitBreakerSettings
    public var balancing: BalancingSettings
    public var admission: AdmissionSettings
    /// Answer every routed request with an `x-isobar-route` header explaining the decision.
    public var debugHeader: Bool
    /// A backend without metrics (a cloud provider) that had no traffic this long is probed with
    /// `GET /v1/models`, in seconds; 0: never.
    public var idleProbeSeconds: Double

    public init(
        policy: PolicyKind = .isobar,
        proximity: ProximitySettings = ProximitySettings(),
        retries: RetrySettings = RetrySettings(),
        timeouts: TimeoutSettings = TimeoutSettings(),
        circuitBreaker: CircuitBreakerSettings = CircuitBreakerSettings(),
        balancing: BalancingSettings = BalancingSettings(),
        admission: AdmissionSettings = AdmissionSettings(),
        debugHeader: Bool = false,
        idleProbeSeconds: Double = 30
    ) {
        self.policy = policy
        self.proximity = proximity
        self.retries = retries
        self.timeouts = timeouts
        self.circuitBreaker = circuitBreaker
        self.balancing = balancing
        self.admission = admission
        self.debugHeader = debugHeader
        self.idleProbeSeconds = idleProbeSeconds
    }
}

/// Routing between regions (`routing.proximity`).
public struct ProximitySettings: Sendable, Equatable {
    /// How much sooner, in milliseconds, a remote endpoint must be expected to answer (its RTT included)
    /// than the best one of the node's region before traffic leaves the region.
    public var hysteresisMs: Double
    /// Whether the isobar policy sends traffic to other regions while the node's region can still serve
    /// (by load, with the hysteresis); off, a region serves its own traffic while one of its deployments
    /// is usable (data residency, egress cost).
    public var spillOver: Bool
    /// A session (the request's `user` field or `x-isobar-session` header) stays in the region that served
    /// it while that region has a usable deployment, until it has been idle this long, in seconds.
    public var sessionTTLSeconds: Double

    public init(hysteresisMs: Double = 50, spillOver: Bool = true, sessionTTLSeconds: Double = 600) {
        self.hysteresisMs = hysteresisMs
        self.spillOver = spillOver
        self.sessionTTLSeconds = sessionTTLSeconds
    }
}

/// How load-aware policies read their signals.
public struct BalancingSettings: Sendable, Equatable {
    /// How often engine metrics are scraped, in seconds.
    public var scrapeIntervalSeconds: Double
    /// A scraped sample older than this is stale: its queue is still counted (never read as idle), and
    /// the endpoint is charged `stalePenaltySeconds`, so fresh endpoints are preferred.
    public var staleAfterSeconds: Double
    public var staleAfter: Duration { .milliseconds(staleAfterSeconds * 1000) }
    public var stalePenaltySeconds: Double
    /// The `isobar` policy keeps a request on the endpoint most likely to hold its prompt prefix while
    /// that costs at most this much more expected time to first token than the best endpoint, in seconds.
    public var affinityBudgetSeconds: Double
    /// Expected output tokens of a request are its `max_tokens` capped at this quantile of the model's
    /// observed output lengths.
    public var outputQuantile: Double
    /// Weight of the convex KV-pressure term u²/(1−u), in seconds.
    public var kvPressureSeconds: Double

    public init(
        scrapeIntervalSeconds: Double = 0.25,
        staleAfterSeconds: Double = 2,
        stalePenaltySeconds: Double = 0.05,
        affinityBudgetSeconds: Double = 0.2,
        outputQuantile: Double = 0.75,
        kvPressureSeconds: Double = 0.05
    ) {
        self.scrapeIntervalSeconds = scrapeIntervalSeconds
        self.staleAfterSeconds = staleAfterSeconds
        self.stalePenaltySeconds = stalePenaltySeconds
        self.affinityBudgetSeconds = affinityBudgetSeconds
        self.outputQuantile = outputQuantile
        self.kvPressureSeconds = kvPressureSeconds
    }
}

/// Admission control: what a node does when its endpoints are full, instead of queueing forever.
public struct AdmissionSettings: Sendable, Equatable {
    /// Requests an endpoint may have waiting for their first token (this node's, plus others' scraped
    /// queue); a full endpoint is not picked. `nil`: no cap.
    public var maxQueuePerEndpoint: Int?
    /// Refuse a request (503 with `retry-after`) when even the best endpoint's expected time to first
    /// token exceeds this, in seconds. `nil`: never.
    public var maxPredictedTTFTSeconds: Double?
    /// Requests held at the node while every endpoint is full, picked as soon as one frees.
    public var waitQueueRequests: Int
    /// Longest a request waits in that queue before it is refused, in seconds.
    public var maxWaitSeconds: Double

    public init(
        maxQueuePerEndpoint: Int? = nil,
        maxPredictedTTFTSeconds: Double? = nil,
        waitQueueRequests: Int = 1000,
        maxWaitSeconds: Double = 10
    ) {
        self.maxQueuePerEndpoint = maxQueuePerEndpoint
        self.maxPredictedTTFTSeconds = maxPredictedTTFTSeconds
        self.waitQueueRequests = waitQueueRequests
        self.maxWaitSeconds = maxWaitSeconds
    }
}

/// Retry settings: attempts beyond the first, with exponential backoff and full jitter.
public struct RetrySettings: Sendable, Equatable {
    public var attempts: Int
    public var backoffBaseMs: Double
    public var backoffMaxMs: Double

    public init(attempts: Int = 2, backoffBaseMs: Double = 250, backoffMaxMs: Double = 8000) {
        self.attempts = attempts
        self.backoffBaseMs = backoffBaseMs
        self.backoffMaxMs = backoffMaxMs
    }
}

/// Timeouts of one upstream call, in milliseconds.
public struct TimeoutSettings: Sendable, Equatable {
    /// Connecting (TCP and TLS) to the backend.
    public var connectMs: Double
    /// From sending a streaming request to its first content token; a silent stream is abandoned and the
    /// next candidate tried. (A non-streaming answer arrives whole, after the whole generation, so it is
    /// bounded by `totalMs` instead.)
    public var firstTokenMs: Double
    /// Longest gap between two chunks of a committed stream or a response body.
    public var idleMs: Double
    /// The whole call, every attempt included.
    public var totalMs: Double

    public init(
        connectMs: Double = 2000,
        firstTokenMs: Double = 15000,
        idleMs: Double = 30000,
        totalMs: Double = 600_000
    ) {
        self.connectMs = connectMs
        self.firstTokenMs = firstTokenMs
        self.idleMs = idleMs
        self.totalMs = totalMs
    }
}

/// Timeouts set for one backend or one model, in milliseconds; `nil` keeps the wider setting.
public struct TimeoutOverrides: Sendable, Equatable {
    public var connectMs: Double?
    public var firstTokenMs: Double?
    public var idleMs: Double?
    public var totalMs: Double?

    public init(connectMs: Double? = nil, firstTokenMs: Double? = nil, idleMs: Double? = nil, totalMs: Double? = nil) {
        self.connectMs = connectMs
        self.firstTokenMs = firstTokenMs
        self.idleMs = idleMs
        self.totalMs = totalMs
    }
}

extension TimeoutSettings {
    /// A request's whole budget for `model`, in milliseconds: its own `total_ms`, else this one.
    public func budgetMs(for model: ModelGroup) -> Double { model.timeouts.totalMs ?? totalMs }

    /// The timeouts of an attempt of `model` on a backend with `backend` timeouts: these, overridden by
    /// the backend's, overridden by the model's; `totalMs` is the request's budget (a backend's own total
    /// caps one attempt instead: `AttemptPlan.attemptLimit`).
    public func attempt(backend: TimeoutOverrides, model: ModelGroup) -> TimeoutSettings {
        var timeouts = overridden(by: backend).overridden(by: model.timeouts)
        timeouts.totalMs = budgetMs(for: model)
        return timeouts
    }

    /// These settings with the ones `overrides` sets replaced.
    public func overridden(by overrides: TimeoutOverrides) -> TimeoutSettings {
        TimeoutSettings(
            connectMs: overrides.connectMs ?? connectMs,
            firstTokenMs: overrides.firstTokenMs ?? firstTokenMs,
            idleMs: overrides.idleMs ?? idleMs,
            totalMs: overrides.totalMs ?? totalMs
        )
    }
}

/// Circuit breaker settings per backend.
public struct CircuitBreakerSettings: Sendable, Equatable {
    public var consecutiveFailures: Int
    public var cooldownSeconds: Double
    /// Attempts whose error rate is watched (2–64).
    public var window: Int
    /// The share of `window` that, failed, opens the breaker.
    public var errorRate: Double

    public init(consecutiveFailures: Int = 5, cooldownSeconds: Double = 30, window: Int = 20, errorRate: Double = 0.5) {
        self.consecutiveFailures = consecutiveFailures
        self.cooldownSeconds = cooldownSeconds
        self.window = window
        self.errorRate = errorRate
    }

    public var cooldown: Duration { .milliseconds(cooldownSeconds * 1000) }
}

/// What a node answers when every candidate is exhausted.
public struct CatchAll: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// 503 with `retry-after` and `x-should-retry: false`.
        case busy
        /// `content` as a valid completion, marked `system_fingerprint: "isobar-catch-all"`.
        case `static`
        /// The last good answer to an identical request, else busy.
        case cache
    }

    public var mode: Mode
    /// The `retry-after` sent with a busy answer, in seconds.
    public var retryAfterSeconds: Int
    /// The assistant's answer in `static` mode.
    public var content: String
    /// Bytes of answers kept for `cache` mode (least recently used first out).
    public var cacheMaxBytes: Int

    public static let defaultContent =
        "The service is busy right now and cannot answer. Please try again in a minute."

    public init(
        mode: Mode = .busy,
        retryAfterSeconds: Int = 1,
        content: String = CatchAll.defaultContent,
        cacheMaxBytes: Int = 64 << 20
    ) {
        self.mode = mode
        self.retryAfterSeconds = retryAfterSeconds
        self.content = content
        self.cacheMaxBytes = cacheMaxBytes
    }
}

/// Limits on what a node accepts and keeps.
public struct Limits: Sendable, Equatable {
    /// Largest request body accepted; larger ones get 413.
    public var maxRequestBodyBytes: Int
    /// Memory for the response caches of every model (least recently used out).
    public var responseCacheMaxBytes: Int

    public init(maxRequestBodyBytes: Int = 8 * 1024 * 1024, responseCacheMaxBytes: Int = 64 << 20) {
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.responseCacheMaxBytes = responseCacheMaxBytes
    }
}

/// A secret value (an API key). Its description never shows the value.
public struct Secret: Sendable, Equatable, CustomStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<secret>" }
}
