import IsobarModel
import RealModule

/// A running suspicion of one member, with Lifeguard's dynamic timeout: it starts at `maximum` and shrinks
/// towards `minimum` as independent suspicions (confirmations) arrive, as
/// `max(minimum, maximum − (maximum − minimum) · log(c + 1) / log(k + 1))` for `c` of `k` expected.
struct Suspicion: Sendable {
    let incarnation: UInt64
    let startedAt: Instant
    let minimum: Duration
    let maximum: Duration
    let expected: Int
    /// Nodes that suspect the member independently, the first suspecter included.
    var suspecters: Set<NodeID>

    /// When the member is declared dead unless it refutes.
    var deadline: Instant {
        let confirmations = max(0, suspecters.count - 1)
        guard expected > 0, confirmations > 0 else { return startedAt + (expected > 0 ? maximum : minimum) }
        let fraction = Double.log(Double(confirmations + 1)) / Double.log(Double(expected + 1))
        let span = (maximum - minimum).seconds
        let timeout = max(minimum.seconds, maximum.seconds - span * min(1, fraction))
        return startedAt + .nanoseconds(Int64(timeout * 1e9))
    }
}

/// Lifeguard's local health: a score that rises when this node misses acks or nacks it should have got,
/// or has to refute a suspicion of itself (signs that it, not its peers, is slow), and falls with each
/// successful probe. Probe timeouts are multiplied by `score + 1`.
struct LocalHealth: Sendable {
    private(set) var score = 0
    let limit: Int

    init(maximumMultiplier: Int) { limit = max(1, maximumMultiplier) }

    var multiplier: Int { score + 1 }

    mutating func adjust(_ delta: Int) { score = min(limit - 1, max(0, score + delta)) }

    func scaled(_ d: Duration) -> Duration { d * multiplier }
}
