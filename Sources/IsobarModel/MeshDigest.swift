/// What one node tells the mesh about the load on the backends it sees: the gauges it scraped and its own
/// in-flight ledger. Nodes of other regions route on it when they cannot scrape those backends themselves.
public struct LoadDigest: Sendable, Equatable {
    /// One backend's load as the publishing node sees it.
    public struct Entry: Sendable, Equatable {
        public var backend: BackendID
        /// Scraped gauges (nil when the node does not scrape this backend or the scrape is stale).
        public var waiting: Int?
        public var running: Int?
        /// Fraction of KV-cache blocks in use, 0–1, quantised to 1/250 on the wire.
        public var kvUsage: Double?
        /// The publishing node's own requests in flight there.
        public var inFlight: Int
        /// Of those, prompt tokens not yet prefilled.
        public var pendingPrefillTokens: Int

        public init(
            backend: BackendID,
            waiting: Int? = nil,
            running: Int? = nil,
            kvUsage: Double? = nil,
            inFlight: Int = 0,
            pendingPrefillTokens: Int = 0
        ) {
            self.backend = backend
            self.waiting = waiting
            self.running = running
            self.kvUsage = kvUsage
            self.inFlight = inFlight
            self.pendingPrefillTokens = pendingPrefillTokens
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry] = []) { self.entries = entries }
}

/// What one node tells the mesh about the health of the backends it calls: breaker state, error rate and
/// observed time to first token.
public struct HealthDigest: Sendable, Equatable {
    /// A backend's state as one node sees it, worst last.
    public enum State: UInt8, Sendable, Equatable, CaseIterable, CustomStringConvertible {
        case healthy = 0
        /// The breaker is half-open: one probe call is allowed.
        case probing = 1
        /// The backend asked not to be sent requests (`retry-after`).
        case paused = 2
        /// The last call or probe could not reach it.
        case unreachable = 3
        /// The breaker is open.
        case open = 4

        public var description: String {
            switch self {
            case .healthy: "healthy"
            case .probing: "half-open"
            case .paused: "paused"
            case .unreachable: "unreachable"
            case .open: "open"
            }
        }
    }

    /// One backend's health as the publishing node sees it.
    public struct Entry: Sendable, Equatable {
        public var backend: BackendID
        public var state: State
        /// Failed share of the breaker's recent attempts, 0–1, quantised to 1/250 on the wire.
        public var errorRate: Double
        /// Observed time to first token, in milliseconds, when the node has seen any.
        public var ttftP50Ms: Int?
        public var ttftP99Ms: Int?

        public init(
            backend: BackendID,
            state: State = .healthy,
            errorRate: Double = 0,
            ttftP50Ms: Int? = nil,
            ttftP99Ms: Int? = nil
        ) {
            self.backend = backend
            self.state = state
            self.errorRate = errorRate
            self.ttftP50Ms = ttftP50Ms
            self.ttftP99Ms = ttftP99Ms
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry] = []) { self.entries = entries }
}
