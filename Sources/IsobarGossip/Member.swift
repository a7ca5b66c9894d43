import IsobarModel

/// A gateway node as one node's membership view holds it.
public struct Member: Sendable, Equatable {
    /// SWIM's member states. `left` is a node that said goodbye; it is treated as dead but not reported as
    /// a failure.
    public enum Status: UInt8, Sendable, Equatable, CaseIterable, CustomStringConvertible {
        case alive = 0
        case suspect = 1
        case dead = 2
        case left = 3

        public var description: String {
            switch self {
            case .alive: "alive"
            case .suspect: "suspect"
            case .dead: "dead"
            case .left: "left"
            }
        }

        /// Alive or suspect: a member that may still answer.
        public var isUp: Bool { self == .alive || self == .suspect }
    }

    public var node: NodeID
    public var region: RegionID
    /// Its gossip address (UDP, and TCP for the full-state sync).
    public var address: HostPort
    /// Raised only by the member itself, to refute a suspicion or to rejoin after being declared dead.
    public var incarnation: UInt64
    public var status: Status
    /// When this node last saw the status change (its own clock).
    public var since: Instant

    public init(
        node: NodeID,
        region: RegionID,
        address: HostPort,
        incarnation: UInt64,
        status: Status,
        since: Instant
    ) {
        self.node = node
        self.region = region
        self.address = address
        self.incarnation = incarnation
        self.status = status
        self.since = since
    }

    /// What gossip says about this member, sent by `from`.
    func update(from: NodeID) -> MemberUpdate {
        MemberUpdate(
            node: node,
            region: region,
            address: address,
            incarnation: incarnation,
            status: status,
            from: from
        )
    }
}

/// A membership claim carried by gossip: "`node` is `status` at `incarnation`", said by `from` (for a
/// suspicion, the suspecting node: independent suspicions shorten the timeout).
public struct MemberUpdate: Sendable, Equatable {
    public var node: NodeID
    public var region: RegionID
    public var address: HostPort
    public var incarnation: UInt64
    public var status: Member.Status
    public var from: NodeID

    public init(
        node: NodeID,
        region: RegionID,
        address: HostPort,
        incarnation: UInt64,
        status: Member.Status,
        from: NodeID
    ) {
        self.node = node
        self.region = region
        self.address = address
        self.incarnation = incarnation
        self.status = status
        self.from = from
    }

    /// SWIM's precedence: does this claim replace what is known of the member? Alive needs a higher
    /// incarnation than anything known; suspect overrides alive at the same incarnation; dead and left
    /// override everything at the same or higher incarnation.
    func overrides(_ known: Member) -> Bool {
        switch status {
        case .alive: incarnation > known.incarnation
        case .suspect:
            incarnation > known.incarnation || (incarnation == known.incarnation && known.status == .alive)
        case .dead, .left:
            incarnation > known.incarnation || (incarnation == known.incarnation && known.status.isUp)
        }
    }
}
