import IsobarModel

/// What one peer node last gossiped, by backend index.
struct PeerReport: Sendable {
    var load: [(backend: Int, entry: LoadDigest.Entry)] = []
    var health: [(backend: Int, entry: HealthDigest.Entry)] = []
    /// Suspect peers' reports count for nothing until they are alive again (DESIGN §7: suspect demotes
    /// a node at once).
    var suspect = false
}

/// The router's side of the mesh: what this node tells its peers, and what it learns from theirs. The
/// gateway's gossip shell carries both ways; the router only sees the digests.
extension Router {
    /// How long a gossiped gauge reading stays usable: peers publish on every meaningful change and
    /// refresh unchanged digests every 30 s, so an unchanged reading is a current one.
    static let gossipFreshFor = Duration.seconds(90)

    // MARK: - Learning

    /// The region of the node `origin`, a named node or a pool's member; nil for a node not of this
    /// topology.
    func region(of origin: NodeID) -> RegionID? {
        if let (pool, _) = origin.poolMember { return poolRegions[pool] }
        return nodeRegions[origin]
    }

    /// A peer's load digest, `age` old: its in-flight ledger counts against the endpoints it names, and
    /// its gauge readings stand in for a scrape this node lacks or holds older.
    public mutating func gossiped(_ digest: LoadDigest, from origin: NodeID, age: Duration, now: Instant) {
        guard origin != node else { return }
        let takenAt = now - age
        var report = peers[origin] ?? PeerReport()
        report.load = digest.entries.compactMap { entry in backendIndex[entry.backend].map { ($0, entry) } }
        peers[origin] = report
        if !report.suspect {
            for (b, entry) in report.load where entry.waiting != nil || entry.running != nil || entry.kvUsage != nil {
                let own = endpoints[b].sampleFrom == nil ? endpoints[b].sample : nil
                if let own, own.takenAt >= takenAt { continue }
                endpoints[b].sample = LoadSample(
                    takenAt: takenAt,
                    waiting: entry.waiting,
                    running: entry.running,
                    kvUsage: entry.kvUsage
                )
                endpoints[b].sampleFrom = origin
                endpoints[b].sampleFreshFor = Self.gossipFreshFor
            }
        }
        tallyPeers()
    }

    /// A peer's health digest.
    public mutating func gossiped(_ digest: HealthDigest, from origin: NodeID) {
        guard origin != node else { return }
        var report = peers[origin] ?? PeerReport()
        report.health = digest.entries.compactMap { entry in backendIndex[entry.backend].map { ($0, entry) } }
        peers[origin] = report
        tallyPeers()
    }

    /// A peer turned suspect (or is alive, newly met or again): a suspect's ledger and health reports stop
    /// counting, gauge readings it brought age like scrapes (so they go stale in seconds) until it
    /// refutes, and requests are not forwarded through it.
    public mutating func peerSuspected(_ origin: NodeID, _ suspect: Bool) {
        guard origin != node, region(of: origin) != nil else { return }
        var report = peers[origin] ?? PeerReport(suspect: !suspect)
        guard report.suspect != suspect else { return }
        report.suspect = suspect
        peers[origin] = report
        for b in endpoints.indices where endpoints[b].sampleFrom == origin {
            endpoints[b].sampleFreshFor = suspect ? nil : Self.gossipFreshFor
        }
        tallyPeers()
    }

    /// A peer left or was declared dead: forget everything it said.
    public mutating func peerGone(_ origin: NodeID) {
        guard peers.removeValue(forKey: origin) != nil else { return }
        for b in endpoints.indices where endpoints[b].sampleFrom == origin { endpoints[b].sampleFreshFor = nil }
        tallyPeers()
    }

    /// The measured round-trip time from this node to `region`, in seconds: the isobar policy charges it
    /// to that region's endpoints.
    public mutating func measuredRTT(to region: RegionID, seconds: Double) {
        guard region != self.region, seconds.isFinite, seconds >= 0 else { return }
        for b in endpoints.indices where endpoints[b].backend.region == region && !endpoints[b].isLocal {
            endpoints[b].rtt = seconds
        }
    }

    /// Recounts what the peers not suspect say about each endpoint.
    private mutating func tallyPeers() {
        var requests = [Int](repeating: 0, count: endpoints.count)
        var prefill = [Int](repeating: 0, count: endpoints.count)
        var reporters = [Int](repeating: 0, count: endpoints.count)
        var down = [Int](repeating: 0, count: endpoints.count)
        livePeers.removeAll(keepingCapacity: true)
        for (origin, report) in peers where !report.suspect {
            if let region = region(of: origin) { livePeers[region, default: []].append(origin) }
            for (b, entry) in report.load {
                requests[b] += entry.inFlight
                prefill[b] += entry.pendingPrefillTokens
            }
            // Only the endpoint's own region speaks for its health: others may just be cut off from it.
            for (b, entry) in report.health where region(of: origin) == endpoints[b].backend.region {
                reporters[b] += 1
                if entry.state.rawValue >= HealthDigest.State.paused.rawValue { down[b] += 1 }
            }
        }
        for region in livePeers.keys { livePeers[region]!.sort() }
        for b in endpoints.indices {
            endpoints[b].peerRequests = requests[b]
            endpoints[b].peerPrefillTokens = prefill[b]
            endpoints[b].reportedDown = reporters[b] > 0 && down[b] == reporters[b]
        }
    }

    // MARK: - Publishing

    /// This node's load digest: the gauges of the endpoints in `reporting` (this node speaks for them in
    /// its region) from its own fresh scrapes, and its in-flight ledger.
    public func loadDigest(reporting: Set<BackendID>, now: Instant) -> LoadDigest {
        let staleAfter = configuration.balancing.staleAfter
        var entries: [LoadDigest.Entry] = []
        for e in endpoints {
            var entry = LoadDigest.Entry(
                backend: e.backend.name,
                inFlight: e.requests,
                pendingPrefillTokens: e.prefillTokens
            )
            if reporting.contains(e.backend.name), e.sampleFrom == nil,
                let sample = e.freshSample(at: now, staleAfter: staleAfter)
            {
                entry.waiting = sample.waiting
                entry.running = sample.running
                entry.kvUsage = sample.kvUsage
            }
            guard entry.inFlight > 0 || entry.waiting != nil || entry.running != nil || entry.kvUsage != nil
            else { continue }
            entries.append(entry)
        }
        return LoadDigest(entries: entries)
    }

    /// This node's health digest: every endpoint it has called or probed, with its state, error rate and
    /// observed time to first token.
    public func healthDigest(now: Instant) -> HealthDigest {
        var entries: [HealthDigest.Entry] = []
        for b in endpoints.indices {
            let e = endpoints[b]
            guard
                e.lastPicked != nil || e.lastSuccess != nil || e.lastFailure != nil
                    || e.sampleFrom == nil && e.sample != nil
            else { continue }
            entries.append(
                HealthDigest.Entry(
                    backend: e.backend.name,
                    state: e.healthState(usable: isUsable(index: b, now: now), now: now),
                    errorRate: e.breaker.recentErrorRate,
                    ttftP50Ms: e.ttfts.quantile(0.5).map { Int(($0 * 1000).rounded()) },
                    ttftP99Ms: e.ttfts.quantile(0.99).map { Int(($0 * 1000).rounded()) }
                )
            )
        }
        return HealthDigest(entries: entries)
    }

    /// What the peers not suspect reported of `backend`'s health, by peer.
    public func peerHealth(of backend: BackendID) -> [(node: NodeID, entry: HealthDigest.Entry)] {
        guard let b = backendIndex[backend] else { return [] }
        return peers.sorted { $0.key < $1.key }.compactMap { origin, report in
            guard !report.suspect, let hit = report.health.first(where: { $0.backend == b }) else { return nil }
            return (origin, hit.entry)
        }
    }
}
