import Testing

@testable import IsobarModel
@testable import IsobarRouting

/// The rate-limit and budget math every limit store shares (issue 7): sliding-window counters for
/// requests and tokens per minute, and calendar budget periods.
@Suite struct QuotaTests {
    /// Drives one per-minute limit with requests at `times` (seconds since the epoch); returns the times
    /// accepted.
    func accepted(limit: Double, at times: [Double], cost: Double = 1) -> [Double] {
        var window = SlidingWindow(limit: limit)
        return times.filter { window.admit(cost: cost, at: $0).allowed }
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

    @Test("a client under the limit is never refused; one paced exactly at it waits at most a second")
    func underTheLimitAlwaysPasses() {
        let under = (0..<500).map { 1_795_000_000.5 + Double($0) * 61 / 60 }  // just under 60 a minute
        #expect(accepted(limit: 60, at: under).count == under.count)
        let requests = (0..<300).map { 1_795_000_000 + Double($0) * 3.1 }  // under 20 a minute of 500 tokens
        #expect(accepted(limit: 10_000, at: requests, cost: 500).count == requests.count)
        // Exactly 60 a minute, each refused request retried when retry-after says: never more than a
        // second late, and 60 in every minute.
        var window = SlidingWindow(limit: 60)
        var next = 1_795_000_000.5
        var admitted: [Double] = []
        while admitted.count < 400 {
            let verdict = window.admit(cost: 1, at: next)
            if verdict.allowed {
                admitted.append(next)
                next += 1
            } else {
                let wait = verdict.retryAfterSeconds ?? .infinity
                #expect(wait <= 1, "waited \(wait) s at \(next)")
                next += wait
            }
        }
        #expect(admitted.last! - admitted.first! < 400 * 61 / 60, "about 60 a minute")
    }

    @Test("retry-after is exactly when the same request would pass, if nothing more is used")
    func retryAfterIsExact() {
        var rng = SplitMix64(seed: 9)
        let now = 1_795_000_000.25
        var checked = 0
        for trial in 0..<2000 {
            var window = SlidingWindow(limit: 1000)
            var t = now - 75
            for _ in 0..<Int.random(in: 1...20, using: &rng) {
                t += Double.random(in: 0...6, using: &rng)
                _ = window.admit(cost: Double.random(in: 1...200, using: &rng), at: min(t, now))
            }
            let cost = Double.random(in: 1...1100, using: &rng)
            let verdict = window.check(cost: cost, at: now)
            guard !verdict.allowed else { continue }
            guard let wait = verdict.retryAfterSeconds else {
                #expect(cost > 1000, "only a request larger than the limit never passes")
                continue
            }
            checked += 1
            #expect(window.check(cost: cost, at: now + wait).allowed, "trial \(trial)")
            if wait > 1e-3 { #expect(!window.check(cost: cost, at: now + wait - 1e-3).allowed, "trial \(trial)") }
        }
        #expect(checked > 300)
    }

    @Test("remaining counts this request; a bucket counts until 61 s after its second began")
    func remainingAndReset() {
        var window = SlidingWindow(limit: 100)
        let now = 1_795_000_000.25
        _ = window.admit(cost: 30, at: now - 61)  // its second ended 60.25 s ago: no longer counts
        _ = window.admit(cost: 40, at: now - 59.5)
        _ = window.admit(cost: 20, at: now - 3)
        _ = window.admit(cost: 5, at: now - 2.9)  // the same second: one bucket
        #expect(window.buckets.count == 3)
        let verdict = window.check(cost: 10, at: now)
        #expect(verdict.allowed)
        #expect(verdict.remaining == 100 - 65 - 10, "the request 61 s old no longer counts")
        #expect(verdict.resetSeconds == 60.75, "this request's second ends, plus a minute")
        let refused = window.check(cost: 50, at: now)
        #expect(!refused.allowed && refused.retryAfterSeconds == 0.75, "once the bucket 59.5 s old stops counting")
        #expect(refused.resetSeconds == 57.75)
        let tooBig = window.check(cost: 101, at: now)
        #expect(!tooBig.allowed && tooBig.retryAfterSeconds == nil)
        window.forget(before: now)
        #expect(window.buckets.count == 2 && window.used == 65)
    }

    @Test("a reservation reconciled with what the request used frees or takes the difference")
    func reconciliation() {
        var window = SlidingWindow(limit: 1000)
        let now = 1_795_000_000.0
        #expect(window.admit(cost: 800, at: now).allowed)  // reserved from max_tokens
        #expect(!window.check(cost: 300, at: now + 1).allowed)
        window.adjust(admittedAt: now + 0.5, by: -650)  // used 150
        #expect(window.used == 150)
        #expect(window.admit(cost: 300, at: now + 1).allowed)
        window.adjust(admittedAt: now + 1, by: 900)  // a stream ran longer than reserved
        #expect(window.used == 1350)
        #expect(!window.check(cost: 1, at: now + 2).allowed)
        window.adjust(admittedAt: now - 90, by: 5)  // a bucket no longer kept: nothing
        #expect(window.used == 1350)
        window.adjust(admittedAt: now, by: -10_000)  // never below nothing
        #expect(window.used == 1200)
        window.forget(before: now + 62)
        #expect(window.used == 0 && window.buckets.isEmpty)
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
