import DequeModule
import IsobarModel

/// The verdict on one limit for one request, with what the `x-ratelimit-*` and `retry-after` headers say.
public struct QuotaVerdict: Sendable, Equatable {
    public var allowed: Bool
    /// What is left of the limit once this request is counted (nothing when refused).
    public var remaining: Double
    /// Seconds until the limit is back to its full allowance if nothing more is used.
    public var resetSeconds: Double
    /// When refused: seconds until a request of the same cost would pass if nothing more is used; nil when
    /// it never can (it costs more than the whole limit).
    public var retryAfterSeconds: Double?

    public init(allowed: Bool, remaining: Double, resetSeconds: Double, retryAfterSeconds: Double? = nil) {
        self.allowed = allowed
        self.remaining = remaining
        self.resetSeconds = resetSeconds
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// A per-minute limit (requests or tokens) over an exact log of what it admitted in the last minute: no
/// sliding minute ever admits more than the limit, a client that stays under it is never refused, and a
/// burst of up to the whole limit is admitted at once. (A token bucket's burst adds to its rate, and
/// weighted fixed windows admit up to twice the limit in a minute that straddles two of them.) The log
/// holds one entry per admitted request of the last minute; a shared store keeps the same log (a Redis
/// sorted set) and applies the same rule in one script. Times are seconds since the epoch, so every node
/// counts on the same clock.
public struct SlidingLog: Sendable {
    public struct Entry: Sendable, Equatable {
        public var at: Double
        public var units: Double
        /// Names the request, so that its reservation can be reconciled with what it really used.
        public var id: UInt64
    }

    public let limit: Double
    public let seconds: Double
    /// Oldest first.
    public private(set) var entries: Deque<Entry> = []
    /// The units the entries hold.
    public private(set) var used: Double = 0

    public init(limit: Double, seconds: Double = 60) {
        precondition(limit > 0 && seconds > 0, "a sliding log needs a positive limit and length")
        self.limit = limit
        self.seconds = seconds
    }

    /// Whether a request costing `cost` fits at `now`, without recording it.
    public func check(cost: Double, at now: Double) -> QuotaVerdict {
        var used = self.used
        var live = entries[...]
        while let first = live.first, first.at + seconds <= now {
            used -= first.units
            live.removeFirst()
        }
        let reset = live.last.map { $0.at + seconds - now } ?? 0
        if used + cost <= limit {
            return QuotaVerdict(allowed: true, remaining: limit - used - cost, resetSeconds: cost > 0 ? seconds : reset)
        }
        guard cost <= limit else { return QuotaVerdict(allowed: false, remaining: 0, resetSeconds: reset) }
        var left = used
        for entry in live {
            left -= entry.units
            if left + cost <= limit {
                return QuotaVerdict(
                    allowed: false,
                    remaining: 0,
                    resetSeconds: reset,
                    retryAfterSeconds: entry.at + seconds - now
                )
            }
        }
        return QuotaVerdict(allowed: false, remaining: 0, resetSeconds: reset, retryAfterSeconds: reset)
    }

    /// Checks a request and, when it fits, records it as `id`.
    public mutating func admit(cost: Double, id: UInt64, at now: Double) -> QuotaVerdict {
        forget(before: now)
        let verdict = check(cost: cost, at: now)
        if verdict.allowed, cost > 0 {
            entries.append(Entry(at: now, units: cost, id: id))
            used += cost
        }
        return verdict
    }

    /// Reconciles what request `id` reserved with what it used: `delta` more (or fewer) units, for as long
    /// as its entry is in the log.
    public mutating func adjust(_ id: UInt64, by delta: Double) {
        guard let i = entries.lastIndex(where: { $0.id == id }) else { return }
        let units = max(0, entries[i].units + delta)
        used += units - entries[i].units
        entries[i].units = units
    }

    /// Drops the entries a minute old at `now`.
    public mutating func forget(before now: Double) {
        while let first = entries.first, first.at + seconds <= now {
            used -= first.units
            entries.removeFirst()
        }
        if entries.isEmpty { used = 0 }
    }
}

extension Budget {
    /// Whether a request may start with `spentUSD` already spent in the period containing `epochSeconds`:
    /// while anything is left. What a request costs is known only once it is done, so the last request
    /// of a period may overshoot by its own cost.
    public func check(spentUSD: Double, at epochSeconds: Double) -> QuotaVerdict {
        let end = period.bounds(containing: epochSeconds).end
        let left = usd - spentUSD
        return QuotaVerdict(
            allowed: left > 0,
            remaining: max(0, left),
            resetSeconds: end - epochSeconds,
            retryAfterSeconds: left > 0 ? nil : end - epochSeconds
        )
    }
}
