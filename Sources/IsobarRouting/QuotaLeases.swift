import IsobarModel

/// A node's leases on the limits it shares with other nodes through a store (issue 7). Asking the store
/// about every request costs a round trip and a script per request and per settlement; a key sending
/// thousands of requests a second is far from its limits most of the time, so with an admission it sends
/// anyway a node asks for a lease as well: a slice of each limit (requests and tokens of the current
/// minute, requests at once) that the store counts as used at once, and that the node then hands out
/// alone for `duration`, with no round trip. Settlements are kept and sent together once a second.
///
/// A store grants a lease only while a limit has room for many more than it (`headroom` times the live
/// nodes times the slice), so a key near a limit, and any small limit, is decided by the store for every
/// request exactly as without leases. A lease never lets a node admit more than the store counted; what
/// is left of it when it ends is given back, and the requests it admitted are moved to the second they
/// were admitted in, so windows count them when they happened.
///
/// Pure: times (seconds since the epoch on the node's clock) are inputs; what the store granted comes in
/// through `granted`, and what it must be told goes out through `drain`.
public struct QuotaLeases: Sendable {
    /// How long a lease may be used, in seconds.
    public static let duration = 1.0
    /// A limit grants a lease only while it has room for this many times the slice asked for, per live node.
    public static let headroom = 8.0
    /// The fewest and the most requests a lease asks for.
    static let sizes = 8.0...65_536.0

    /// What a node asks the store for, per subject, with an admission.
    public struct Request: Sendable, Equatable {
        public var requests: Double
        public var tokens: Double
        /// Requests at once the node is to hold in the store if granted (its leased requests in flight
        /// included).
        public var slots: Int
        /// US dollars the lease may spend, as the budget's room is checked for it; nil when not known yet
        /// (no request of the subject settled here), which a subject with a budget is never leased without.
        public var usd: Double?

        public init(requests: Double, tokens: Double, slots: Int, usd: Double?) {
            self.requests = requests
            self.tokens = tokens
            self.slots = slots
            self.usd = usd
        }
    }

    /// What the store granted one subject, and what its counts were once the grant was added.
    public struct Grant: Sendable, Equatable {
        public var request: Request
        /// The store's clock when it granted (seconds since the epoch).
        public var storeNow: Double
        /// Requests and tokens counted in the subject's window, this request and the lease included.
        public var requestsCounted: Double
        public var tokensCounted: Double
        /// Spent in the subject's budget period.
        public var spentUSD: Double

        public init(
            request: Request,
            storeNow: Double,
            requestsCounted: Double,
            tokensCounted: Double,
            spentUSD: Double
        ) {
            self.request = request
            self.storeNow = storeNow
            self.requestsCounted = requestsCounted
            self.tokensCounted = tokensCounted
            self.spentUSD = spentUSD
        }
    }

    /// Requests and tokens to add to (or, negative, take from) one second of a subject's window.
    public struct Adjustment: Sendable, Equatable {
        public var second: Int64
        public var requests: Double
        public var tokens: Double

        public init(second: Int64, requests: Double, tokens: Double) {
            self.second = second
            self.requests = requests
            self.tokens = tokens
        }
    }

    /// What the store is to be told about one subject.
    public struct Report: Sendable, Equatable {
        /// Oldest second first.
        public var adjustments: [Adjustment] = []
        /// Requests at once the node now holds in the store, when it holds or held any.
        public var slots: Int?
        /// US dollars spent since the last report.
        public var usd = 0.0

        public init(adjustments: [Adjustment] = [], slots: Int? = nil, usd: Double = 0) {
            self.adjustments = adjustments
            self.slots = slots
            self.usd = usd
        }
    }

    struct Account: Sendable {
        var allowance: Allowance
        /// The lease may be used while the node's clock is before this.
        var expires = -Double.infinity
        /// The store's clock minus the node's, when the lease was granted.
        var offset = 0.0
        /// The second of the store's clock the lease's units were counted in.
        var second: Int64 = 0
        /// What is left of the lease.
        var requests = 0.0
        var tokens = 0.0
        /// What the window counted before the lease, and what the lease has admitted: the headers' figures.
        var baseRequests = 0.0
        var baseTokens = 0.0
        var usedRequests = 0.0
        var usedTokens = 0.0
        var spentUSD = 0.0
        /// Requests at once the store counts for this node, and the leased requests in flight.
        var slots = 0
        var inFlight = 0
        var peakInFlight = 0
        /// Whether the store has been told of slots this node holds (and must be told when they go).
        var holdsSlots = false
        /// A lease is being asked for.
        var renewing = false
        /// Requests the next lease asks for, and whether a lease was granted since it was chosen.
        var size = QuotaLeases.sizes.lowerBound
        var grantedSinceSized = false
        var usdPerRequest: Double?
        /// Not yet reported: window changes by second, and spend.
        var moves: [Int64: (requests: Double, tokens: Double)] = [:]
        var unreportedUSD = 0.0

        init(allowance: Allowance) { self.allowance = allowance }
    }

    var accounts: [QuotaSubject: Account] = [:]

    public init() {}

    /// The admission of `charge` on its subjects' leases alone, counted against them; nil when one of
    /// them has no lease that covers it (the store must decide).
    public mutating func admit(_ charge: QuotaCharge, at now: Double) -> QuotaAdmission? {
        for (subject, allowance) in charge.subjects {
            guard accounts[subject]?.covers(charge.tokens, allowance, at: now) == true else { return nil }
        }
        var admission = QuotaAdmission(leased: true)
        for (subject, _) in charge.subjects {
            accounts[subject]?.take(charge.tokens, at: now, into: &admission)
        }
        return admission
    }

    /// What to ask the store for along with the admission of `charge`, per subject: nil for a subject
    /// whose lease is already being asked for or still covers it. The subjects asked for are marked as being renewed until
    /// `granted` is called for them.
    public mutating func requests(for charge: QuotaCharge, at now: Double) -> [Request?] {
        charge.subjects.map { subject, allowance in
            var account = accounts[subject] ?? Account(allowance: allowance)
            defer { accounts[subject] = account }
            // One renewal at a time, and none of a lease that still covers the request.
            guard !account.renewing, !account.covers(charge.tokens, allowance, at: now) else { return nil }
            account.renewing = true
            account.allowance = allowance
            // Twice what the last lease admitted: more while leases run out, fewer while they lapse.
            if account.grantedSinceSized {
                account.size = min(max(2 * account.usedRequests, Self.sizes.lowerBound), Self.sizes.upperBound)
                account.grantedSinceSized = false
            }
            let size = account.size
            return Request(
                requests: allowance.requestsPerMinute == nil ? 0 : size,
                tokens: allowance.tokensPerMinute == nil ? 0 : size * max(1, charge.tokens),
                slots: allowance.maxConcurrent == nil
                    ? 0 : account.inFlight + max(4, 2 * max(account.peakInFlight, account.inFlight)),
                usd: allowance.budget == nil ? 0 : account.usdPerRequest.map { $0 * size }
            )
        }
    }

    /// What the store answered to the lease asked for `subject`: a grant, or nil (refused, not granted or
    /// not answered). A lease still running is ended first.
    public mutating func granted(_ subject: QuotaSubject, _ grant: Grant?, at now: Double) {
        guard var account = accounts[subject] else { return }
        defer { accounts[subject] = account }
        account.renewing = false
        guard let grant else {
            // No room for it (or no answer): half as much next time.
            account.size = max(Self.sizes.lowerBound, account.size / 2)
            return
        }
        account.grantedSinceSized = true
        account.retire()
        account.expires = now + Self.duration
        account.offset = grant.storeNow - now
        account.second = Int64(grant.storeNow.rounded(.down))
        account.requests = grant.request.requests
        account.tokens = grant.request.tokens
        account.baseRequests = grant.requestsCounted - grant.request.requests
        account.baseTokens = grant.tokensCounted - grant.request.tokens
        account.usedRequests = 0
        account.usedTokens = 0
        account.spentUSD = grant.spentUSD
        account.slots = grant.request.slots
        account.holdsSlots = account.holdsSlots || grant.request.slots > 0
        account.peakInFlight = account.inFlight
    }

    /// Settles a request that ended: its tokens reconciled in the second it was admitted in, its leased
    /// slot freed, its cost kept for the next report.
    public mutating func settle(_ settlement: QuotaSettlement) {
        let second = Int64(settlement.admittedAt.rounded(.down))
        let delta = settlement.usedTokens - settlement.reservedTokens
        for subject in settlement.subjects {
            // A request admitted before the leases were last forgotten still has its cost reported.
            var account = accounts[subject] ?? Account(allowance: Allowance())
            defer { accounts[subject] = account }
            if settlement.leased { account.inFlight = max(0, account.inFlight - 1) }
            if delta != 0, account.allowance.tokensPerMinute != nil { account.move(0, delta, at: second) }
            account.unreportedUSD += settlement.usd
            account.spentUSD += settlement.usd
            account.usdPerRequest = account.usdPerRequest.map { 0.9 * $0 + 0.1 * settlement.usd } ?? settlement.usd
        }
    }

    /// Ends the leases that ran out (giving back what they did not use) and takes what the store is to be
    /// told: per subject with anything to say, its window changes, the slots it holds and its spend.
    public mutating func drain(at now: Double) -> [(QuotaSubject, Report)] {
        var reports: [(QuotaSubject, Report)] = []
        for subject in accounts.keys {
            guard let report = accounts[subject]?.report(at: now) else { continue }
            reports.append((subject, report))
        }
        return reports
    }

    /// Forgets every lease (the store went away: what it counted for them is lost with it, or lapses) and
    /// gives back what was spent and not yet reported, per subject.
    public mutating func reset() -> [(QuotaSubject, Double)] {
        defer { accounts = [:] }
        return accounts.compactMap { $0.value.unreportedUSD > 0 ? ($0.key, $0.value.unreportedUSD) : nil }
    }
}

extension QuotaLeases.Account {
    func covers(_ tokens: Double, _ allowance: Allowance, at now: Double) -> Bool {
        now < expires && allowance == self.allowance
            && (allowance.requestsPerMinute == nil || requests >= 1)
            && (allowance.tokensPerMinute.map { self.tokens >= min(tokens, Double($0)) } ?? true)
            && (allowance.maxConcurrent == nil || inFlight < slots)
            && (allowance.budget.map { spentUSD < $0.usd } ?? true)
    }

    mutating func take(_ cost: Double, at now: Double, into admission: inout QuotaAdmission) {
        let storeNow = now + offset
        let second = Int64(storeNow.rounded(.down))
        let reset = SlidingWindow.end(of: second) - storeNow
        admission.admittedAt = admission.admittedAt ?? storeNow
        inFlight += 1
        peakInFlight = max(peakInFlight, inFlight)
        if let rpm = allowance.requestsPerMinute {
            requests -= 1
            usedRequests += 1
            admission.requests = .tightest(
                admission.requests,
                QuotaWindow(
                    limit: Double(rpm),
                    remaining: Double(rpm) - baseRequests - usedRequests,
                    resetSeconds: reset
                )
            )
        }
        var tokens = 0.0
        if let tpm = allowance.tokensPerMinute {
            tokens = min(cost, Double(tpm))
            self.tokens -= tokens
            usedTokens += tokens
            admission.tokens = .tightest(
                admission.tokens,
                QuotaWindow(limit: Double(tpm), remaining: Double(tpm) - baseTokens - usedTokens, resetSeconds: reset)
            )
        }
        // The lease's units were counted in the second it was granted in; this one belongs to its own.
        if second != self.second {
            move(-1, -tokens, at: self.second)
            move(1, tokens, at: second)
        }
    }

    mutating func move(_ requests: Double, _ tokens: Double, at second: Int64) {
        let moved = moves[second] ?? (0, 0)
        moves[second] = (moved.requests + requests, moved.tokens + tokens)
    }

    /// Gives back what is left of the lease.
    mutating func retire() {
        if requests > 0 || tokens > 0 { move(-requests, -tokens, at: second) }
        requests = 0
        tokens = 0
        expires = -.infinity
    }

    mutating func report(at now: Double) -> QuotaLeases.Report? {
        if now >= expires {
            retire()
            // Only the leased requests still in flight keep their slots.
            slots = inFlight
        }
        var report = QuotaLeases.Report(usd: unreportedUSD)
        report.adjustments = moves.filter { $0.value != (0, 0) }.sorted { $0.key < $1.key }.map {
            QuotaLeases.Adjustment(second: $0.key, requests: $0.value.requests, tokens: $0.value.tokens)
        }
        if holdsSlots {
            report.slots = slots
            holdsSlots = slots > 0
        }
        moves = [:]
        unreportedUSD = 0
        guard !report.adjustments.isEmpty || report.slots != nil || report.usd > 0 else { return nil }
        return report
    }
}
