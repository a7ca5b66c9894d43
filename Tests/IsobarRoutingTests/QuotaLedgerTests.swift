import Testing

@testable import IsobarModel
@testable import IsobarRouting

/// A node's own count of every key's and team's limits (the in-memory store and the fallback of a
/// shared one): charges are all or nothing across a key and its team, reservations are settled.
@Suite struct QuotaLedgerTests {
    static let key = QuotaSubject(.key, "k")
    static let team = QuotaSubject(.team, "t")
    let start = 1_795_000_000.0

    func charge(_ id: UInt64, tokens: Double = 10, key: Allowance, team: Allowance? = nil) -> QuotaCharge {
        var subjects = [(subject: Self.key, allowance: key)]
        if let team { subjects.append((Self.team, team)) }
        return QuotaCharge(id: id, tokens: tokens, subjects: subjects)
    }

    func settle(_ id: UInt64, reserved: Double = 10, used: Double = 10, usd: Double = 0) -> QuotaSettlement {
        QuotaSettlement(
            id: id,
            subjects: [Self.key, Self.team],
            reservedTokens: reserved,
            usedTokens: used,
            usd: usd,
            admittedAt: start
        )
    }

    @Test("a team's limit refuses its keys' requests, and a refused request counts against no one")
    func teamLimitIsSharedAndRefusalsChargeNothing() {
        var ledger = QuotaLedger()
        let key = Allowance(requestsPerMinute: 10)
        let team = Allowance(requestsPerMinute: 3)
        let verdicts = (0..<5).map { ledger.admit(charge(UInt64($0), key: key, team: team), at: start + Double($0)) }
        #expect(verdicts.map(\.admitted) == [true, true, true, false, false])
        #expect(verdicts[3].refusal?.subject == Self.team && verdicts[3].refusal?.limit == .requests)
        #expect(verdicts[3].refusal?.retryAfterSeconds == 58, "the first of the three stops counting at +61 s")
        // A refusal's headers show the windows as they are: the team's spent, until its newest second ends.
        #expect(verdicts[3].requests == QuotaWindow(limit: 3, remaining: 0, resetSeconds: 60))
        // The key's own window holds only the three admitted requests: 7 left of its 10.
        let next = ledger.admit(charge(9, key: key), at: start + 5)
        #expect(next.requests == QuotaWindow(limit: 10, remaining: 6, resetSeconds: 61))
        // The headers show the tightest window of the request's subjects.
        #expect(verdicts[1].requests == QuotaWindow(limit: 3, remaining: 1, resetSeconds: 61))
    }

    @Test("concurrent requests are capped and a settled request frees its slot")
    func concurrencyIsFreedOnSettlement() {
        var ledger = QuotaLedger()
        let key = Allowance(maxConcurrent: 2)
        #expect(ledger.admit(charge(1, key: key), at: start).admitted)
        #expect(ledger.admit(charge(2, key: key), at: start).admitted)
        let third = ledger.admit(charge(3, key: key), at: start)
        #expect(third.refusal?.limit == .concurrent && third.refusal?.value == 2)
        ledger.settle(settle(1), at: start + 1)
        #expect(ledger.admit(charge(3, key: key), at: start + 1).admitted)
    }

    @Test("tokens reserved at admission are reconciled with what the request used")
    func tokenReservationsAreReconciled() {
        var ledger = QuotaLedger()
        let key = Allowance(tokensPerMinute: 1000)
        #expect(ledger.admit(charge(1, tokens: 600, key: key), at: start).admitted)
        let refused = ledger.admit(charge(2, tokens: 600, key: key), at: start + 1)
        #expect(refused.refusal?.limit == .tokens && refused.refusal?.retryAfterSeconds == 60)
        ledger.settle(settle(1, reserved: 600, used: 120), at: start + 2)
        let admitted = ledger.admit(charge(2, tokens: 600, key: key), at: start + 2)
        #expect(admitted.tokens == QuotaWindow(limit: 1000, remaining: 280, resetSeconds: 61))
        // A request estimated above the whole limit passes alone, holding the whole minute.
        var fresh = QuotaLedger()
        #expect(fresh.admit(charge(3, tokens: 5000, key: key), at: start).admitted)
        #expect(!fresh.admit(charge(4, tokens: 1, key: key), at: start + 1).admitted)
    }

    @Test("a budget refuses once spent, until its period ends")
    func budgetIsSpentOncePerPeriod() {
        var ledger = QuotaLedger()
        let key = Allowance(budget: Budget(usd: 1, period: .day))
        let noon = 1_795_003_200.0  // noon UTC: 20,775.5 days after the epoch
        #expect(ledger.admit(charge(1, key: key), at: noon).admitted)
        ledger.settle(settle(1, usd: 0.6), at: noon + 1)
        #expect(ledger.admit(charge(2, key: key), at: noon + 2).admitted, "0.40 left")
        ledger.settle(settle(2, usd: 0.6), at: noon + 3)
        #expect(ledger.spent(Self.key, period: .day, at: noon + 3) == 1.2, "the last request may overshoot")
        let refused = ledger.admit(charge(3, key: key), at: noon + 4)
        let midnight = (noon / 86_400).rounded(.up) * 86_400
        #expect(refused.refusal?.limit == .budget && refused.refusal?.retryAfterSeconds == midnight - noon - 4)
        #expect(ledger.admit(charge(3, key: key), at: midnight).admitted, "a new day, a new budget")
    }

    @Test("a node's share of a shared limit: 60 RPM over three live nodes is 20 here")
    func shareDividesLimits() {
        var ledger = QuotaLedger()
        let key = Allowance(requestsPerMinute: 60, maxConcurrent: 4, budget: Budget(usd: 10, period: .month))
        let admitted = (0..<30).filter { i in
            let verdict = ledger.admit(charge(UInt64(i), key: key), at: start + Double(i) * 0.1, share: 1.0 / 3)
            if verdict.admitted { ledger.settle(settle(UInt64(i)), at: start + Double(i) * 0.1) }
            return verdict.admitted
        }
        #expect(admitted.count == 20)
        // Known spend elsewhere counts in full, what is spent here three times over.
        ledger.setBase(Self.key, usd: 7, period: .month, at: start)
        ledger.settle(settle(50, usd: 0.9), at: start + 5)
        #expect(ledger.admit(charge(51, key: key), at: start + 61, share: 1.0 / 3).admitted, "7 + 2.7 < 10")
        ledger.settle(settle(51, usd: 0.2), at: start + 62)
        #expect(ledger.admit(charge(52, key: key), at: start + 62, share: 1.0 / 3).refusal?.limit == .budget)
    }
}
