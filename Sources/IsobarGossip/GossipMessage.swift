import IsobarModel

/// Orders a node's digests: a node that restarts comes back with a higher incarnation, so its new versions
/// beat the ones the mesh still holds from its previous life.
public struct DigestVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var incarnation: UInt64
    public var counter: UInt64

    public init(incarnation: UInt64, counter: UInt64) {
        self.incarnation = incarnation
        self.counter = counter
    }

    public static func < (a: DigestVersion, b: DigestVersion) -> Bool {
        (a.incarnation, a.counter) < (b.incarnation, b.counter)
    }

    public var description: String { "\(incarnation).\(counter)" }
}

/// A versioned load or health digest of one node, as gossip carries it.
public struct NodeDigest: Sendable, Equatable {
    public enum Payload: Sendable, Equatable {
        case load(LoadDigest)
        case health(HealthDigest)
    }

    public enum Kind: UInt8, Sendable, Hashable, CaseIterable {
        case health = 0
        case load = 1
    }

    public var origin: NodeID
    public var version: DigestVersion
    /// How old the data was when the sender sent it: each hop adds the time it held the digest, so no
    /// clocks need to agree.
    public var age: Duration
    public var payload: Payload

    public init(origin: NodeID, version: DigestVersion, age: Duration, payload: Payload) {
        self.origin = origin
        self.version = version
        self.age = age
        self.payload = payload
    }

    public var kind: Kind {
        switch payload {
        case .load: .load
        case .health: .health
        }
    }
}

/// A heartbeat for unchanged digests: "my load and health are still at these versions". It keeps the
/// digests a node already holds from going stale at a fraction of the bytes.
public struct DigestRefresh: Sendable, Equatable {
    public var origin: NodeID
    public var load: DigestVersion
    public var health: DigestVersion
    public var age: Duration

    public init(origin: NodeID, load: DigestVersion, health: DigestVersion, age: Duration) {
        self.origin = origin
        self.load = load
        self.health = health
        self.age = age
    }
}

/// One piece of piggybacked news. Packets carry membership changes first, then health, then load, then
/// coordinates.
public enum GossipUpdate: Sendable, Equatable {
    case member(MemberUpdate)
    case digest(NodeDigest)
    case refresh(DigestRefresh)
    case coordinate(NodeID, VivaldiCoordinate)

    /// Membership changes and new digests are worth a gossip round of their own; refreshes and
    /// coordinates wait for a probe to ride on.
    var isEager: Bool {
        switch self {
        case .member, .digest: true
        case .refresh, .coordinate: false
        }
    }

    /// Lower goes first when a packet has room for only some updates.
    var priority: Int {
        switch self {
        case .member: 0
        case .digest(let d): d.kind == .health ? 1 : 2
        case .refresh, .coordinate: 3
        }
    }
}

/// The SWIM message a packet carries, besides its piggybacked updates.
public enum GossipMessage: Sendable, Equatable {
    /// "Are you alive?" — `target` names the node meant, so a node restarted on the same address under
    /// another name does not answer for the old one.
    case ping(sequence: UInt32, target: NodeID)
    /// "Yes": the answer to a ping, with the answerer's network coordinate.
    case ack(sequence: UInt32, coordinate: VivaldiCoordinate?)
    /// "Please probe `target` for me" (SWIM's indirect probe).
    case pingRequest(sequence: UInt32, target: NodeID, address: HostPort)
    /// "I asked, and it did not answer in time" (Lifeguard: tells the requester its own health is fine).
    case nack(sequence: UInt32)
    /// Updates only.
    case gossip
    /// A full-state exchange: the updates are the sender's whole view. `reply` is false for the opener.
    case sync(reply: Bool)
}

/// A decoded gossip packet.
public struct GossipPacket: Sendable, Equatable {
    public var sender: NodeID
    public var message: GossipMessage
    public var updates: [GossipUpdate]

    public init(sender: NodeID, message: GossipMessage, updates: [GossipUpdate] = []) {
        self.sender = sender
        self.message = message
        self.updates = updates
    }

    /// The news to merge: a sync opening's refreshes only name the versions its sender holds (so that the
    /// reply carries what it lacks); they are not heartbeats.
    var updatesToMerge: [GossipUpdate] {
        guard case .sync(reply: false) = message else { return updates }
        return updates.filter { if case .refresh = $0 { false } else { true } }
    }
}
