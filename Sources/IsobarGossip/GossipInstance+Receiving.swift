import IsobarModel

extension GossipInstance {
    /// Handles a packet that arrived from `source` (already opened and checked against replay by the
    /// shell). Packets from this node itself are ignored.
    public mutating func received(
        _ packet: GossipPacket,
        from source: HostPort,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> [GossipAction] {
        guard !hasLeft, packet.sender != node else { return [] }
        counters.packetsReceived += 1
        var actions: [GossipAction] = []
        merge(packet.updatesToMerge, from: packet.sender, now: now, rng: &rng, into: &actions)
        switch packet.message {
        case .ping(let sequence, let target):
            // A ping meant for a node that used to live at this address is not ours to answer.
            guard target == node else { break }
            send(
                .ack(sequence: sequence, coordinate: coordinate),
                to: source,
                peer: packet.sender,
                now: now,
                into: &actions
            )
        case .ack(let sequence, let peerCoordinate):
            acknowledged(sequence, from: packet.sender, coordinate: peerCoordinate, now: now, rng: &rng, into: &actions)
        case .pingRequest(let sequence, let target, let targetAddress):
            guard target != node else {
                send(
                    .ack(sequence: sequence, coordinate: nil),
                    to: source,
                    peer: packet.sender,
                    now: now,
                    into: &actions
                )
                break
            }
            relayProbe(of: target, at: targetAddress, for: source, sequence: sequence, now: now, into: &actions)
        case .nack(let sequence):
            if probe?.sequence == sequence { probe?.nacks += 1 }
        case .gossip:
            break
        case .sync(let reply):
            if !reply { actions.append(.sync(syncReply(to: packet, now: now), to: source)) }
        }
        return actions
    }

    /// Handles the opening of a full-state exchange (TCP in the gateway) and returns the reply to send back.
    public mutating func receivedSync(
        _ packet: GossipPacket,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> (reply: [UInt8], actions: [GossipAction]) {
        let reply = syncReply(to: packet, now: now)
        guard !hasLeft, packet.sender != node else { return (reply, []) }
        var actions: [GossipAction] = []
        merge(packet.updatesToMerge, from: packet.sender, now: now, rng: &rng, into: &actions)
        return (reply, actions)
    }

    /// Handles the reply to a full-state exchange this node opened.
    public mutating func syncReplied(
        _ packet: GossipPacket,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> [GossipAction] {
        guard !hasLeft, packet.sender != node else { return [] }
        var actions: [GossipAction] = []
        merge(packet.updates, from: packet.sender, now: now, rng: &rng, into: &actions)
        return actions
    }

    /// The opening of a full-state exchange: every member this node knows (itself included), its
    /// coordinate, and a refresh naming the version of every digest it holds, so that the peer can send
    /// back exactly the digests it lacks.
    func syncState(now: Instant) -> [UInt8] {
        var updates = membershipState()
        for origin in digests.keys.sorted() {
            guard let load = digest(of: origin, .load, now: now), let health = digest(of: origin, .health, now: now)
            else {
                continue
            }
            updates.append(
                .refresh(
                    DigestRefresh(
                        origin: origin,
                        load: load.version,
                        health: health.version,
                        age: max(load.age, health.age)
                    )
                )
            )
        }
        return codec.encode(GossipPacket(sender: node, message: .sync(reply: false), updates: updates))
    }

    /// The reply to a full-state exchange: every member, and every digest (this node's own included) newer
    /// than what the opener named. An opener that knows fewer than half the members (it is joining or
    /// back from a partition) also gets every coordinate.
    func syncReply(to opening: GossipPacket, now: Instant) -> [UInt8] {
        var updates = membershipState()
        var named: [NodeID: DigestRefresh] = [:]
        var known = 0
        for update in opening.updates {
            switch update {
            case .refresh(let r): named[r.origin] = r
            case .member: known += 1
            case .digest, .coordinate: break
            }
        }
        var held: [NodeDigest] = []
        for kind in NodeDigest.Kind.allCases {
            if let own = published[kind] {
                var d = own.digest
                d.age = now - own.at
                held.append(d)
            }
        }
        for origin in digests.keys.sorted() {
            for kind in NodeDigest.Kind.allCases {
                if let d = digest(of: origin, kind, now: now) { held.append(d) }
            }
        }
        for d in held where d.origin != opening.sender {
            let theirs = named[d.origin].map { d.kind == .load ? $0.load : $0.health }
            if theirs.map({ $0 < d.version }) ?? true { updates.append(.digest(d)) }
        }
        if known * 2 < members.count + 1 {
            for (peer, c) in coordinates.sorted(by: { $0.key < $1.key }) { updates.append(.coordinate(peer, c)) }
        }
        return codec.encode(GossipPacket(sender: node, message: .sync(reply: true), updates: updates))
    }

    /// Every member this node knows, itself first, and its coordinate.
    func membershipState() -> [GossipUpdate] {
        var updates: [GossipUpdate] = [.member(ownUpdate(.alive))]
        for member in orderedMembers { updates.append(.member(member.update(from: node))) }
        updates.append(.coordinate(node, coordinate))
        return updates
    }

    // MARK: - Merging news

    mutating func merge(
        _ updates: [GossipUpdate],
        from sender: NodeID,
        now: Instant,
        rng: inout some RandomNumberGenerator,
        into actions: inout [GossipAction]
    ) {
        for update in updates {
            switch update {
            case .member(let m): apply(m, from: sender, now: now, rng: &rng, into: &actions)
            case .digest(let d): apply(d, from: sender, now: now, into: &actions)
            case .refresh(let r): apply(r, from: sender, now: now, into: &actions)
            case .coordinate(let peer, let c):
                guard peer != node, members[peer] != nil else { continue }
                coordinates[peer] = c
            }
        }
    }

    /// SWIM's merge of one membership claim.
    mutating func apply(
        _ update: MemberUpdate,
        from sender: NodeID,
        now: Instant,
        rng: inout some RandomNumberGenerator,
        into actions: inout [GossipAction]
    ) {
        if update.node == node {
            refuteIfNeeded(update, now: now)
            return
        }
        guard let known = members[update.node] else {
            // A node first heard of; news of the death of a stranger is not worth keeping.
            guard update.status == .alive else { return }
            let member = Member(
                node: update.node,
                region: update.region,
                address: update.address,
                incarnation: update.incarnation,
                status: .alive,
                since: now
            )
            add(member)
            // SWIM: a new member goes to a random place in the probe order.
            probeOrder.insert(update.node, at: Int.random(in: 0...probeOrder.count, using: &rng))
            broadcast(update, heldBy: sender, now: now)
            actions.append(.memberChanged(member))
            return
        }
        guard update.overrides(known) else {
            // Lifeguard: a further independent suspicion of a suspect shortens its timeout.
            if update.status == .suspect, known.status == .suspect, update.incarnation == known.incarnation,
                var suspicion = suspicions[update.node], !suspicion.suspecters.contains(update.from)
            {
                suspicion.suspecters.insert(update.from)
                suspicions[update.node] = suspicion
                broadcast(update, heldBy: sender, now: now)
            } else if update.status == known.status, update.incarnation == known.incarnation {
                queue.held(.member(update.node), by: sender)
            }
            return
        }
        switch update.status {
        case .suspect:
            var m = known
            m.incarnation = update.incarnation
            suspect(m, from: update.from, now: now, into: &actions)
            queue.held(.member(m.node), by: sender)
        case .alive, .dead, .left:
            var m = known
            m.incarnation = update.incarnation
            m.status = update.status
            m.since = now
            m.address = update.address
            m.region = update.region
            members[m.node] = m
            suspicions[m.node] = nil
            if update.status != .alive { digests[m.node] = nil }
            broadcast(update, heldBy: sender, now: now)
            actions.append(.memberChanged(m))
        }
    }

    /// Claims about this node: a suspicion or death at its incarnation or above is refuted by raising the
    /// incarnation past it (Lifeguard counts having to refute as a sign of poor local health); an alive
    /// claim from a previous life at a higher incarnation is outranked the same way.
    mutating func refuteIfNeeded(_ update: MemberUpdate, now: Instant) {
        let needed: Bool
        switch update.status {
        case .alive: needed = update.incarnation > incarnation
        case .suspect, .dead, .left: needed = update.incarnation >= incarnation
        }
        guard needed else { return }
        incarnation = update.incarnation + 1
        if update.status != .alive {
            localHealth.adjust(1)
            counters.refutations += 1
        }
        broadcast(ownUpdate(.alive), now: now)
        // Own digests carry the incarnation; republish under the new one.
        for (kind, own) in published {
            var d = own.digest
            d.version = DigestVersion(incarnation: incarnation, counter: d.version.counter)
            published[kind] = Published(digest: d, at: own.at)
        }
    }
}
