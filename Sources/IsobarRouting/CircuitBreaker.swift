import IsobarModel

/// A backend's circuit breaker, a pure state machine driven by the outcomes of the attempts sent to it.
///
/// Closed, it admits everything and counts failures in a row and the failures among the last `window`
/// outcomes. At `threshold` failures in a row, or once `errorRate` of a full window failed (a backend
/// failing every other call never strings many failures together), it opens: nothing is admitted until
/// the cooldown ends. Then it is half-open: exactly one attempt (the probe) is admitted; its success
/// closes the breaker, its failure opens it again with the next, longer cooldown. Cooldowns double from a
/// quarter of `maxCooldown` up to `maxCooldown`, so a backend that keeps failing is probed less and less
/// often, and one that recovers gets its traffic back within `maxCooldown` (30 s by default).
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case closed
        case open(until: Instant)
        /// The cooldown ended; `probing` while the one admitted attempt is in flight.
        case halfOpen(probing: Bool)
    }

    public private(set) var state: State = .closed
    /// Failures in a row while closed.
    private var failures = 0
    /// Times it opened since it was last closed by a success.
    private var opens = 0
    /// The outcomes of the last attempts while closed, newest in bit 0 (1: failed), and how many.
    private var recent: UInt64 = 0
    private var outcomes = 0
    private let threshold: Int
    private let maxCooldown: Duration
    private let window: Int
    private let errorRate: Double

    /// `window` is clamped to 2...64 attempts; an `errorRate` of 1 or more opens on the window only when
    /// all of it failed.
    public init(threshold: Int, maxCooldown: Duration, window: Int = 20, errorRate: Double = 0.5) {
        self.threshold = max(1, threshold)
        self.maxCooldown = maxCooldown
        self.window = min(64, max(2, window))
        self.errorRate = errorRate
    }

    /// Whether an attempt may be sent at `now`.
    public func admits(at now: Instant) -> Bool {
        switch state {
        case .closed: true
        case .open(let until): now >= until
        case .halfOpen(let probing): !probing
        }
    }

    /// An attempt was sent at `now`: past an open breaker's cooldown it is the probe.
    public mutating func attemptStarted(at now: Instant) {
        switch state {
        case .open(let until) where now >= until: state = .halfOpen(probing: true)
        case .halfOpen(probing: false): state = .halfOpen(probing: true)
        default: break
        }
    }

    /// An attempt succeeded (or the backend answered, even with the caller's error): close.
    public mutating func succeeded() {
        if state == .closed {
            record(failed: false)
        } else {
            state = .closed
        }
        failures = 0
        opens = 0
    }

    /// An attempt failed at `now` because of the backend.
    public mutating func failed(at now: Instant) {
        switch state {
        case .closed:
            failures += 1
            record(failed: true)
            let mask: UInt64 = window == 64 ? ~0 : (1 << window) - 1
            let windowFailed = Double((recent & mask).nonzeroBitCount) >= errorRate * Double(window)
            if failures >= threshold || (outcomes >= window && windowFailed) { open(at: now) }
        case .halfOpen, .open:
            open(at: now)
        }
    }

    /// The failed share of the last attempts while closed (up to the window), 0 before any.
    public var recentErrorRate: Double {
        guard outcomes > 0 else { return 0 }
        let mask: UInt64 = outcomes == 64 ? ~0 : (1 << outcomes) - 1
        return Double((recent & mask).nonzeroBitCount) / Double(outcomes)
    }

    private mutating func record(failed: Bool) {
        recent = recent << 1 | (failed ? 1 : 0)
        outcomes = min(outcomes + 1, window)
    }

    /// A health probe reached the backend again after it could not be reached: an open breaker skips the
    /// rest of its cooldown and admits its one probe attempt now, so a backend back from an outage gets
    /// traffic within a scrape interval, while a real call still decides whether it closes.
    public mutating func reachedAgain() {
        if case .open = state { state = .halfOpen(probing: false) }
    }

    /// An attempt ended without an outcome (the client left): a probe in flight no longer is.
    public mutating func abandoned() {
        if state == .halfOpen(probing: true) { state = .halfOpen(probing: false) }
    }

    /// The cooldown after the `opens`-th opening in a row (0 for the first).
    public func cooldown(opens: Int) -> Duration {
        let quarter = maxCooldown / 4
        return min(maxCooldown, quarter * (1 << min(opens, 30)))
    }

    private mutating func open(at now: Instant) {
        state = .open(until: now + cooldown(opens: opens))
        opens += 1
        failures = 0
        recent = 0
        outcomes = 0
    }
}
