import Testing

@testable import IsobarModel
@testable import IsobarRouting

/// The rate-limit and budget math every limit store shares (issue 7): sliding-window counters for
/// requests and tokens per minute, and calendar budget periods.
@Suite struct QuotaTests {
    /// Drives one per-minute limit with requests at `times` (seconds since the epoch); returns the times
    /// accepted.
    func accepted(limit: Double, at times: [Double], cost: Double = 1) -> [Double] {
        var log = SlidingLog(limit: limit)
        return times.enumerated().filter { log.admit(cost: cost, id: UInt64($0.offset), at: $0.element).allowed }
            .map(\.element)
    }

    @Test("a client hammering a 60-RPM limit gets 60 requests in every minute, the first as a burst")
    func hammeredLimitHoldsPerMinute() {
        let start = 1_795_000_017.3
        let times = (0..<(10 * 300)).map { start + Double($0) * 0.1 }  // 10 requests/s for 5 minutes
        let ok = accepted(limit: 60, at: times)
        #expect(ok.count == 300, "60 a minute over five minutes")
        #expect(ok.prefix(60).allSatisfy { $0 < start + 6.05 }, "the whole limit at once")
        for offset in stride(from: 0.0, to: 240, by: 0.35) {
            let from = start + offset
            let inMinute = ok.count { $0 >= from && $0 < from + 60 }
            #expect(inMinute <= 60, "\(inMinute) accepted in the minute from +\(offset) s")
        }
    }

    @Test("a client at or under the limit is never refused")
    func underTheLimitAlwaysPasses() {
        let paced = (0..<500).map { 1_795_000_000.5 + Double($0) }  // exactly 60 a minute
        #expect(accepted(limit: 60, at: paced).count == paced.count)
        let requests = (0..<300).map { 1_795_000_000 + Double($0) * 3 }  // 20 a minute of 500 tokens
        #expect(accepted(limit: 10_000, at: requests, cost: 500).count == requests.count)
    }

    @Test("retry-after is exactly when the same request would pass, if nothing more is used")
    func retryAfterIsExact() {
        var rng = SplitMix64(seed: 9)
        let now = 1_795_000_000.25
        var checked = 0
        for trial in 0..<2000 {
            var log = SlidingLog(limit: 1000)
            var t = now - 75
            for i in 0..<Int.random(in: 1...20, using: &rng) {
                t += Double.random(in: 0...6, using: &rng)
                _ = log.admit(cost: Double.random(in: 1...200, using: &rng), id: UInt64(i), at: min(t, now))
            }
            let cost = Double.random(in: 1...1100, using: &rng)
            let verdict = log.check(cost: cost, at: now)
            guard !verdict.allowed else { continue }
            guard let wait = verdict.retryAfterSeconds else {
                #expect(cost > 1000, "only a request larger than the limit never passes")
                continue
            }
            checked += 1
            #expect(log.check(cost: cost, at: now + wait).allowed, "trial \(trial)")
            if wait > 1e-3 { #expect(!log.check(cost: cost, at: now + wait - 1e-3).allowed, "trial \(trial)") }
        }
        #expect(checked > 300)
    }

    @Test("remaining counts this request; reset is when the newest entry is a minute old")
    func remainingAndReset() {
        var log = SlidingLog(limit: 100)
        let now = 1_795_000_000.0
        _ = log.admit(cost: 50, id: 1, at: now - 70)
        _ = log.admit(cost: 40, id: 2, at: now - 59)
        _ = log.admit(cost: 20, id: 3, at: now - 3)
        let verdict = log.check(cost: 10, at: now)
        #expect(verdict.allowed)
        #expect(verdict.remaining == 100 - 60 - 10, "the entry 70 s old no longer counts")
        #expect(verdict.resetSeconds == 60)
        let refused = log.check(cost: 50, at: now)
        #expect(!refused.allowed && refused.retryAfterSeconds == 1, "once the entry 59 s old expires")
        #expect(refused.resetSeconds == 57)
        let tooBig = log.check(cost: 101, at: now)
        #expect(!tooBig.allowed && tooBig.retryAfterSeconds == nil)
    }

    @Test("a reservation reconciled with what the request used frees or takes the difference")
    func reconciliation() {
        var log = SlidingLog(limit: 1000)
        let now = 1_795_000_000.0
        #expect(log.admit(cost: 800, id: 7, at: now).allowed)  // reserved from max_tokens
        #expect(!log.check(cost: 300, at: now + 1).allowed)
        log.adjust(7, by: -650)  // used 150
        #expect(log.used == 150)
        #expect(log.admit(cost: 300, id: 8, at: now + 1).allowed)
        log.adjust(8, by: 900)  // a stream ran longer than reserved
        #expect(log.used == 1350)
        #expect(!log.check(cost: 1, at: now + 2).allowed)
        log.adjust(99, by: 5)  // unknown or already forgotten: nothing
        log.forget(before: now + 61.5)
        #expect(log.used == 0 && log.entries.isEmpty)
    }

    @Test("budget periods are UTC calendar days and months, across year ends and leap days")
    func budgetPeriods() {
        let t = 1_795_262_400.0  // 2026-11-21T12:00:00Z
        #expect(Budget.Period.day.bounds(containing: t) == (1_795_219_200, 1_795_305_600))
        #expect(Budget.Period.month.bounds(containing: t) == (1_793_491_200, 1_796_083_200))  // Nov 1 – Dec 1
        let december = 1_797_000_000.0  // 2026-12-11
        #expect(Budget.Period.month.bounds(containing: december).end == 1_798_761_600)  // 2027-01-01
        let february = 1_835_000_000.0  // 2028-02-24, a leap year
        let bounds = Budget.Period.month.bounds(containing: february)
        #expect(bounds.end - bounds.start == 29 * 86_400)
        for day in stride(from: Int64(-800_000), through: 800_000, by: 997) {
            let (y, m, d) = Budget.Period.civil(fromDays: day)
            #expect(Budget.Period.days(year: y, month: m, day: d) == day)
        }
    }

    @Test("a budget admits while anything is left, and says when the period ends")
    func budgetCheck() {
        let budget = Budget(usd: 10, period: .day)
        let noon = 1_795_262_400.0
        let open = budget.check(spentUSD: 9.99, at: noon)
        #expect(open.allowed && abs(open.remaining - 0.01) < 1e-9 && open.resetSeconds == 43_200)
        let spent = budget.check(spentUSD: 10.5, at: noon)
        #expect(!spent.allowed && spent.remaining == 0 && spent.retryAfterSeconds == 43_200)
    }
}
