import IsobarGossip
import IsobarModel
import IsobarRouting
import IsobarWire

/// The SRE views of a node (DESIGN §4): `GET /v1/mesh`, `GET /v1/regions` and
/// `GET /v1/regions/{region}/health`, as this node sees the mesh. `/status` and `isobar status` render
/// the same bodies as tables (`StatusTables`).
extension GatewayCore {
    /// `GET /v1/mesh`: this node, every member with its state and incarnation, the regions with their
    /// estimated RTT, the node's coordinate and its gossip counters.
    func meshBody(_ mesh: MeshSnapshot?) -> JSON {
        var body: JSONObject = [
            "mesh": .string(topology.mesh.name),
            "node": .string(node.name.rawValue),
            "region": .string(node.region.rawValue),
            "gossip": .bool(mesh != nil),
        ]
        var me = memberRow(name: node.name, region: node.region, status: "alive", isSelf: true)
        guard let mesh else {
            body["members"] = .array([.object(me)])
            return .object(body)
        }
        body["incarnation"] = .int(Int(mesh.incarnation))
        body["encrypted"] = .bool(mesh.encrypted)
        body["health_multiplier"] = .int(mesh.healthMultiplier)
        me["incarnation"] = .int(Int(mesh.incarnation))
        var members: [JSON] = [.object(me)]
        for member in mesh.members {
            var row = memberRow(name: member.node, region: member.region, status: "\(member.status)", isSelf: false)
            row["address"] = .string("\(member.address)")
            row["incarnation"] = .int(Int(member.incarnation))
            if let rtt = mesh.measuredRTT[member.node] { row["rtt_ms"] = .double(Self.milliseconds(rtt)) }
            members.append(.object(row))
        }
        body["members"] = .array(members)
        body["regions"] = .array(
            topology.regions.map { region in
                var row: JSONObject = ["name": .string(region.name.rawValue)]
                row["rtt_ms"] = rttMilliseconds(to: region.name, mesh)
                row["nodes_alive"] = .int(nodeRows(region.name, mesh).count { $0["status"]?.stringValue == "alive" })
                return .object(row)
            }
        )
        let c = mesh.coordinate
        body["coordinate"] = [
            "vector": .array(c.vector.map { .double($0) }), "height": .double(c.height), "error": .double(c.error),
        ]
        let counters = mesh.counters
        var dropped = JSONObject()
        for code in GossipError.Code.allCases { dropped[code.rawValue] = .int(mesh.dropped[code] ?? 0) }
        body["counters"] = [
            "packets_sent": .int(counters.packetsSent), "bytes_sent": .int(counters.bytesSent),
            "packets_received": .int(counters.packetsReceived), "probes": .int(counters.probes),
            "indirect_probes": .int(counters.indirectProbes), "suspicions": .int(counters.suspicionsRaised),
            "deaths": .int(counters.deathsDeclared), "refutations": .int(counters.refutations),
            "digests_published": .int(counters.digestsPublished), "syncs_failed": .int(mesh.syncsFailed),
            "dropped": .object(dropped),
        ]
        return .object(body)
    }

    private func memberRow(name: NodeID, region: RegionID, status: String, isSelf: Bool) -> JSONObject {
        var row: JSONObject = [
            "name": .string(name.rawValue), "region": .string(region.rawValue), "status": .string(status),
            "self": .bool(isSelf),
        ]
        if let (pool, _) = name.poolMember { row["pool"] = .string(pool.rawValue) }
        return row
    }

    /// `GET /v1/regions`: every region with its status, nodes alive and backends usable.
    func regionsBody(_ mesh: MeshSnapshot?) -> JSON {
        let now = MonotonicClock.now()
        let endpoints = withRouter { router, _ in router.endpointStatus(now: now) }
        let regions: [JSON] = topology.regions.map { region in
            let nodes = nodeRows(region.name, mesh)
            let mine = endpoints.filter { backends[$0.backend]?.region == region.name }
            var row: JSONObject = [
                "name": .string(region.name.rawValue),
                "status": .string(Self.status(mine)),
                "nodes": .int(nodes.count),
                "nodes_alive": .int(nodes.count { $0["status"]?.stringValue == "alive" }),
                "backends": .int(mine.count),
                "backends_usable": .int(mine.count { $0.usable }),
            ]
            row["rtt_ms"] = rttMilliseconds(to: region.name, mesh)
            return .object(row)
        }
        return ["object": "list", "observed_by": .string(node.name.rawValue), "data": .array(regions)]
    }

    /// `GET /v1/regions/{region}/health`, or nil for an unknown region.
    func regionHealthBody(_ region: RegionID, _ mesh: MeshSnapshot?) -> JSON? {
        guard topology.regions.contains(where: { $0.name == region }) else { return nil }
        let now = MonotonicClock.now()
        let (endpoints, reports) = withRouter { router, _ in
            let endpoints = router.endpointStatus(now: now).filter { backends[$0.backend]?.region == region }
            return (endpoints, endpoints.map { router.peerHealth(of: $0.backend) })
        }
        return [
            "region": .string(region.rawValue),
            "status": .string(Self.status(endpoints)),
            "observed_by": .string(node.name.rawValue),
            "nodes": .array(nodeRows(region, mesh).map { .object($0) }),
            "backends": .array(
                zip(endpoints, reports).map { endpoint, reports in
                    Self.health(of: endpoint, engine: backends[endpoint.backend]?.engine, reports: reports, now: now)
                }
            ),
        ]
    }

    /// The estimated RTT to `region` in milliseconds: 0 to the node's own, nil while gossip has no estimate.
    private func rttMilliseconds(to region: RegionID, _ mesh: MeshSnapshot?) -> JSON? {
        if region == node.region { return .int(0) }
        return mesh?.regionRTT[region].map { .double(Self.milliseconds($0)) }
    }

    /// `ok` when every backend may be picked, `degraded` when some may, `down` when none may, `empty`
    /// without any.
    private static func status(_ endpoints: [EndpointStatus]) -> String {
        let usable = endpoints.count { $0.usable }
        return endpoints.isEmpty ? "empty" : usable == endpoints.count ? "ok" : usable == 0 ? "down" : "degraded"
    }

    /// The nodes of `region` with their state in this node's view: `alive`, `suspect`, `dead`, `left`, or
    /// `unknown` (never heard from; also every other node when this one does not gossip). A pool's members
    /// are those gossip knows of (with `pool` naming the pool).
    private func nodeRows(_ region: RegionID, _ mesh: MeshSnapshot?) -> [JSONObject] {
        var rows: [JSONObject] = []
        func row(_ name: NodeID) {
            var row = memberRow(name: name, region: region, status: "unknown", isSelf: name == node.name)
            if name == node.name {
                row["status"] = "alive"
                if let mesh { row["incarnation"] = .int(Int(mesh.incarnation)) }
            } else if let member = mesh?.members.first(where: { $0.node == name }) {
                row["status"] = .string("\(member.status)")
                row["incarnation"] = .int(Int(member.incarnation))
                if let rtt = mesh?.measuredRTT[name] { row["rtt_ms"] = .double(Self.milliseconds(rtt)) }
            }
            rows.append(row)
        }
        for n in topology.nodes where n.region == region {
            guard n.pool else {
                row(n.name)
                continue
            }
            var members = (mesh?.members ?? []).map(\.node).filter { $0.poolMember?.pool == n.name }
            if node.name.poolMember?.pool == n.name { members.append(node.name) }
            members.sorted().forEach(row)
        }
        return rows
    }

    private static func health(
        of endpoint: EndpointStatus,
        engine: EngineKind?,
        reports: [(node: NodeID, entry: HealthDigest.Entry)],
        now: Instant
    ) -> JSON {
        var out: JSONObject = [
            "name": .string(endpoint.backend.rawValue),
            "engine": .string(engine?.rawValue ?? "unknown"),
            "state": .string(state(endpoint)),
            "usable": .bool(endpoint.usable),
            "in_flight": .int(endpoint.requests),
            "peer_in_flight": .int(endpoint.peerRequests),
            "awaiting_first_token": .int(endpoint.awaitingFirstToken),
            "expected_ttft_ms": .double((endpoint.lastScore * 1000).rounded()),
            "error_rate": .double((endpoint.errorRate * 1000).rounded() / 1000),
        ]
        if let p50 = endpoint.ttftP50 { out["ttft_p50_ms"] = .double(milliseconds(p50)) }
        if let p99 = endpoint.ttftP99 { out["ttft_p99_ms"] = .double(milliseconds(p99)) }
        if let sample = endpoint.sample {
            var scraped: JSONObject = [
                "age_s": .double((sample.age(at: now).seconds * 1000).rounded() / 1000),
                "stale": .bool(endpoint.stale),
                "source": .string(endpoint.sampleFrom.map { "gossip:\($0)" } ?? "scrape"),
            ]
            if let waiting = sample.waiting { scraped["waiting"] = .int(waiting) }
            if let running = sample.running { scraped["running"] = .int(running) }
            if let usage = sample.kvUsage { scraped["kv_usage"] = .double(usage) }
            out["scraped"] = .object(scraped)
        }
        if endpoint.reportedDown { out["reported_down"] = true }
        if !reports.isEmpty {
            out["reported_by"] = .array(
                reports.map { node, entry in
                    var row: JSONObject = [
                        "node": .string(node.rawValue), "state": .string(entry.state.description),
                        "error_rate": .double(entry.errorRate),
                    ]
                    if let p50 = entry.ttftP50Ms { row["ttft_p50_ms"] = .int(p50) }
                    if let p99 = entry.ttftP99Ms { row["ttft_p99_ms"] = .int(p99) }
                    return .object(row)
                }
            )
        }
        return .object(out)
    }

    /// `open`, `half_open`, `paused` (asked for a pause with `retry-after`), `unreachable` (passed over after
    /// a connect failure, reset or timeout, or a failed probe; or its region's nodes say it cannot be used)
    /// or `closed`: the endpoint's health state in the breaker's words.
    private static func state(_ endpoint: EndpointStatus) -> String {
        switch endpoint.state {
        case .open: "open"
        case .probing: "half_open"
        case .paused: "paused"
        case .unreachable: "unreachable"
        case .healthy: "closed"
        }
    }

    private static func milliseconds(_ seconds: Double) -> Double { (seconds * 10_000).rounded() / 10 }
}
