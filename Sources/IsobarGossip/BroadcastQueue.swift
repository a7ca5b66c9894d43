import IsobarModel

/// What a node still has to tell the mesh, and how many more times (SWIM's infection-style dissemination).
///
/// One entry per subject: a newer update about the same member, or a newer digest of the same node,
/// replaces the older one and starts its count again. Each packet takes the entries that fit, membership
/// first, then health, then load, then coordinates; within a class the least-sent and newest first. An
/// entry is never sent to a peer known to hold it already (it sent it to us, or we sent it there), and is
/// dropped once sent `limit` times.
///
/// Entries wait in buckets by (class, transmissions), so a packet looks at the few best buckets instead
/// of sorting everything queued; a bucket drops replaced or finished entries lazily as it is walked.
struct BroadcastQueue: Sendable {
    enum Subject: Hashable, Sendable {
        case member(NodeID)
        case digest(NodeID, NodeDigest.Kind)
        case refresh(NodeID)
        case coordinate(NodeID)
    }

    struct Entry: Sendable {
        var update: GossipUpdate
        /// Digests and refreshes age while they wait: sent with `age + (now - since)`.
        var since: Instant
        var priority: Int
        var transmits = 0
        var limit: Int
        var holders: Set<NodeID>
        var order: UInt64
    }

    private(set) var entries: [Subject: Entry] = [:]
    /// Subjects by bucket, oldest first; an element is live while its entry has that bucket and order.
    private var buckets: [[(subject: Subject, order: UInt64)]]
    private var nextOrder: UInt64 = 0
    /// Classes: membership, health, load, coordinates (and one spare).
    static let classes = 5
    static let transmitBuckets = 16

    init() { buckets = Array(repeating: [], count: Self.classes * Self.transmitBuckets) }

    var isEmpty: Bool { entries.isEmpty }
    /// Whether anything queued is worth a packet of its own: membership changes and new digests. Refreshes
    /// and coordinates only ride along on probes.
    var hasEager: Bool { entries.values.contains { $0.update.isEager } }

    private static func bucket(priority: Int, transmits: Int) -> Int {
        (priority + 1) * transmitBuckets + min(transmits, transmitBuckets - 1)
    }

    /// Queues `update` about `subject`, replacing what was queued about it.
    mutating func enqueue(
        _ update: GossipUpdate,
        about subject: Subject,
        limit: Int,
        heldBy holder: NodeID? = nil,
        now: Instant
    ) {
        nextOrder &+= 1
        let priority = update.priority
        entries[subject] = Entry(
            update: update,
            since: now,
            priority: priority,
            limit: limit,
            holders: holder.map { [$0] } ?? [],
            order: nextOrder
        )
        buckets[Self.bucket(priority: priority, transmits: 0)].append((subject, nextOrder))
    }

    /// `peer` holds what is queued about `subject` (it sent us the same version).
    mutating func held(_ subject: Subject, by peer: NodeID) {
        entries[subject]?.holders.insert(peer)
    }

    /// Takes the updates for one packet to `peer`, at most `budget` encoded bytes, counting a transmission
    /// of each.
    mutating func take(
        for peer: NodeID,
        budget: Int,
        codec: GossipCodec,
        now: Instant
    ) -> [[UInt8]] {
        guard !entries.isEmpty, budget > 0 else { return [] }
        var taken: [[UInt8]] = []
        var moved: [(subject: Subject, order: UInt64, bucket: Int)] = []
        var left = budget
        walk: for b in buckets.indices where !buckets[b].isEmpty {
            var kept: [(subject: Subject, order: UInt64)] = []
            kept.reserveCapacity(buckets[b].count)
            var full = false
            // Newest first within a bucket.
            for item in buckets[b].reversed() {
                if full {
                    kept.append(item)
                    continue
                }
                // Replaced, finished or moved on: dropped.
                guard let pending = pending(item, bucket: b, peer: peer) else { continue }
                if pending.heldByPeer {
                    kept.append(item)
                    continue
                }
                switch send(
                    pending,
                    about: item.subject,
                    to: peer,
                    left: &left,
                    taken: &taken,
                    moved: &moved,
                    codec: codec,
                    now: now
                ) {
                case .sent: break
                case .tooBig: kept.append(item)
                case .full:
                    kept.append(item)
                    full = true
                }
            }
            buckets[b] = kept.reversed()
            if full { break walk }
        }
        for m in moved { buckets[m.bucket].append((m.subject, m.order)) }
        return taken
    }

    private enum Outcome { case sent, tooBig, full }

    /// What sending a queued entry needs, without its holder set: an `Entry` copy alive while the entry
    /// is updated in place would make the insert copy the whole set.
    private struct Pending {
        var update: GossipUpdate
        var since: Instant
        var priority: Int
        var transmits: Int
        var limit: Int
        var order: UInt64
        /// The peer the packet is for already holds it.
        var heldByPeer: Bool
    }

    /// The live entry a bucket element stands for, or nil when it was replaced, finished or moved on.
    private func pending(_ item: (subject: Subject, order: UInt64), bucket b: Int, peer: NodeID) -> Pending? {
        guard let entry = entries[item.subject], entry.order == item.order,
            Self.bucket(priority: entry.priority, transmits: entry.transmits) == b
        else { return nil }
        return Pending(
            update: entry.update,
            since: entry.since,
            priority: entry.priority,
            transmits: entry.transmits,
            limit: entry.limit,
            order: entry.order,
            heldByPeer: entry.holders.contains(peer)
        )
    }

    private mutating func send(
        _ entry: Pending,
        about subject: Subject,
        to peer: NodeID,
        left: inout Int,
        taken: inout [[UInt8]],
        moved: inout [(subject: Subject, order: UInt64, bucket: Int)],
        codec: GossipCodec,
        now: Instant
    ) -> Outcome {
        let bytes = codec.encode(Self.aged(entry.update, by: now - entry.since))
        guard bytes.count <= left else { return left < 24 ? .full : .tooBig }
        left -= bytes.count
        taken.append(bytes)
        let transmits = entry.transmits + 1
        if transmits >= entry.limit {
            entries[subject] = nil
        } else {
            entries[subject]!.transmits = transmits
            entries[subject]!.holders.insert(peer)
            moved.append((subject, entry.order, Self.bucket(priority: entry.priority, transmits: transmits)))
        }
        return .sent
    }

    /// The update as it is sent after waiting `held`: digests and refreshes carry their age.
    static func aged(_ update: GossipUpdate, by held: Duration) -> GossipUpdate {
        switch update {
        case .digest(var d):
            d.age += held
            return .digest(d)
        case .refresh(var r):
            r.age += held
            return .refresh(r)
        case .member, .coordinate:
            return update
        }
    }
}
