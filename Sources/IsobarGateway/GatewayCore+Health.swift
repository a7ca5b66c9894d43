import IsobarModel
import IsobarRouting
import IsobarWire

/// The per-region health endpoints for SREs (DESIGN §4): `GET /v1/regions` and
/// `GET /v1/regions/{region}/health`, as this node sees them (other nodes' views come with gossip).
extension GatewayCore {
    /// `GET /v1/regions`: every region with its nodes and backends.
    func regionsBody() -> [UInt8] {
        let regions: [JSON] = topology.regions.map { region in
            [
                "name": .string(region.name.rawValue),
                "nodes": .array(topology.nodes.filter { $0.region == region.name }.map { .string($0.name.rawValue) }),
                "backends": .array(
                    topology.backends.filter { $0.region == region.name }.map { .string($0.name.rawValue) }
                ),
            ]
        }
        return JSON.object(["object": "list", "data": .array(regions)]).bytes
    }

    /// `GET /v1/regions/{region}/health`, or nil for an unknown region. `status` is `ok` when every backend
    /// of the region may be picked, `degraded` when some may, `down` when none may, `empty` without any.
    func regionHealthBody(_ region: RegionID) -> [UInt8]? {
        guard topology.regions.contains(where: { $0.name == region }) else { return nil }
        let now = MonotonicClock.now()
        let endpoints = withRouter { router, _ in router.endpointStatus(now: now) }
            .filter { backends[$0.backend]?.region == region }
        let usable = endpoints.count { $0.usable }
        let status =
            endpoints.isEmpty ? "empty" : usable == endpoints.count ? "ok" : usable == 0 ? "down" : "degraded"
        let nodes: [JSON] = topology.nodes.filter { $0.region == region }.map {
            ["name": .string($0.name.rawValue), "self": .bool($0.name == node.name)]
        }
        let body: JSON = [
            "region": .string(region.rawValue),
            "status": .string(status),
            "observed_by": .string(node.name.rawValue),
            "nodes": .array(nodes),
            "backends": .array(endpoints.map { Self.health(of: $0, engine: backends[$0.backend]?.engine, now: now) }),
        ]
        return body.bytes
    }

    private static func health(of endpoint: EndpointStatus, engine: EngineKind?, now: Instant) -> JSON {
        var out: JSONObject = [
            "name": .string(endpoint.backend.rawValue),
            "engine": .string(engine?.rawValue ?? "unknown"),
            "state": .string(state(endpoint)),
            "usable": .bool(endpoint.usable),
            "in_flight": .int(endpoint.requests),
            "awaiting_first_token": .int(endpoint.awaitingFirstToken),
            "expected_ttft_ms": .double((endpoint.lastScore * 1000).rounded()),
        ]
        if let sample = endpoint.sample {
            var scraped: JSONObject = [
                "age_s": .double((sample.age(at: now).seconds * 1000).rounded() / 1000),
                "stale": .bool(endpoint.stale),
            ]
            if let waiting = sample.waiting { scraped["waiting"] = .int(waiting) }
            if let running = sample.running { scraped["running"] = .int(running) }
            if let usage = sample.kvUsage { scraped["kv_usage"] = .double(usage) }
            out["scraped"] = .object(scraped)
        }
        return .object(out)
    }

    /// `open`, `half_open`, `paused` (asked for a pause with `retry-after`), `unreachable` (passed over after
    /// a connect failure, reset or timeout, or a failed probe) or `closed`.
    private static func state(_ endpoint: EndpointStatus) -> String {
        switch endpoint.breaker {
        case .open: return "open"
        case .halfOpen: return "half_open"
        case .closed:
            if endpoint.paused { return "paused" }
            return endpoint.usable ? "closed" : "unreachable"
        }
    }
}
