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

/// A per-minute limit (requests or tokens) counted in one-second buckets: a request counts for the rest of
/// the second it was admitted in and the 60 seconds after, so no 60-second window ever admits more than
/// the limit, a burst of up to the whole limit is admitted at once, and a client paced at the limit waits
/// at most a second now and then. (A token bucket's burst adds to its rate, and weighted fixed windows
/// admit up to twice the limit in a minute that straddles two of them.) It holds at most 61 buckets
/// whatever the rate, and a shared store keeps the same buckets (a Redis hash) and applies the same rule
/// in one script. Times are seconds since the epoch, so every node counts on the same clock.
public struct SlidingWindow: Sendable {
    public struct Bucket: Sendable, Equatable {
        /// The whole second (since the epoch) the bucket counts.
        public var second: Int64
        public var units: Double
    }

    /// How many buckets past the current one still count: a bucket stops counting 61 seconds after it
    /// began.
    public static let span: Int64 = 60

    /// Units per minute; may change (a node's share of a limit follows the live nodes).
    public var limit: Double
    /// Oldest first.
    public private(set) var buckets: Deque<Bucket> = []
    /// The units the buckets hold.
    public private(set) var used: Double = 0

    public init(limit: Double) {
        precondition(limit > 0, "a sliding window needs a positive limit")
        self.limit = limit
    }

    /// The bucket of `now`, and the oldest bucket still counting then.
    static func seconds(at now: Double) -> (current: Int64, oldest: Int64) {
        let current = Int64(now.rounded(.down))
        return (current, current - span)
    }

    /// When a bucket's units stop counting.
    public static func end(of second: Int64) -> Double { Double(second + span + 1) }

    /// Whether a request costing `cost` fits at `now`, without recording it.
    public func check(cost: Double, at now: Double) -> QuotaVerdict {
        let oldest = Self.seconds(at: now).oldest
        var used = self.used
        var live = buckets[...]
        while let first = live.first, first.second < oldest {
            used -= first.units
            live.removeFirst()
        }
        let reset = live.last.map { Self.end(of: $0.second) - now } ?? 0
        if used + cost <= limit {
            let resetSeconds = cost > 0 ? Self.end(of: Self.seconds(at: now).current) - now : reset
            return QuotaVerdict(allowed: true, remaining: limit - used - cost, resetSeconds: resetSeconds)
        }
        guard cost <= limit else { return QuotaVerdict(allowed: false, remaining: 0, resetSeconds: reset) }
        var left = used
        for bucket in live {
            left -= bucket.units
            if left + cost <= limit {
                return QuotaVerdict(
                    allowed: false,
                    remaining: 0,
                    resetSeconds: reset,
                    retryAfterSeconds: Self.end(of: bucket.second) - now
                )
            }
        }
        return QuotaVerdict(allowed: false, remaining: 0, resetSeconds: reset, retryAfterSeconds: reset)
    }

    /// Checks a request and, when it fits, counts it in the bucket of `now`.
    public mutating func admit(cost: Double, at now: Double) -> QuotaVerdict {
        forget(before: now)
        let verdict = check(cost: cost, at: now)
        if verdict.allowed, cost > 0 {
            let second = Self.seconds(at: now).current
            if let last = buckets.last, last.second >= second {
                buckets[buckets.count - 1].units += cost
            } else {
                buckets.append(Bucket(second: second, units: cost))
            }
            used += cost
        }
        return verdict
    }

    /// Reconciles what a request admitted at `admittedAt` reserved with what it used: `delta` more (or
    /// fewer) units in its bucket, for as long as the bucket counts (never below nothing).
    public mutating func adjust(admittedAt: Double, by delta: Double) {
        let second = Self.seconds(at: admittedAt).current
        guard let i = buckets.lastIndex(where: { $0.second == second }) else { return }
        let units = max(0, buckets[i].units + delta)
        used += units - buckets[i].units
        buckets[i].units = units
    }

    /// Drops the buckets that no longer count at `now`.
    public mutating func forget(before now: Double) {
        let oldest = Self.seconds(at: now).oldest
        while let first = buckets.first, first.second < oldest {
            used -= first.units
            buckets.removeFirst()
        }
        if buckets.isEmpty { used = 0 }
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

/// Whose limits a request counts against: its key's, and its team's.
public struct QuotaSubject: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case key
        case team
    }

    public var kind: Kind
    public var name: String

    public init(_ kind: Kind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    /// `key:NAME` or `team:NAME`: how stores name it.
    public var description: String { "\(kind.rawValue):\(name)" }
}

/// The limit that refused a request.
public enum QuotaLimit: String, Sendable, Equatable {
    case requests
    case tokens
    case concurrent
    case budget
}

/// One request's claim on its subjects' limits.
public struct QuotaCharge: Sendable {
    /// The request, so that its reservation can be settled.
    public var id: UInt64
    /// Tokens reserved at admission: the prompt estimate and the expected output.
    public var tokens: Double
    public var subjects: [(subject: QuotaSubject, allowance: Allowance)]

    public init(id: UInt64, tokens: Double, subjects: [(subject: QuotaSubject, allowance: Allowance)]) {
        self.id = id
        self.tokens = tokens
        self.subjects = subjects
    }
}

/// What a request really used, settled against its reservation when it ends.
public struct QuotaSettlement: Sendable, Equatable {
    public var id: UInt64
    public var subjects: [QuotaSubject]
    public var reservedTokens: Double
    public var usedTokens: Double
    public var usd: Double
    /// When the request was admitted, on the store's clock (`QuotaAdmission.admittedAt`): its
    /// reservation is reconciled in that second's bucket while the bucket counts.
    public var admittedAt: Double
    /// Whether it was admitted on the node's leases (`QuotaAdmission.leased`).
    public var leased: Bool

    public init(
        id: UInt64,
        subjects: [QuotaSubject],
        reservedTokens: Double,
        usedTokens: Double,
        usd: Double,
        admittedAt: Double,
        leased: Bool = false
    ) {
        self.id = id
        self.subjects = subjects
        self.reservedTokens = reservedTokens
        self.usedTokens = usedTokens
        self.usd = usd
        self.admittedAt = admittedAt
        self.leased = leased
    }
}

/// A per-minute window as the `x-ratelimit-*` headers show it: the tightest of the request's subjects.
public struct QuotaWindow: Sendable, Equatable {
    public var limit: Double
    public var remaining: Double
    public var resetSeconds: Double

    public init(limit: Double, remaining: Double, resetSeconds: Double) {
        self.limit = limit
        self.remaining = remaining
        self.resetSeconds = resetSeconds
    }

    /// Of the window shown so far (if any) and `other`, the one with less remaining (the first on a tie).
    public static func tightest(_ shown: QuotaWindow?, _ other: QuotaWindow) -> QuotaWindow {
        guard let shown, shown.remaining <= other.remaining else { return other }
        return shown
    }
}

/// The answer to a charge: admitted or not, with what the rate-limit headers say.
public struct QuotaAdmission: Sendable, Equatable {
    public struct Refusal: Sendable, Equatable {
        public var subject: QuotaSubject
        public var limit: QuotaLimit
        /// What the limit is (requests, tokens, requests at once, or US dollars).
        public var value: Double
        /// Seconds until the same request may pass; nil when it never can (it needs more than the limit).
        public var retryAfterSeconds: Double?

        public init(subject: QuotaSubject, limit: QuotaLimit, value: Double, retryAfterSeconds: Double?) {
            self.subject = subject
            self.limit = limit
            self.value = value
            self.retryAfterSeconds = retryAfterSeconds
        }
    }

    public var refusal: Refusal?
    public var requests: QuotaWindow?
    public var tokens: QuotaWindow?
    /// When the store counted the request, on its own clock (a shared store's, not the node's): what
    /// the request's settlement names. Nil when the store did not say.
    public var admittedAt: Double?
    /// Admitted by the node alone on leases a shared store granted it (`QuotaLeases`), not by the store.
    public var leased: Bool

    public init(
        refusal: Refusal? = nil,
        requests: QuotaWindow? = nil,
        tokens: QuotaWindow? = nil,
        admittedAt: Double? = nil,
        leased: Bool = false
    ) {
        self.refusal = refusal
        self.requests = requests
        self.tokens = tokens
        self.admittedAt = admittedAt
        self.leased = leased
    }

    public var admitted: Bool { refusal == nil }
}

/// The limits and budgets of every subject, counted by one node: the in-memory store, and a node's
/// fallback while a shared store is unreachable. A charge is all or nothing: refused by one subject, it
/// is recorded against none. Times are seconds since the epoch.
public struct QuotaLedger: Sendable {
    struct Account: Sendable {
        var requests: SlidingWindow?
        var tokens: SlidingWindow?
        var inFlight = 0
        /// Start of the budget period `spentUSD` counts in.
        var periodStart = -Double.infinity
        var spentUSD = 0.0
        /// Spent in the period elsewhere, as last known (a shared store's figure when it went away).
        var baseUSD = 0.0
    }

    var accounts: [QuotaSubject: Account] = [:]

    public init() {}

    /// Checks `charge` against every subject's limits and, when all pass, records it.
    ///
    /// - Parameter share: The part of each limit this node may use alone (1 by itself; 1/N of a shared
    ///   limit while N live nodes each count on their own). Budgets count what is spent here that many
    ///   times over on top of what was known to be spent elsewhere.
    public mutating func admit(_ charge: QuotaCharge, at now: Double, share: Double = 1) -> QuotaAdmission {
        // Accounts are changed in place: a copy would copy its windows.
        var admission = QuotaAdmission(admittedAt: now)
        for (subject, allowance) in charge.subjects {
            accounts[subject, default: Account()].prepare(allowance, share: share, at: now)
            if let refusal = accounts[subject]?.refusal(for: charge, subject, allowance, share: share, at: now) {
                admission.refusal = refusal
                // The headers of a refusal show the windows as they are, this request not counted.
                for (subject, _) in charge.subjects { accounts[subject]?.show(into: &admission, at: now) }
                return admission
            }
        }
        for (subject, _) in charge.subjects {
            accounts[subject]?.record(charge, at: now, into: &admission)
        }
        return admission
    }

    /// Settles a request that ended: its tokens reconciled with what it used, its slot freed and its
    /// cost added to the budget periods.
    public mutating func settle(_ settlement: QuotaSettlement, at now: Double) {
        for subject in settlement.subjects {
            accounts[subject]?.settle(settlement, at: now)
        }
    }

    /// What `subject` spent in the budget period of `period` containing `now` (here, plus the base).
    public func spent(_ subject: QuotaSubject, period: Budget.Period, at now: Double) -> Double {
        guard let account = accounts[subject], account.periodStart == period.bounds(containing: now).start else {
            return 0
        }
        return account.baseUSD + account.spentUSD
    }

    /// Sets what `subject` is known to have spent elsewhere in the current period (what a shared store
    /// held when it went away); what is spent here from now on counts on top of it.
    public mutating func setBase(_ subject: QuotaSubject, usd: Double, period: Budget.Period, at now: Double) {
        var account = accounts[subject] ?? Account()
        account.periodStart = period.bounds(containing: now).start
        account.baseUSD = usd
        account.spentUSD = 0
        accounts[subject] = account
    }

    /// Forgets every subject's counts (a node back on its shared store starts afresh next time).
    public mutating func reset() { accounts = [:] }
}

extension QuotaLedger.Account {
    /// Makes the windows match the allowance at this share, and starts a new budget period when one began.
    mutating func prepare(_ allowance: Allowance, share: Double, at now: Double) {
        Self.limit(&requests, allowance.requestsPerMinute, share: share)
        Self.limit(&tokens, allowance.tokensPerMinute, share: share)
        if let budget = allowance.budget {
            let start = budget.period.bounds(containing: now).start
            if start != periodStart {
                periodStart = start
                spentUSD = 0
                baseUSD = 0
            }
        }
    }

    private static func limit(_ window: inout SlidingWindow?, _ limit: Int?, share: Double) {
        guard let limit else {
            window = nil
            return
        }
        let scaled = max(min(Double(limit), 1), Double(limit) * share)
        if window == nil { window = SlidingWindow(limit: scaled) } else { window?.limit = scaled }
    }

    mutating func settle(_ settlement: QuotaSettlement, at now: Double) {
        inFlight = max(0, inFlight - 1)
        tokens?.adjust(admittedAt: settlement.admittedAt, by: settlement.usedTokens - settlement.reservedTokens)
        spentUSD += settlement.usd
    }

    func refusal(
        for charge: QuotaCharge,
        _ subject: QuotaSubject,
        _ allowance: Allowance,
        share: Double,
        at now: Double
    ) -> QuotaAdmission.Refusal? {
        if let max = allowance.maxConcurrent {
            let scaled = Swift.max(1, (Double(max) * share).rounded(.up))
            if Double(inFlight) >= scaled {
                return .init(subject: subject, limit: .concurrent, value: scaled, retryAfterSeconds: 1)
            }
        }
        func refused(_ limit: QuotaLimit, _ value: Double, _ verdict: QuotaVerdict) -> QuotaAdmission.Refusal? {
            verdict.allowed
                ? nil
                : .init(subject: subject, limit: limit, value: value, retryAfterSeconds: verdict.retryAfterSeconds)
        }
        if let window = requests, let refusal = refused(.requests, window.limit, window.check(cost: 1, at: now)) {
            return refusal
        }
        if let window = tokens,
            let refusal = refused(.tokens, window.limit, window.check(cost: min(charge.tokens, window.limit), at: now))
        {
            return refusal
        }
        if let budget = allowance.budget {
            return refused(.budget, budget.usd, budget.check(spentUSD: baseUSD + spentUSD / share, at: now))
        }
        return nil
    }

    func show(into admission: inout QuotaAdmission, at now: Double) {
        if let requests {
            admission.requests = .tightest(
                admission.requests,
                QuotaWindow(limit: requests.limit, requests.check(cost: 0, at: now))
            )
        }
        if let tokens {
            admission.tokens = .tightest(
                admission.tokens,
                QuotaWindow(limit: tokens.limit, tokens.check(cost: 0, at: now))
            )
        }
    }

    mutating func record(_ charge: QuotaCharge, at now: Double, into admission: inout QuotaAdmission) {
        inFlight += 1
        if let verdict = requests?.admit(cost: 1, at: now), let limit = requests?.limit {
            admission.requests = .tightest(admission.requests, QuotaWindow(limit: limit, verdict))
        }
        // A request estimated above the whole limit is let through alone, reserving the whole limit.
        if let limit = tokens?.limit,
            let verdict = tokens?.admit(cost: min(charge.tokens, limit), at: now)
        {
            admission.tokens = .tightest(admission.tokens, QuotaWindow(limit: limit, verdict))
        }
    }
}

extension QuotaWindow {
    /// A limit's window as a verdict on it leaves it.
    init(limit: Double, _ verdict: QuotaVerdict) {
        self.init(limit: limit, remaining: verdict.remaining, resetSeconds: verdict.resetSeconds)
    }
}
