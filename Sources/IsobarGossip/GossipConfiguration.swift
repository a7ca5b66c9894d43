import IsobarModel
import RealModule

/// The settings of one node's gossip: SWIM probing (Das, Gupta, Motivala, "SWIM: Scalable Weakly-consistent
/// Infection-style Process Group Membership Protocol", DSN 2002), Lifeguard's local health and suspicion
/// timeouts (Dadgar, Phillips, Currey, "Lifeguard: Local Health Awareness for More Accurate Failure
/// Detection", DSN Workshops 2018), dissemination and digest publication.
///
/// The defaults are the issue-6 contract: a 1 s probe interval, probe timeouts of 3× the measured RTT
/// clamped to 150–600 ms, 3 indirect probes, a local health multiplier capped at 8, packets under 1,400
/// bytes and a full-state sync every 30 s.
public struct GossipConfiguration: Sendable, Equatable {
    /// How often a node probes one member.
    public var probeInterval: Duration = .seconds(1)
    /// A direct probe's timeout is this multiple of the target's measured RTT...
    public var probeTimeoutRTTMultiple = 3.0
    /// ...clamped to this range (before the local health multiplier stretches it).
    public var probeTimeoutFloor: Duration = .milliseconds(150)
    public var probeTimeoutCeiling: Duration = .milliseconds(600)
    /// Members asked to probe a target that did not answer directly.
    public var indirectProbes = 3
    /// Lifeguard's local health multiplier: probe timeouts are multiplied by (score + 1), at most this.
    public var maxHealthMultiplier = 8
    /// Lifeguard suspicion timeout: at least `suspicionMinMultiple × max(1, log10 N) × probeInterval`,
    /// starting at `suspicionMaxMultiple` times that and shrinking as independent suspicions arrive.
    public var suspicionMinMultiple = 2.0
    public var suspicionMaxMultiple = 2.0
    /// Independent suspicions after which the suspicion timeout reaches its minimum.
    public var suspicionConfirmations = 3
    /// A membership change is sent `retransmitMultiple × ceil(log10(N + 1))` times by every node.
    public var retransmitMultiple = 4
    /// Load and health digests of a node that publishes often are sent `digestRetransmitMultiple ×
    /// ceil(log10(N + 1))` times: the next version follows within seconds, so a node that missed one
    /// catches up with the next. A digest after `digestQuietGap` without one is spread as reliably as a
    /// membership change, since nothing will soon replace it; and the periodic sync repairs what is left.
    public var digestRetransmitMultiple = 1
    public var digestQuietGap: Duration = .seconds(5)
    /// How often a node sends its pending updates to `gossipFanout` random members.
    public var gossipInterval: Duration = .milliseconds(200)
    public var gossipFanout = 3
    /// Dead members are still gossiped to for this long (so a node wrongly declared dead hears it and
    /// refutes), and forgotten after `deadRetention`.
    public var gossipToDeadFor: Duration = .seconds(30)
    public var deadRetention: Duration = .seconds(120)
    /// Largest UDP payload, envelope included.
    public var maxPacketBytes = 1400
    /// Full-state sync with one random member (TCP in the gateway).
    public var syncInterval: Duration = .seconds(30)
    /// Digests are published at most this often...
    public var digestMinInterval: Duration = .seconds(1)
    /// ...and re-announced (a small refresh naming the current versions) at least this often when unchanged.
    public var digestHeartbeat: Duration = .seconds(30)
    /// A digest older than this is ignored: its node stopped telling the mesh about its backends (a node
    /// that dies is dropped sooner, by the failure detector).
    public var digestStaleAfter: Duration = .seconds(90)
    /// A load change is worth publishing when a queue or batch changed by this many requests or KV usage by
    /// this fraction.
    public var loadChangeRequests = 1
    public var loadChangeKV = 0.05

    public init() {}

    /// The number of times an update is retransmitted by each node in a mesh of `members` nodes:
    /// `multiple × ceil(log10(members + 1))`, at least 1.
    public func retransmitLimit(members: Int, multiple: Int) -> Int {
        let scale = Int(Double.log10(Double(max(1, members) + 1)).rounded(.up))
        return max(1, multiple) * max(1, scale)
    }

    /// SWIM's `log N` scale of timeouts: `max(1, log10 N)`.
    static func scale(members: Int) -> Double { max(1, Double.log10(Double(max(1, members)))) }
}
