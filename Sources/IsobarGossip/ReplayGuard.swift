import IsobarModel

/// The sizes of the sealed gossip envelope. Sealing lives in the gateway's UDP shell (it needs the crypto
/// library); the instance only needs to know how much of a packet is left for gossip.
///
/// Layout: format (1 byte), key id (4: the first bytes of the key's SHA-256), nonce (12), then AES-256-GCM
/// ciphertext of sequence (8), sending time in Unix milliseconds (8) and the packet, then the tag (16).
/// The associated data is the mesh name.
public enum GossipEnvelope {
    public static let headerBytes = 1 + 4 + 12
    public static let stampBytes = 8 + 8
    public static let tagBytes = 16
    public static let overheadBytes = headerBytes + stampBytes + tagBytes
}

/// Replay protection for opened gossip packets: a packet must have been sent within `window` of this
/// node's wall clock, and its sequence number must be new for its sender (a 64-packet sliding window
/// accepts reordering, not repetition). Senders number packets from their boot time in milliseconds
/// shifted left by 20 bits, so a restarted sender's numbers are higher than its previous life's.
public struct ReplayGuard: Sendable {
    public let windowMilliseconds: UInt64
    private var senders: [NodeID: (highest: UInt64, seen: UInt64)] = [:]
    private let maxSenders = 16_384

    public init(windowMilliseconds: UInt64 = 30_000) { self.windowMilliseconds = windowMilliseconds }

    /// Accepts the packet, or throws `replayed`.
    public mutating func admit(
        sender: NodeID,
        sequence: UInt64,
        sentAtMilliseconds sent: UInt64,
        nowMilliseconds now: UInt64
    ) throws(GossipError) {
        let skew = sent > now ? sent - now : now - sent
        guard skew <= windowMilliseconds else {
            throw GossipError(
                .replayed,
                "sent \(skew) ms from this node's clock, outside the \(windowMilliseconds) ms window"
            )
        }
        guard let known = senders[sender] else {
            if senders.count >= maxSenders { senders.removeAll(keepingCapacity: true) }
            senders[sender] = (sequence, 1)
            return
        }
        if sequence > known.highest {
            let shift = sequence - known.highest
            let seen = shift >= 64 ? 1 : (known.seen << shift) | 1
            senders[sender] = (sequence, seen)
            return
        }
        let back = known.highest - sequence
        guard back < 64 else { throw GossipError(.replayed, "sequence \(sequence) is older than the window") }
        let bit: UInt64 = 1 << back
        guard known.seen & bit == 0 else { throw GossipError(.replayed, "sequence \(sequence) was already accepted") }
        senders[sender] = (known.highest, known.seen | bit)
    }
}
