import IsobarGossip
import Prometheus
import Synchronization

/// The gossip metrics of a node, set from its mesh view when `/metrics` is read.
extension GatewayMetrics {
    nonisolated(unsafe) static let members = name(
        "mesh_members",
        "",
        "Members of the mesh as this node sees them (itself included), by status: alive, suspect, dead, left"
    )
    nonisolated(unsafe) static let gossipPackets = name(
        "gossip_packets",
        "total",
        "Gossip packets this node sent and received (direction: sent, received)"
    )
    nonisolated(unsafe) static let gossipDropped = name(
        "gossip_packets_dropped",
        "total",
        "Gossip packets dropped, by reason: malformed, oversized, unauthenticated, replayed"
    )
    nonisolated(unsafe) static let gossipEvents = name(
        "gossip_events",
        "total",
        "Failure-detection events: suspicions raised, deaths declared, refutations of this node's own suspicion"
    )
    nonisolated(unsafe) static let healthMultiplier = name(
        "gossip_health_multiplier",
        "",
        "Lifeguard's local health multiplier (1 healthy, up to 8 when this node itself is slow)"
    )

    /// Brings the gossip metrics up to `mesh`: the member gauges are set, the counters advanced by what
    /// the instance counted since the last read.
    func setMesh(_ mesh: MeshSnapshot) {
        for status in Member.Status.allCases {
            let count = mesh.members.count { $0.status == status } + (status == .alive ? 1 : 0)
            registry.makeGauge(descriptor: Self.members, labels: [("status", "\(status)")]).set(Int64(count))
        }
        advance(Self.gossipPackets, ("direction", "sent"), to: mesh.counters.packetsSent)
        advance(Self.gossipPackets, ("direction", "received"), to: mesh.counters.packetsReceived)
        for code in GossipError.Code.allCases {
            advance(Self.gossipDropped, ("reason", code.rawValue), to: mesh.dropped[code] ?? 0)
        }
        advance(Self.gossipEvents, ("event", "suspicion"), to: mesh.counters.suspicionsRaised)
        advance(Self.gossipEvents, ("event", "death"), to: mesh.counters.deathsDeclared)
        advance(Self.gossipEvents, ("event", "refutation"), to: mesh.counters.refutations)
        registry.makeGauge(descriptor: Self.healthMultiplier).set(Int64(mesh.healthMultiplier))
    }

    /// Advances the counter `descriptor{label}` to `total`, a running total kept elsewhere.
    private func advance(_ descriptor: MetricNameDescriptor, _ label: (String, String), to total: Int) {
        let key = "\(descriptor.metricName)|\(label.1)"
        let delta = exportedTotals.withLock { totals in
            defer { totals[key] = total }
            return total - (totals[key] ?? 0)
        }
        guard delta > 0 else { return }
        counter(descriptor, [label]).increment(by: Int64(delta))
    }
}
