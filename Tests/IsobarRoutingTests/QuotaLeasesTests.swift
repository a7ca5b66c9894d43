import Testing

@testable import IsobarModel
@testable import IsobarRouting

/// A node's leases on shared limits: it admits alone only within what the store granted and counted, gives
/// back what it did not use, and moves what it admitted to the seconds it admitted it in.
@Suite struct QuotaLeasesTests {
    static let key = QuotaSubject(.key, "k")
    static let team = QuotaSubject(.team, "t")
    let start = 1_795_000_000.0
    let allowance = Allowance(requestsPerMinute: 100_000, tokensPerMinute: 10_000_000, maxConcurrent: 1_000)

    func charge(_ id: UInt64, tokens: Double = 10, _ allowance: Allowance? = nil) -> QuotaCharge {
        QuotaCharge(id: id, tokens: tokens, subjects: [(Self.key, allowance ?? self.allowance)])
    }

    func settlement(_ admission: QuotaAdmission, id: UInt64 = 1, used: Double = 10, usd: Double = 0) -> QuotaSettlement
    {
        QuotaSettlement(
            id: id,
            subjects: [Self.key],
            reservedTokens: 10,
            usedTokens: used,
            usd: usd,
            admittedAt: admission.admittedAt ?? 0,
            leased: admission.leased
        )
    }

    /// Asks for a lease with an admission and grants it as a store would, `counted` already in the window
    /// (this request and the lease included); the request asked for.
    @discardableResult
    func lease(
        _ book: inout QuotaLeases,
        _ charge: QuotaCharge,
        at now: Double,
        storeNow: Double? = nil,
        counted: Double? = nil
    ) -> QuotaLeases.Request? {
        guard let request = book.requests(for: charge, at: now)[0] else { return nil }
        let grant = QuotaLeases.Grant(
            request: request,
            storeNow: storeNow ?? now,
            requestsCounted: counted ?? (1 + request.requests),
            tokensCounted: charge.tokens + request.tokens,
            spentUSD: 0
        )
        book.granted(Self.key, grant, at: now)
        return request
    }

    @Test("without a lease the store decides; a lease is asked for once at a time and then admits alone")
    func leaseAdmitsAloneWithinItsGrant() throws {
        var book = QuotaLeases()
        #expect(book.admit(charge(1), at: start) == nil, "no lease yet: the store decides")
        let requestAnswer = book.requests(for: charge(1), at: start)[0]
        let request = try #require(requestAnswer)
        #expect(request == .init(requests: 8, tokens: 80, slots: 4, usd: 0))
        #expect(book.requests(for: charge(2), at: start)[0] == nil, "one renewal at a time")
        book.granted(
            Self.key,
            .init(request: request, storeNow: start, requestsCounted: 109, tokensCounted: 1090, spentUSD: 0),
            at: start
        )
        // Four slots: four admitted on the lease, then the store decides again.
        let admitted = (2...6).map { book.admit(charge(UInt64($0)), at: start) }
        #expect(admitted.map { $0 != nil } == [true, true, true, true, false])
        let first = try #require(admitted[0])
        #expect(first.leased)
        // The headers count from what the window held before the lease (100 plus the renewing request).
        #expect(first.requests == QuotaWindow(limit: 100_000, remaining: 99_898, resetSeconds: 61))
        #expect(first.tokens == QuotaWindow(limit: 10_000_000, remaining: 10_000_000 - 1010 - 10, resetSeconds: 61))
        // A settled request frees its slot for the next.
        book.settle(settlement(first))
        #expect(book.admit(charge(7), at: start) != nil)
    }

    @Test("a lease runs out after its requests or its time, and the store decides again")
    func leaseEndsWhenUsedOrLapsed() throws {
        var book = QuotaLeases()
        let open = Allowance(requestsPerMinute: 100_000)
        lease(&book, charge(0, open), at: start)
        let admitted = (1...9).map { book.admit(charge(UInt64($0), open), at: start) != nil }
        #expect(admitted == Array(repeating: true, count: 8) + [false])
        // Exhausted in its first second: the next lease asks for twice as many.
        #expect(lease(&book, charge(10, open), at: start)?.requests == 16)
        #expect((1...16).allSatisfy { book.admit(charge(UInt64(20 + $0), open), at: start) != nil })
        #expect(book.requests(for: charge(40, open), at: start)[0]?.requests == 32)
        // The store has no room for 32 (near the limit): half as many next time.
        book.granted(Self.key, nil, at: start)
        #expect(lease(&book, charge(41, open), at: start)?.requests == 16)
        #expect(book.admit(charge(11, open), at: start + QuotaLeases.duration) == nil, "lapsed")
        // A key whose allowance changed (a reloaded topology) is not admitted on the old terms.
        lease(&book, charge(12, open), at: start + 2)
        #expect(book.admit(charge(13, Allowance(requestsPerMinute: 50_000)), at: start + 2) == nil)
    }

    @Test(
        "what a lease did not use is given back in the second it was counted in, and admissions move to their own second"
    )
    func unusedUnitsReturnAndAdmissionsMove() throws {
        var book = QuotaLeases()
        let open = Allowance(requestsPerMinute: 100_000, tokensPerMinute: 10_000_000)
        // The store's clock runs 0.25 s ahead of the node's: its second is start + 1 at the node's start + 0.75.
        lease(&book, charge(0, open), at: start, storeNow: start + 0.25)
        #expect(book.admit(charge(1, open), at: start + 0.125) != nil)
        let lateAnswer = book.admit(charge(2, open), at: start + 0.75)
        let late = try #require(lateAnswer)
        #expect(late.admittedAt == start + 1)
        #expect(late.requests?.resetSeconds == 61)
        let second = Int64(start)
        let moved = book.drain(at: start + 0.875)
        #expect(moved.count == 1 && moved[0].0 == Self.key)
        #expect(
            moved[0].1.adjustments == [
                .init(second: second, requests: -1, tokens: -10),
                .init(second: second + 1, requests: 1, tokens: 10),
            ],
            "the late admission moves to its own second"
        )
        #expect(moved[0].1.slots == nil, "no concurrency limit: no slots held")
        // Lapsed: 8 granted, 2 used, 6 given back where they were counted.
        #expect(
            book.drain(at: start + 1.5).map(\.1.adjustments) == [[.init(second: second, requests: -6, tokens: -60)]]
        )
        // A reconciled request adjusts its own second; once reported, nothing is left to say.
        book.settle(settlement(late, used: 4, usd: 0.5))
        let settled = book.drain(at: start + 1.6)
        #expect(
            settled.map(\.1) == [.init(adjustments: [.init(second: second + 1, requests: 0, tokens: -6)], usd: 0.5)]
        )
        #expect(book.drain(at: start + 1.7).isEmpty)
    }

    @Test("slots are held while leased requests run and given back when the lease ends")
    func slotsFollowLeasedRequests() throws {
        var book = QuotaLeases()
        let narrow = Allowance(maxConcurrent: 1_000)
        lease(&book, charge(0, narrow), at: start)
        let aAnswer = book.admit(charge(1, narrow), at: start)
        let a = try #require(aAnswer)
        let bAnswer = book.admit(charge(2, narrow), at: start)
        let b = try #require(bAnswer)
        let cAnswer = book.admit(charge(3, narrow), at: start)
        let c = try #require(cAnswer)
        #expect(book.drain(at: start + 0.5).map(\.1.slots) == [4], "held while the lease runs")
        book.settle(settlement(a))
        book.settle(settlement(c))
        #expect(book.drain(at: start + 1).map(\.1.slots) == [1], "lapsed: only the request still running")
        book.settle(settlement(b))
        #expect(book.drain(at: start + 2).map(\.1.slots) == [0], "and none once it is done")
        #expect(book.drain(at: start + 3).isEmpty)
        // The next lease asks for room for twice the most it had at once.
        #expect(book.requests(for: charge(4, narrow), at: start + 3)[0]?.slots == 6)
    }

    @Test("a subject with a budget is leased only once the cost of its requests is known")
    func budgetLeaseWaitsForACost() throws {
        var book = QuotaLeases()
        let budgeted = Allowance(budget: Budget(usd: 100, period: .day))
        let firstAnswer = book.requests(for: charge(1, budgeted), at: start)[0]
        let first = try #require(firstAnswer)
        #expect(first.usd == nil, "no request settled yet: no lease")
        book.granted(Self.key, nil, at: start)
        book.settle(settlement(QuotaAdmission(admittedAt: start), usd: 0.25))
        #expect(book.requests(for: charge(2, budgeted), at: start)[0]?.usd == 2, "8 requests at 0.25 USD")
        // Spend not reported yet is given back when the store goes away, to be added when it returns.
        let unreported = book.reset()
        #expect(unreported.count == 1 && unreported[0].0 == Self.key && unreported[0].1 == 0.25)
    }

    @Test("every admitted request is counted once, in its own second, whatever the leases did")
    func storeCountsMatchAdmissions() {
        var book = QuotaLeases()
        var rng = SplitMix64(seed: 7)
        let open = Allowance(requestsPerMinute: 1_000_000, tokensPerMinute: 100_000_000, maxConcurrent: 10_000)
        // A store that grants every lease and applies reports: requests counted per second.
        var store: [Int64: Double] = [:]
        var admittedPerSecond: [Int64: Double] = [:]
        var running: [QuotaAdmission] = []
        var now = start
        for id in 0..<5_000 {
            now += Double(rng.next() % 1_000) / 4_000
            if let admission = book.admit(charge(UInt64(id), open), at: now) {
                admittedPerSecond[Int64(admission.admittedAt!.rounded(.down)), default: 0] += 1
                running.append(admission)
            } else {
                let second = Int64(now.rounded(.down))
                store[second, default: 0] += 1
                admittedPerSecond[second, default: 0] += 1
                if let request = book.requests(for: charge(UInt64(id), open), at: now)[0] {
                    store[second, default: 0] += request.requests
                    book.granted(
                        Self.key,
                        .init(request: request, storeNow: now, requestsCounted: 0, tokensCounted: 0, spentUSD: 0),
                        at: now
                    )
                }
            }
            if running.count > 20 { book.settle(settlement(running.removeFirst())) }
            if rng.next() % 50 == 0 {
                for (_, report) in book.drain(at: now) {
                    for adjustment in report.adjustments { store[adjustment.second, default: 0] += adjustment.requests }
                }
            }
        }
        for (_, report) in book.drain(at: now + 2) {
            for adjustment in report.adjustments { store[adjustment.second, default: 0] += adjustment.requests }
        }
        #expect(store.filter { $0.value != 0 } == admittedPerSecond)
    }
}
