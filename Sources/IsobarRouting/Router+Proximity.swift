import IsobarModel

/// Routing between regions: which regions' deployments a request may go to, and where sessions stay.
///
/// A node serves its region's traffic from its region. Under the isobar policy the usable deployments
/// of other regions join the candidates as well, charged the RTT to their region plus the hysteresis
/// (`ProximitySettings.hysteresisMs`), so a request leaves the region only when a remote endpoint is
/// expected to answer sooner by that margin. Because every pick credits the node's ledger, a backlog
/// water-fills: the first requests spill to the nearest region with room, the next ones further, and
/// as the local queue drains the local endpoints win again on their own. A remote endpoint with a
/// metrics URL joins only while its load is known (a fresh scrape or gossip): traffic never spills
/// into the unknown.
extension Router {
    /// Fills `scratch` with the deployments to pick among, of `candidates`:
    /// 1. with a `pinned` session region that has a usable deployment, that region's usable ones;
    /// 2. else the usable ones of the node's region, joined (isobar policy, spill-over on) by the usable
    ///    remote ones whose load is known;
    /// 3. else the usable ones anywhere, else the admitted ones (an unreachable backend may have
    ///    recovered), else none (the request goes to the catch-all).
    /// A `forwarded` request is never given a deployment this node could reach only through another hop.
    mutating func preferReachable(
        _ candidates: [Int],
        group g: Int,
        now: Instant,
        pinned: RegionID? = nil,
        forwarded: Bool = false
    ) {
        scratch.removeAll(keepingCapacity: true)
        let backendOf = groups[g].backendOf
        var usableAnywhere = 0
        var pinnedUsable = false
        for d in candidates where hasRoute(to: backendOf[d], forwarded: forwarded, now: now) {
            let b = backendOf[d]
            guard isUsable(index: b, now: now) else { continue }
            usableAnywhere += 1
            if endpoints[b].isLocal { scratch.append(d) }
            if let pinned, endpoints[b].backend.region == pinned { pinnedUsable = true }
        }
        if pinnedUsable {
            scratch.removeAll(keepingCapacity: true)
            for d in candidates where endpoints[backendOf[d]].backend.region == pinned {
                let b = backendOf[d]
                if isUsable(index: b, now: now), hasRoute(to: b, forwarded: forwarded, now: now) { scratch.append(d) }
            }
            return
        }
        if !scratch.isEmpty {
            guard spillsOver(group: g) else { return }
            let staleAfter = configuration.balancing.staleAfter
            for d in candidates where !endpoints[backendOf[d]].isLocal {
                let b = backendOf[d]
                let known =
                    endpoints[b].backend.metricsURL == nil
                    || endpoints[b].freshSample(at: now, staleAfter: staleAfter) != nil
                if known, isUsable(index: b, now: now), hasRoute(to: b, forwarded: forwarded, now: now) {
                    scratch.append(d)
                }
            }
            return
        }
        for d in candidates where hasRoute(to: backendOf[d], forwarded: forwarded, now: now) {
            let b = backendOf[d]
            if usableAnywhere > 0 ? isUsable(index: b, now: now) : isAdmitted(index: b, now: now) { scratch.append(d) }
        }
    }

    /// Whether this node can send a request to endpoint `b` at all: directly, or (unless the request was
    /// `forwarded` here already) through a live node of the endpoint's region.
    func hasRoute(to b: Int, forwarded: Bool = false, now: Instant) -> Bool {
        guard endpoints[b].needsHop else { return true }
        return !forwarded && hopTargets(in: endpoints[b].backend.region, now: now).first != nil
    }

    /// The live nodes of `region` a request may be forwarded through now: those no hop failed to connect
    /// to lately.
    func hopTargets(in region: RegionID, now: Instant) -> LazyFilterSequence<[NodeID]> {
        let refused = hopRefused
        return livePeers[region, default: []].lazy.filter { refused[$0].map { $0 <= now } ?? true }
    }

    /// Whether group `g` sends traffic to other regions by load: its policy weighs RTT (isobar) and
    /// spill-over is on.
    func spillsOver(group g: Int) -> Bool {
        configuration.proximity.spillOver && policies[g].kind == .isobar && region != nil
    }

    /// Seconds a remote candidate is charged on top of its RTT while a local one competes.
    var hysteresisSeconds: Double { configuration.proximity.hysteresisMs / 1000 }

    /// The region `session` is pinned to, if it was served recently.
    func pinnedRegion(_ session: String?, now: Instant) -> RegionID? {
        guard let session, !session.isEmpty else { return nil }
        return sessions.region(of: FNV1a.hash64(session), now: now, ttl: sessionTTL)
    }

    /// Pins `session` to the region of the endpoint it was just sent to.
    mutating func pin(_ session: String?, to b: Int, now: Instant) {
        guard let session, !session.isEmpty, configuration.proximity.sessionTTLSeconds > 0 else { return }
        sessions.pin(FNV1a.hash64(session), to: endpoints[b].backend.region, now: now, ttl: sessionTTL)
    }

    private var sessionTTL: Duration { .milliseconds(configuration.proximity.sessionTTLSeconds * 1000) }

    /// Sessions pinned right now (for tests and `/metrics`).
    public var pinnedSessions: Int { sessions.count }
}

/// The region each recent session was last served in, keyed by a 64-bit hash of the session name (so a
/// long `user` string costs no more than a short one), bounded in size: over `capacity`, idle sessions
/// are dropped, then the least recently seen quarter.
struct SessionPins: Sendable {
    private var pins: [UInt64: (region: RegionID, seen: Instant)] = [:]
    let capacity: Int

    init(capacity: Int = 100_000) { self.capacity = capacity }

    var count: Int { pins.count }

    func region(of key: UInt64, now: Instant, ttl: Duration) -> RegionID? {
        guard let pin = pins[key], now - pin.seen < ttl else { return nil }
        return pin.region
    }

    mutating func pin(_ key: UInt64, to region: RegionID, now: Instant, ttl: Duration) {
        pins[key] = (region, now)
        guard pins.count > capacity else { return }
        pins = pins.filter { now - $0.value.seen < ttl }
        guard pins.count > capacity * 3 / 4 else { return }
        let cut = pins.values.map(\.seen).sorted()[pins.count - capacity * 3 / 4]
        pins = pins.filter { $0.value.seen >= cut }
    }
}
