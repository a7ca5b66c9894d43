import IsobarModel

extension GossipInstance {
    // MARK: - Publishing this node's digests

    /// Offers this node's current load and health (the shell calls it after each scrape round). A kind is
    /// published when it changed meaningfully and was last published at least `digestMinInterval` ago;
    /// when neither changed for `digestHeartbeat`, a small refresh tells the mesh the held versions are
    /// still current.
    public mutating func publish(load: LoadDigest, health: HealthDigest, now: Instant) {
        guard !hasLeft else { return }
        for payload in [NodeDigest.Payload.health(health), .load(load)] {
            let kind: NodeDigest.Kind = if case .load = payload { .load } else { .health }
            if let last = published[kind] {
                guard now - last.at >= configuration.digestMinInterval, changed(last.digest.payload, payload) else {
                    continue
                }
            }
            let limit = digestLimit(previous: published[kind]?.at, now: now)
            digestCounter += 1
            let digest = NodeDigest(
                origin: node,
                version: DigestVersion(incarnation: incarnation, counter: digestCounter),
                age: .zero,
                payload: payload
            )
            published[kind] = Published(digest: digest, at: now)
            counters.digestsPublished += 1
            queue.enqueue(.digest(digest), about: .digest(node, kind), limit: limit, now: now)
        }
        guard let load = published[.load], let health = published[.health] else { return }
        let newest = max(load.at, health.at, lastRefreshAt ?? .zero)
        if now - newest >= configuration.digestHeartbeat {
            lastRefreshAt = now
            let limit = retransmitLimit(configuration.digestRetransmitMultiple)
            let refresh = DigestRefresh(
                origin: node,
                load: load.digest.version,
                health: health.digest.version,
                age: .zero
            )
            queue.enqueue(.refresh(refresh), about: .refresh(node), limit: limit, now: now)
        }
    }

    /// How many times to send a new digest: few if its node published the previous one recently (the next
    /// will soon follow), as many as a membership change if not.
    func digestLimit(previous: Instant?, now: Instant) -> Int {
        let quiet = previous.map { now - $0 >= configuration.digestQuietGap } ?? true
        return retransmitLimit(quiet ? configuration.retransmitMultiple : configuration.digestRetransmitMultiple)
    }

    /// Whether `new` differs from `old` enough to be worth the mesh's bandwidth.
    func changed(_ old: NodeDigest.Payload, _ new: NodeDigest.Payload) -> Bool {
        switch (old, new) {
        case (.load(let a), .load(let b)):
            guard a.entries.map(\.backend) == b.entries.map(\.backend) else { return true }
            let step = configuration.loadChangeRequests
            for (x, y) in zip(a.entries, b.entries) {
                if differ(x.waiting, y.waiting, by: step) || differ(x.running, y.running, by: step)
                    || abs(x.inFlight - y.inFlight) >= step
                    || abs((x.kvUsage ?? -1) - (y.kvUsage ?? -1)) >= configuration.loadChangeKV
                    || abs(x.pendingPrefillTokens - y.pendingPrefillTokens) >= max(1024, x.pendingPrefillTokens / 5)
                {
                    return true
                }
            }
            return false
        case (.health(let a), .health(let b)):
            guard a.entries.map(\.backend) == b.entries.map(\.backend) else { return true }
            for (x, y) in zip(a.entries, b.entries) {
                if x.state != y.state || abs(x.errorRate - y.errorRate) >= 0.1
                    || relativelyDiffer(x.ttftP50Ms, y.ttftP50Ms) || relativelyDiffer(x.ttftP99Ms, y.ttftP99Ms)
                {
                    return true
                }
            }
            return false
        default:
            return true
        }
    }

    private func differ(_ a: Int?, _ b: Int?, by step: Int) -> Bool {
        guard let a, let b else { return (a == nil) != (b == nil) }
        return abs(a - b) >= step
    }

    private func relativelyDiffer(_ a: Int?, _ b: Int?) -> Bool {
        guard let a, let b else { return (a == nil) != (b == nil) }
        return abs(a - b) * 4 > max(a, b, 4)
    }

    // MARK: - Digests from others

    mutating func apply(_ d: NodeDigest, from sender: NodeID, now: Instant, into actions: inout [GossipAction]) {
        guard d.origin != node else { return }
        if let member = members[d.origin], !member.status.isUp { return }
        guard d.age <= configuration.digestStaleAfter else {
            counters.staleDigestsIgnored += 1
            return
        }
        let subject = BroadcastQueue.Subject.digest(d.origin, d.kind)
        if let held = digests[d.origin]?[d.kind], d.version <= held.digest.version {
            if d.version == held.digest.version {
                queue.held(subject, by: sender)
                if d.age < held.aged(at: now).age {
                    digests[d.origin]?[d.kind] = HeldDigest(digest: d, receivedAt: now)
                }
            }
            return
        }
        let limit = digestLimit(previous: digests[d.origin]?[d.kind]?.receivedAt, now: now)
        digests[d.origin, default: [:]][d.kind] = HeldDigest(digest: d, receivedAt: now)
        queue.enqueue(.digest(d), about: subject, limit: limit, heldBy: sender, now: now)
        actions.append(.digestLearned(d))
    }

    mutating func apply(_ r: DigestRefresh, from sender: NodeID, now: Instant, into actions: inout [GossipAction]) {
        guard r.origin != node, r.age <= configuration.digestStaleAfter else { return }
        if let member = members[r.origin], !member.status.isUp { return }
        var refreshed = false
        for (kind, version) in [(NodeDigest.Kind.load, r.load), (.health, r.health)] {
            // Only a refresh at least a second fresher than what is held is news worth passing on.
            guard let held = digests[r.origin]?[kind], held.digest.version == version,
                r.age + .seconds(1) < held.aged(at: now).age
            else { continue }
            var d = held.digest
            d.age = r.age
            digests[r.origin]?[kind] = HeldDigest(digest: d, receivedAt: now)
            actions.append(.digestLearned(d))
            refreshed = true
        }
        let subject = BroadcastQueue.Subject.refresh(r.origin)
        if refreshed {
            let limit = retransmitLimit(configuration.digestRetransmitMultiple)
            queue.enqueue(.refresh(r), about: subject, limit: limit, heldBy: sender, now: now)
        } else {
            queue.held(subject, by: sender)
        }
    }

    // MARK: - Coordinates

    /// Queues this node's coordinate when it has settled somewhere new (20 ms from the last announced, at
    /// most once a minute): acks carry it to the members this node probes, this spreads it to the rest.
    mutating func announceCoordinateIfMoved(now: Instant) {
        guard coordinate.error < 0.5, now >= nextCoordinateAnnouncement,
            coordinate.distance(to: announcedCoordinate) > 0.02 + 2 * VivaldiCoordinate.minimumHeight
        else { return }
        announcedCoordinate = coordinate
        nextCoordinateAnnouncement = now + .seconds(60)
        let limit = retransmitLimit(configuration.digestRetransmitMultiple)
        queue.enqueue(.coordinate(node, coordinate), about: .coordinate(node), limit: limit, now: now)
    }

    // MARK: - Reporting

    /// Whether this node publishes the scraped gauges of `backend`, a backend of `region`: one live node of
    /// the region is chosen per backend by rendezvous hashing (Thaler, Ravishankar, "Using Name-Based
    /// Mappings to Increase Hit Rates", IEEE/ACM ToN 1998), so each engine's gauges cross the mesh once,
    /// not once per node that scrapes it. Nodes outside the region never report it.
    public func reportsGauges(of backend: BackendID, in region: RegionID) -> Bool {
        guard region == self.region else { return false }
        let mine = Self.rendezvous(node, backend)
        for member in members.values where member.region == region && member.status == .alive {
            if Self.rendezvous(member.node, backend) > mine { return false }
        }
        return true
    }

    static func rendezvous(_ node: NodeID, _ backend: BackendID) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in node.rawValue.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash = (hash ^ 0xFF) &* 0x0000_0100_0000_01B3
        for byte in backend.rawValue.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        // A final avalanche so that names differing in one letter spread over the whole range.
        hash ^= hash >> 33
        hash &*= 0xFF51_AFD7_ED55_8CCD
        hash ^= hash >> 33
        return hash
    }
}
