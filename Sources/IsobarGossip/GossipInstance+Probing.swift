import IsobarModel

extension GossipInstance {
    // MARK: - Direct probes

    /// The timeout of a direct probe of `target`: 3× its smoothed RTT (or its Vivaldi estimate), clamped,
    /// stretched by the local health multiplier.
    public func probeTimeout(_ target: NodeID) -> Duration {
        let c = configuration
        var base = c.probeTimeoutCeiling
        if let r = rtt[target] ?? coordinates[target].flatMap({ $0.error < 1 ? coordinate.distance(to: $0) : nil }) {
            let scaled = Duration.nanoseconds(Int64(min(r * c.probeTimeoutRTTMultiple, 10) * 1e9))
            base = min(c.probeTimeoutCeiling, max(c.probeTimeoutFloor, scaled))
        }
        return localHealth.scaled(base)
    }

    /// The member to probe next: the ring successor on even rounds, the round-robin list on odd ones.
    mutating func nextTarget(rng: inout some RandomNumberGenerator) -> Member? {
        probeRound &+= 1
        if probeRound % 2 == 0, let successor = ringSuccessor() { return successor }
        for _ in 0...probeOrder.count {
            if probeCursor >= probeOrder.count {
                probeOrder = liveMembers.map(\.node).shuffled(using: &rng)
                probeCursor = 0
                if probeOrder.isEmpty { return nil }
            }
            let candidate = probeOrder[probeCursor]
            probeCursor += 1
            if let member = members[candidate], member.status.isUp { return member }
        }
        return nil
    }

    /// The live member after this node on the ring ordered by name hash.
    func ringSuccessor() -> Member? {
        let start = ring.partitioningIndex { $0.key >= ringKey }
        for step in ring.indices {
            let (_, name) = ring[(start + step) % ring.count]
            if let member = members[name], member.status.isUp { return member }
        }
        return nil
    }

    mutating func startProbe(now: Instant, rng: inout some RandomNumberGenerator, into actions: inout [GossipAction]) {
        nextProbeAt = now + configuration.probeInterval
        guard let target = nextTarget(rng: &rng) else { return }
        let sequence = nextSequence()
        let timeout = probeTimeout(target.node)
        let direct = now + timeout
        // Indirect probes get the rest of the interval, and at least half a second.
        let final = max(
            now + localHealth.scaled(configuration.probeInterval),
            direct + localHealth.scaled(.milliseconds(500))
        )
        probe = Probe(
            target: target.node,
            address: target.address,
            sequence: sequence,
            sentAt: now,
            directDeadline: direct,
            finalDeadline: final
        )
        counters.probes += 1
        send(
            .ping(sequence: sequence, target: target.node),
            to: target.address,
            peer: target.node,
            now: now,
            into: &actions
        )
    }

    /// Moves the running probe on: indirect probes after the direct timeout, failure at the final deadline.
    mutating func advanceProbe(now: Instant, rng: inout some RandomNumberGenerator, into actions: inout [GossipAction])
    {
        guard var current = probe else { return }
        if !current.indirectSent, now >= current.directDeadline {
            current.indirectSent = true
            let helpers = indirectHelpers(for: current.target, rng: &rng)
            current.expectedNacks = helpers.count
            counters.indirectProbes += helpers.count
            for helper in helpers {
                send(
                    .pingRequest(sequence: current.sequence, target: current.target, address: current.address),
                    to: helper.address,
                    peer: helper.node,
                    now: now,
                    into: &actions
                )
            }
            probe = current
        }
        guard now >= current.finalDeadline else { return }
        probe = nil
        nextProbeAt = max(nextProbeAt, now)
        // Lifeguard: missing nacks mean this node's own messages are slow; no helpers, count the miss.
        if current.expectedNacks > 0 {
            localHealth.adjust(max(0, current.expectedNacks - current.nacks))
        } else {
            localHealth.adjust(1)
        }
        guard let member = members[current.target] else { return }
        switch member.status {
        case .alive:
            suspect(member, from: node, now: now, into: &actions)
        case .suspect:
            // Lifeguard: this node's own failed probe is an independent confirmation.
            guard var suspicion = suspicions[member.node], suspicion.suspecters.insert(node).inserted else { return }
            suspicions[member.node] = suspicion
            broadcast(member.update(from: node), now: now)
        case .dead, .left:
            break
        }
    }

    /// `indirectProbes` random live members other than the target, at least one from the target's region
    /// when there is one (a peer near the target tells a path problem from a dead node).
    func indirectHelpers(for target: NodeID, rng: inout some RandomNumberGenerator) -> [Member] {
        let targetRegion = members[target]?.region
        var pool = orderedMembers.filter { $0.status == .alive && $0.node != target }.shuffled(using: &rng)
        guard !pool.isEmpty else { return [] }
        var chosen: [Member] = []
        if let i = pool.firstIndex(where: { $0.region == targetRegion }) { chosen.append(pool.remove(at: i)) }
        chosen += pool.prefix(max(0, configuration.indirectProbes - chosen.count))
        return chosen
    }

    /// An ack for `sequence` arrived from `sender`.
    mutating func acknowledged(
        _ sequence: UInt32,
        from sender: NodeID,
        coordinate peerCoordinate: VivaldiCoordinate?,
        now: Instant,
        rng: inout some RandomNumberGenerator,
        into actions: inout [GossipAction]
    ) {
        if let relay = relays.removeValue(forKey: sequence) {
            send(
                .ack(sequence: relay.requesterSequence, coordinate: nil),
                to: relay.requester,
                peer: nil,
                now: now,
                into: &actions
            )
            return
        }
        guard let current = probe, current.sequence == sequence else { return }
        probe = nil
        localHealth.adjust(-1)
        // A direct answer measures the RTT; one relayed by a helper does not.
        guard sender == current.target else { return }
        let sample = (now - current.sentAt).seconds
        rtt[sender] = rtt[sender].map { 0.7 * $0 + 0.3 * sample } ?? sample
        if let peerCoordinate {
            coordinates[sender] = peerCoordinate
            coordinate.update(rtt: sample, other: peerCoordinate, rng: &rng)
        }
    }

    // MARK: - Indirect probes for others

    mutating func relayProbe(
        of target: NodeID,
        at targetAddress: HostPort,
        for requester: HostPort,
        sequence requesterSequence: UInt32,
        now: Instant,
        into actions: inout [GossipAction]
    ) {
        let sequence = nextSequence()
        // Nack before the requester gives up on the round: 80% of the time it waits for helpers.
        let nackAfter = localHealth.scaled(.milliseconds(400))
        relays[sequence] = Relay(
            requester: requester,
            requesterSequence: requesterSequence,
            nackAt: now + nackAfter,
            expiresAt: now + configuration.probeInterval * 2
        )
        send(.ping(sequence: sequence, target: target), to: targetAddress, peer: target, now: now, into: &actions)
    }

    mutating func advanceRelays(now: Instant, into actions: inout [GossipAction]) {
        for sequence in relays.keys.sorted() {
            guard let relay = relays[sequence] else { continue }
            if let nackAt = relay.nackAt, now >= nackAt {
                relays[sequence]?.nackAt = nil
                send(.nack(sequence: relay.requesterSequence), to: relay.requester, peer: nil, now: now, into: &actions)
            }
            if now >= relay.expiresAt { relays[sequence] = nil }
        }
    }

    // MARK: - Suspicion

    /// The Lifeguard suspicion window for a mesh of this size.
    func suspicionBounds() -> (minimum: Duration, maximum: Duration, expected: Int) {
        let n = meshSize
        let minimum =
            configuration.probeInterval * (configuration.suspicionMinMultiple * GossipConfiguration.scale(members: n))
        let maximum = minimum * configuration.suspicionMaxMultiple
        let expected = max(0, min(configuration.suspicionConfirmations, n - 2))
        return (minimum, maximum, expected)
    }

    /// Marks `member` suspect on `from`'s word and tells the mesh.
    mutating func suspect(_ member: Member, from: NodeID, now: Instant, into actions: inout [GossipAction]) {
        var m = member
        m.status = .suspect
        m.since = now
        members[m.node] = m
        let bounds = suspicionBounds()
        suspicions[m.node] = Suspicion(
            incarnation: m.incarnation,
            startedAt: now,
            minimum: bounds.minimum,
            maximum: bounds.maximum,
            expected: bounds.expected,
            suspecters: [from]
        )
        broadcast(m.update(from: from), now: now)
        actions.append(.memberChanged(m))
        if from == node {
            counters.suspicionsRaised += 1
            // Tell the suspect at once, so that a node that is only slow refutes before it times out.
            send(.gossip, to: m.address, peer: m.node, now: now, into: &actions)
        }
    }

    mutating func expireSuspicions(now: Instant, into actions: inout [GossipAction]) {
        for target in suspicions.keys.sorted() {
            guard let suspicion = suspicions[target], now >= suspicion.deadline else { continue }
            suspicions[target] = nil
            guard var m = members[target], m.status == .suspect, m.incarnation == suspicion.incarnation else {
                continue
            }
            m.status = .dead
            m.since = now
            members[target] = m
            counters.deathsDeclared += 1
            broadcast(m.update(from: node), now: now)
            actions.append(.memberChanged(m))
        }
    }

    /// Queues a membership update for every member to hear.
    mutating func broadcast(_ update: MemberUpdate, heldBy holder: NodeID? = nil, now: Instant) {
        let limit = retransmitLimit(configuration.retransmitMultiple)
        queue.enqueue(.member(update), about: .member(update.node), limit: limit, heldBy: holder, now: now)
    }
}
