import IsobarModel
import IsobarRouting

/// Small fleets for the balancing tests: one gateway node `n1` in region `east`, the backends given, a
/// model `chat` served by every backend, and a model `only-NAME` per backend served by it alone (to put
/// load on one endpoint on purpose). Routers explain their decisions, so tests can read each candidate's
/// expected time to first token.
enum TestFleet {
    static let url = UpstreamURL(tls: false, host: "127.0.0.1", port: 9000)

    static func backend(
        _ name: BackendID,
        region: RegionID = "east",
        capacity: Capacity = Capacity(),
        scraped: Bool = false
    ) -> Backend {
        Backend(
            name: name,
            region: region,
            engine: .vllm,
            url: url,
            metricsURL: scraped ? UpstreamURL(tls: false, host: "127.0.0.1", port: 9000, basePath: "/metrics") : nil,
            models: ["m"],
            capacity: capacity
        )
    }

    static func topology(
        _ backends: [Backend],
        policy: PolicyKind = .isobar,
        balancing: BalancingSettings = BalancingSettings(),
        admission: AdmissionSettings = AdmissionSettings(),
        models extra: [ModelGroup] = []
    ) -> Topology {
        var regions: [RegionID] = ["east"]
        for backend in backends where !regions.contains(backend.region) { regions.append(backend.region) }
        let chat = ModelGroup(name: "chat", deployments: backends.map { Deployment(backend: $0.name, model: "m") })
        let singles = backends.map {
            ModelGroup(name: ModelName("only-\($0.name)"), deployments: [Deployment(backend: $0.name, model: "m")])
        }
        return Topology(
            mesh: Mesh(name: "test"),
            regions: regions.map { Region(name: $0) },
            nodes: [Node(name: "n1", region: "east", listen: HostPort(host: "127.0.0.1", port: 8080))],
            backends: backends,
            models: [chat] + singles + extra,
            routing: RoutingSettings(
                policy: policy,
                retries: RetrySettings(attempts: 0),
                balancing: balancing,
                admission: admission
            )
        )
    }

    static func router(
        _ backends: [Backend],
        policy: PolicyKind = .isobar,
        balancing: BalancingSettings = BalancingSettings(),
        admission: AdmissionSettings = AdmissionSettings(),
        regionRTT: [RegionID: Double] = [:]
    ) -> Router {
        let topology = topology(backends, policy: policy, balancing: balancing, admission: admission)
        var configuration = RoutingConfiguration(topology: topology, explainsDecisions: true)
        configuration.regionRTT = regionRTT
        return Router(topology: topology, node: "n1", configuration: configuration)
    }

    static func request(
        _ id: String,
        model: ModelName = "chat",
        prompt: Int = 1000,
        maxTokens: Int? = 100,
        prefix: [UInt64] = []
    ) -> RequestProfile {
        RequestProfile(
            id: RequestID(id),
            model: model,
            operation: .chatCompletions,
            maxTokens: maxTokens,
            promptTokens: prompt,
            prefixHashes: prefix
        )
    }

    /// The plan of a `.send`; `nil` for anything else.
    static func sent(_ action: RouteAction) -> AttemptPlan? {
        if case .send(let plan) = action { return plan }
        return nil
    }

    static func at(_ seconds: Double) -> Instant { Instant.zero + .milliseconds(seconds * 1000) }
}

extension Router {
    /// The node's view of `backend`, for assertions.
    func status(_ backend: BackendID, now: Instant = .zero) -> EndpointStatus {
        endpointStatus(now: now).first { $0.backend == backend }!
    }

    /// `[requests, awaiting first token, unprefilled prompt tokens, decode streams]` on `backend`.
    func ledger(_ backend: BackendID) -> [Int] {
        let s = status(backend)
        return [s.requests, s.awaitingFirstToken, s.prefillTokens, s.decodeStreams]
    }
}

extension AttemptPlan {
    /// The expected time to first token the router computed for `backend` in this decision.
    func expectedTTFT(_ backend: BackendID) -> Double? {
        decision.candidates.first { $0.backend == backend }?.expectedTTFT
    }

    func cachedTokens(_ backend: BackendID) -> Int? {
        decision.candidates.first { $0.backend == backend }?.cachedTokens
    }
}

/// `a` and `b` within a billionth (floating-point sums of exact terms).
func close(_ a: Double?, _ b: Double, tolerance: Double = 1e-9) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance
}
