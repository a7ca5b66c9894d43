import IsobarModel

/// What the shell must do for the gossip instance.
public enum GossipAction: Sendable, Equatable {
    /// Send this packet (plaintext: the shell seals it) over UDP.
    case send([UInt8], to: HostPort)
    /// Exchange full state with `address` over TCP: send these bytes, and hand the reply to
    /// `GossipInstance.syncReplied`.
    case sync([UInt8], to: HostPort)
    /// A member's status changed in this node's view.
    case memberChanged(Member)
    /// A newer (or refreshed) load or health digest of another node: route on it.
    case digestLearned(NodeDigest)
}

/// Counters of one node's gossip, for `/metrics` and the benchmarks.
public struct GossipCounters: Sendable, Equatable {
    public var packetsSent = 0
    public var bytesSent = 0
    public var packetsReceived = 0
    public var probes = 0
    public var indirectProbes = 0
    public var suspicionsRaised = 0
    public var deathsDeclared = 0
    public var refutations = 0
    public var digestsPublished = 0
    public var staleDigestsIgnored = 0
    public init() {}
}

/// One node's membership, failure detection and dissemination: SWIM (Das et al., DSN 2002) with Lifeguard
/// (Dadgar et al., 2018), Vivaldi coordinates (Dabek et al., SIGCOMM 2004) and versioned load and health
/// digests.
///
/// A pure instance (STYLE §1): the shell feeds it packets and the time, calls `tick` at `nextWakeup`, and
/// carries out the `GossipAction`s it returns. It reads no clock and draws randomness only from the
/// generator passed in, so the gateway's UDP shell and the simulator's in-memory network drive the same
/// code.
///
/// Probing: every `probeInterval` the node pings one member, alternating between its successor on a ring
/// ordered by name hash (so every member is probed at least every two intervals, which bounds detection
/// time) and the next member of a shuffled round-robin list (SWIM's randomised probing). A member that
/// does not answer within its timeout (3× its measured RTT, clamped, times the local health multiplier)
/// is probed indirectly through `indirectProbes` others, one of them in its region when possible; if
/// nobody reaches it by the end of the interval it becomes suspect, and dead when its suspicion times out
/// unrefuted.
public struct GossipInstance: Sendable {
    public let configuration: GossipConfiguration
    public let node: NodeID
    public let region: RegionID
    public let address: HostPort
    public private(set) var codec: GossipCodec

    /// The seeds from now on: the gateway resolves DNS names among them again from time to time.
    public mutating func knowSeeds(_ seeds: [HostPort]) { self.seeds = seeds.filter { $0 != address } }

    /// The backends whose load and health this node reads from gossip, after its topology was reloaded.
    public mutating func knowBackends(_ backends: [BackendID]) { codec = GossipCodec(backends: backends) }
    /// Raised to refute a suspicion or to rejoin. The gateway starts it at the boot time in seconds, so
    /// a restarted node outranks what the mesh remembers of its previous life.
    public internal(set) var incarnation: UInt64
    /// Every other node this node has heard of, with its status.
    public internal(set) var members: [NodeID: Member] = [:]
    /// The members' names in the order this node heard of them: every walk over the members follows it,
    /// so that a seeded run is the same run in every process (dictionary order is not).
    var memberOrder: [NodeID] = []
    /// Every member by name hash, ascending (ties by name): the probe ring.
    var ring: [(key: UInt32, node: NodeID)] = []
    public internal(set) var coordinate = VivaldiCoordinate()
    /// The last coordinate each member reported.
    public internal(set) var coordinates: [NodeID: VivaldiCoordinate] = [:]
    public internal(set) var counters = GossipCounters()
    var localHealth: LocalHealth
    /// Smoothed RTT of direct probes, in seconds.
    var rtt: [NodeID: Double] = [:]
    /// The addresses a node alone joins through (never its own).
    public internal(set) var seeds: [HostPort]
    let ringKey: UInt32

    // MARK: Probing
    var probeOrder: [NodeID] = []
    var probeCursor = 0
    var probeRound: UInt64 = 0
    var syncRound: UInt64 = 0
    var probe: Probe?
    var relays: [UInt32: Relay] = [:]
    var suspicions: [NodeID: Suspicion] = [:]
    var sequence: UInt32 = 0

    // MARK: Dissemination
    var queue = BroadcastQueue()
    var digests: [NodeID: [NodeDigest.Kind: HeldDigest]] = [:]
    var published: [NodeDigest.Kind: Published] = [:]
    var digestCounter: UInt64 = 0
    var announcedCoordinate = VivaldiCoordinate()
    var lastRefreshAt: Instant?
    var nextCoordinateAnnouncement = Instant.zero

    // MARK: Timers
    var nextProbeAt: Instant
    var nextGossipAt: Instant
    var nextSyncAt: Instant
    /// When a node that knows no live member next looks for the mesh through a seed.
    var nextSeekAt: Instant
    var nextReapAt: Instant
    var hasLeft = false

    struct Probe: Sendable {
        var target: NodeID
        var address: HostPort
        var sequence: UInt32
        var sentAt: Instant
        var directDeadline: Instant
        var finalDeadline: Instant
        var indirectSent = false
        var expectedNacks = 0
        var nacks = 0
    }

    /// An indirect probe this node runs for another.
    struct Relay: Sendable {
        var requester: HostPort
        var requesterSequence: UInt32
        var nackAt: Instant?
        var expiresAt: Instant
    }

    /// A digest held from another node, aging from its receipt.
    struct HeldDigest: Sendable {
        var digest: NodeDigest
        var receivedAt: Instant

        func aged(at now: Instant) -> NodeDigest {
            var d = digest
            d.age += now - receivedAt
            return d
        }
    }

    /// What this node last published of one kind.
    struct Published: Sendable {
        var digest: NodeDigest
        var at: Instant
    }

    /// A node that will join the mesh through `seeds` (the other nodes' gossip addresses) when started.
    public init(
        node: NodeID,
        region: RegionID,
        address: HostPort,
        incarnation: UInt64 = 0,
        seeds: [HostPort] = [],
        backends: [BackendID] = [],
        configuration: GossipConfiguration = GossipConfiguration(),
        now: Instant
    ) {
        self.node = node
        self.region = region
        self.address = address
        self.incarnation = incarnation
        self.seeds = seeds.filter { $0 != address }
        self.configuration = configuration
        codec = GossipCodec(backends: backends)
        localHealth = LocalHealth(maximumMultiplier: configuration.maxHealthMultiplier)
        ringKey = GossipCodec.key(node)
        nextProbeAt = now + configuration.probeInterval
        nextGossipAt = now + configuration.gossipInterval
        nextSyncAt = now + configuration.syncInterval
        nextSeekAt = now + configuration.probeInterval
        nextReapAt = now + configuration.deadRetention
    }

    // MARK: - Queries

    /// Members alive or suspect (suspects may still answer, but routing demotes them at once).
    public var liveMembers: [Member] { orderedMembers.filter { $0.status.isUp } }

    /// Holds a member first heard of.
    mutating func add(_ member: Member) {
        members[member.node] = member
        memberOrder.append(member.node)
        let key = GossipCodec.key(member.node)
        let at = ring.partitioningIndex { ($0.key, $0.node) > (key, member.node) }
        ring.insert((key, member.node), at: at)
    }

    /// Every member, in the order heard of.
    var orderedMembers: [Member] { memberOrder.compactMap { members[$0] } }

    /// Nodes in the mesh as this node counts them: itself and every member not dead.
    public var meshSize: Int { 1 + members.values.count { $0.status.isUp } }

    /// Lifeguard's local health multiplier now (1 = healthy, up to `maxHealthMultiplier`).
    public var healthMultiplier: Int { localHealth.multiplier }

    /// The estimated RTT in seconds from this node to `region`: the median Vivaldi distance to its alive
    /// members, else the median measured RTT to them; nil when nothing is known.
    public func estimatedRTT(to region: RegionID) -> Double? {
        var distances: [Double] = []
        var measured: [Double] = []
        for member in members.values where member.region == region && member.status == .alive {
            if let c = coordinates[member.node], c.error < 1 { distances.append(coordinate.distance(to: c)) }
            if let r = rtt[member.node] { measured.append(r) }
        }
        let samples = coordinate.error < 1 && !distances.isEmpty ? distances : measured
        guard !samples.isEmpty else { return nil }
        return samples.sorted()[samples.count / 2]
    }

    /// The freshest digest of `kind` held from `origin`, with its age now; nil if none or stale.
    public func digest(of origin: NodeID, _ kind: NodeDigest.Kind, now: Instant) -> NodeDigest? {
        guard let held = digests[origin]?[kind] else { return nil }
        let d = held.aged(at: now)
        return d.age <= configuration.digestStaleAfter ? d : nil
    }

    /// The smoothed RTT of direct probes of `member`, in seconds.
    public func measuredRTT(to member: NodeID) -> Double? { rtt[member] }

    /// The version of this node's own digest of `kind` last published.
    public func digest(ofSelf kind: NodeDigest.Kind) -> DigestVersion? { published[kind]?.digest.version }

    /// When `tick` should next be called.
    public var nextWakeup: Instant {
        guard !hasLeft else { return Instant(nanoseconds: .max) }
        var next = min(nextGossipAt, nextSyncAt, nextReapAt)
        // The next probe starts when the running one has ended.
        if let probe {
            next = min(next, probe.indirectSent ? probe.finalDeadline : probe.directDeadline)
        } else {
            next = min(next, nextProbeAt)
        }
        for relay in relays.values { next = min(next, relay.nackAt ?? relay.expiresAt) }
        for suspicion in suspicions.values { next = min(next, suspicion.deadline) }
        return next
    }

    // MARK: - Events

    /// Joins through the seeds: a full-state exchange with up to three of them.
    public mutating func start(now: Instant, rng: inout some RandomNumberGenerator) -> [GossipAction] {
        seeds.shuffled(using: &rng).prefix(3).map { .sync(syncState(now: now), to: $0) }
    }

    /// Starts already holding `peers` alive, as if the news of everyone's start-up had finished spreading:
    /// no sync and nothing to broadcast. The simulator's settled start for meshes too large to boot cold in
    /// a test (a cold start of N nodes sends some N² log N updates); RTTs and coordinates start unknown.
    package mutating func assumeAlive(_ peers: [Member], rng: inout some RandomNumberGenerator) {
        for peer in peers where peer.node != node && members[peer.node] == nil { add(peer) }
        probeOrder = memberOrder.shuffled(using: &rng)
        probeCursor = 0
    }

    /// Does whatever is due at `now`: probe deadlines, indirect-probe nacks, suspicion timeouts, the next
    /// probe, a gossip round, a full-state sync and reaping the long dead.
    public mutating func tick(now: Instant, rng: inout some RandomNumberGenerator) -> [GossipAction] {
        guard !hasLeft else { return [] }
        var actions: [GossipAction] = []
        advanceProbe(now: now, rng: &rng, into: &actions)
        advanceRelays(now: now, into: &actions)
        expireSuspicions(now: now, into: &actions)
        if probe == nil, now >= nextProbeAt { startProbe(now: now, rng: &rng, into: &actions) }
        if now >= nextGossipAt {
            nextGossipAt = now + configuration.gossipInterval
            gossipRound(now: now, rng: &rng, into: &actions)
        }
        if now >= nextSyncAt {
            nextSyncAt = now + configuration.syncInterval
            if let peer = syncPeer(rng: &rng) {
                actions.append(.sync(syncState(now: now), to: peer))
            }
        }
        if now >= nextSeekAt {
            nextSeekAt = now + configuration.probeInterval
            seekMesh(now: now, rng: &rng, into: &actions)
        }
        if now >= nextReapAt {
            nextReapAt = now + .seconds(5)
            reap(now: now)
        }
        return actions
    }

    /// A node alone — started before the others, its join gone to seeds not up yet, or cut off from all of
    /// them — syncs with a random seed every probe interval instead of waiting for the next full sync
    /// (`syncInterval`), so two nodes of a topology find each other within seconds whichever starts first.
    /// The tick (every gossip interval) checks it.
    private mutating func seekMesh(
        now: Instant,
        rng: inout some RandomNumberGenerator,
        into actions: inout [GossipAction]
    ) {
        guard !members.values.contains(where: { $0.status.isUp }), let seed = seeds.randomElement(using: &rng) else {
            return
        }
        actions.append(.sync(syncState(now: now), to: seed))
    }

    /// Announces that this node leaves: its members hear `left` (not a failure) at once. The instance
    /// does nothing more afterwards.
    public mutating func leave(now: Instant, rng: inout some RandomNumberGenerator) -> [GossipAction] {
        guard !hasLeft else { return [] }
        queue.enqueue(.member(ownUpdate(.left)), about: .member(node), limit: .max, now: now)
        var actions: [GossipAction] = []
        let peers = liveMembers.shuffled(using: &rng).prefix(max(configuration.gossipFanout, 5))
        for peer in peers { sendGossip(to: peer, now: now, into: &actions) }
        hasLeft = true
        return actions
    }

    /// What this node says about itself.
    func ownUpdate(_ status: Member.Status) -> MemberUpdate {
        MemberUpdate(node: node, region: region, address: address, incarnation: incarnation, status: status, from: node)
    }

    /// How many times each node sends an update at this mesh size: `multiple × ceil(log10(N + 1))`.
    func retransmitLimit(_ multiple: Int) -> Int {
        configuration.retransmitLimit(members: meshSize, multiple: multiple)
    }

    // MARK: - Sending

    mutating func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    /// The bytes a packet may use besides the envelope.
    var packetBudget: Int { configuration.maxPacketBytes - GossipEnvelope.overheadBytes }

    /// Sends `message` to `address` with as many piggybacked updates as fit; with `onlyWithNews`, not at
    /// all when there are none (a gossip packet without updates says nothing).
    mutating func send(
        _ message: GossipMessage,
        to address: HostPort,
        peer: NodeID?,
        onlyWithNews: Bool = false,
        now: Instant,
        into actions: inout [GossipAction]
    ) {
        let header = codec.header(node, message)
        var budget = packetBudget - header.count - 2
        var updates: [[UInt8]] = []
        // SWIM's buddy system: every message to a member this node suspects says so first, however often
        // it was sent before (the suspect may have missed it), so that it can refute.
        if let peer, let member = members[peer], member.status == .suspect {
            let buddy = codec.encode(.member(member.update(from: node)))
            updates.append(buddy)
            budget -= buddy.count
        }
        if let peer { updates += queue.take(for: peer, budget: budget, codec: codec, now: now) }
        if onlyWithNews, updates.isEmpty { return }
        let bytes = codec.packet(header: header, updates: updates)
        counters.packetsSent += 1
        counters.bytesSent += bytes.count + GossipEnvelope.overheadBytes
        actions.append(.send(bytes, to: address))
    }

    mutating func sendGossip(to member: Member, now: Instant, into actions: inout [GossipAction]) {
        send(.gossip, to: member.address, peer: member.node, onlyWithNews: true, now: now, into: &actions)
    }

    /// SWIM's dissemination round: pending updates to `gossipFanout` random members (recently dead ones
    /// included, so a node wrongly declared dead learns it and refutes).
    mutating func gossipRound(now: Instant, rng: inout some RandomNumberGenerator, into actions: inout [GossipAction]) {
        announceCoordinateIfMoved(now: now)
        guard queue.hasEager else { return }
        // Drawn without replacement (a partial Fisher–Yates over the member order), so that a round costs
        // the fanout rather than the mesh size.
        var pool = Array(memberOrder.indices)
        var sent = 0
        while sent < configuration.gossipFanout, !pool.isEmpty {
            pool.swapAt(Int.random(in: pool.indices, using: &rng), pool.count - 1)
            guard let peer = members[memberOrder[pool.removeLast()]],
                peer.status.isUp || now - peer.since < configuration.gossipToDeadFor
            else { continue }
            sendGossip(to: peer, now: now, into: &actions)
            sent += 1
        }
    }

    /// The peer of the next periodic sync: a random live member, and every other time a seed that is not
    /// one (the topology's other nodes), so that a node that started apart from the mesh, or a mesh split
    /// by a partition, finds its way back.
    mutating func syncPeer(rng: inout some RandomNumberGenerator) -> HostPort? {
        syncRound &+= 1
        let live = liveMembers
        if syncRound % 2 == 1 || live.isEmpty {
            let known = Set(live.map(\.address))
            if let stranger = seeds.filter({ !known.contains($0) }).randomElement(using: &rng) { return stranger }
        }
        return live.randomElement(using: &rng)?.address
    }

    /// Forgets members dead or gone for longer than `deadRetention`.
    mutating func reap(now: Instant) {
        let gone = Set(
            members.values.filter { !$0.status.isUp && now - $0.since >= configuration.deadRetention }.map(\.node)
        )
        guard !gone.isEmpty else { return }
        memberOrder.removeAll { gone.contains($0) }
        ring.removeAll { gone.contains($0.node) }
        for node in gone {
            members[node] = nil
            coordinates[node] = nil
            rtt[node] = nil
            digests[node] = nil
            suspicions[node] = nil
        }
    }
}
