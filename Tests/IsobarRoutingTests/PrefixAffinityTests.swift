import IsobarModel
import Testing

@testable import IsobarRouting

/// Prefix affinity: a node remembers which prompt-prefix blocks it sent where and keeps requests sharing
/// them on that endpoint while it costs at most `affinity_budget` of expected TTFT.
@Suite("Prefix affinity")
struct PrefixAffinityTests {
    /// Four blocks of 512 tokens: 2048 of the request's 2500 prompt tokens.
    static let prefix: [UInt64] = [11, 12, 13, 14]

    static func shared(_ id: String) -> RequestProfile {
        TestFleet.request(id, prompt: 2500, prefix: prefix)
    }

    @Test("requests sharing a prefix return to its endpoint within the budget and leave when it costs more")
    func affinityWithinBudget() throws {
        var router = TestFleet.router([TestFleet.backend("a"), TestFleet.backend("b")])
        var rng = Xoshiro256(seed: 1)
        let first = try #require(TestFleet.sent(router.requestArrived(Self.shared("r1"), now: .zero, rng: &rng)))
        let holder = first.deployment.backend
        let other: BackendID = holder == "a" ? "b" : "a"
        router.completed(first.attempt, usage: nil, now: TestFleet.at(1))

        // 4000 unprefilled tokens queue on the holder: 0.22 s there against 0.125 s elsewhere, within 0.2 s.
        _ = router.requestArrived(
            TestFleet.request("load1", model: ModelName("only-\(holder)"), prompt: 4000),
            now: TestFleet.at(1),
            rng: &rng
        )
        let sticky = try #require(
            TestFleet.sent(router.requestArrived(Self.shared("r2"), now: TestFleet.at(1), rng: &rng))
        )
        #expect(sticky.cachedTokens(holder) == 2048)
        #expect(sticky.cachedTokens(other) == 0)
        #expect(close(sticky.expectedTTFT(holder), (4000.0 + 452) / 20_000))
        #expect(close(sticky.expectedTTFT(other), 2500.0 / 20_000))
        #expect(sticky.deployment.backend == holder)
        #expect(sticky.decision.pick == .affinity)
        router.abandoned(sticky.attempt, now: TestFleet.at(1))

        // Twice the queue: 0.42 s, more than the budget over the best. The request leaves.
        _ = router.requestArrived(
            TestFleet.request("load2", model: ModelName("only-\(holder)"), prompt: 4000),
            now: TestFleet.at(1),
            rng: &rng
        )
        let moved = try #require(
            TestFleet.sent(router.requestArrived(Self.shared("r3"), now: TestFleet.at(1), rng: &rng))
        )
        #expect(close(moved.expectedTTFT(holder), (8000.0 + 452) / 20_000))
        #expect(moved.deployment.backend == other)
        #expect(moved.decision.pick == .best)
    }

    @Test("an affinity budget of zero keeps a request on its prefix only while that endpoint is the best")
    func zeroBudget() throws {
        var router = TestFleet.router(
            [TestFleet.backend("a"), TestFleet.backend("b")],
            balancing: BalancingSettings(affinityBudgetSeconds: 0)
        )
        var rng = Xoshiro256(seed: 2)
        let first = try #require(TestFleet.sent(router.requestArrived(Self.shared("r1"), now: .zero, rng: &rng)))
        let holder = first.deployment.backend
        router.completed(first.attempt, usage: nil, now: TestFleet.at(1))
        // Unloaded, the cached prefix makes the holder the fastest: it wins on its own merit.
        let again = try #require(
            TestFleet.sent(router.requestArrived(Self.shared("r2"), now: TestFleet.at(1), rng: &rng))
        )
        #expect(again.deployment.backend == holder)
        router.completed(again.attempt, usage: nil, now: TestFleet.at(1))
        _ = router.requestArrived(
            TestFleet.request("load", model: ModelName("only-\(holder)"), prompt: 4000),
            now: TestFleet.at(1),
            rng: &rng
        )
        let moved = try #require(
            TestFleet.sent(router.requestArrived(Self.shared("r3"), now: TestFleet.at(1), rng: &rng))
        )
        #expect(moved.deployment.backend != holder)
    }

    @Test("the prefix index holds at most its capacity in tokens and evicts the least recently used blocks")
    func indexEvictsLeastRecentlyUsed() {
        var index = PrefixIndex(capacityTokens: 2048)
        index.insert([1, 2, 3, 4], blockTokens: 512)
        #expect(index.count == 4)
        #expect(index.matchedPrefix([1, 2, 3, 4, 5]) == 4)
        // Touching block 1 makes block 2 the oldest; a fifth block evicts it.
        index.insert([1], blockTokens: 512)
        index.insert([5], blockTokens: 512)
        #expect(index.count == 4)
        #expect(index.matchedPrefix([2]) == 0)
        #expect(index.matchedPrefix([1]) == 1)
        #expect(index.matchedPrefix([3, 4, 5]) == 3)
        // A prefix is matched from its first block only: a missing block ends the match.
        #expect(index.matchedPrefix([1, 2, 3]) == 1)
        // Larger blocks mean fewer of them fit.
        var large = PrefixIndex(capacityTokens: 2048)
        large.insert([1, 2, 3], blockTokens: 1024)
        #expect(large.count == 2)
        #expect(large.matchedPrefix([2, 3]) == 2)
    }

    @Test("shrinking the index keeps the most recently used blocks that fit; growing it keeps them all")
    func indexResize() {
        var index = PrefixIndex(capacityTokens: 2048)
        index.insert([1, 2, 3, 4], blockTokens: 512)
        index.insert([1], blockTokens: 512)
        index.insert([5], blockTokens: 512)
        // Most recent first: 5, 1, 4, 3.
        index.resize(capacityTokens: 1024)
        #expect(index.capacityTokens == 1024)
        #expect(index.count == 2)
        #expect(index.matchedPrefix([5]) == 1 && index.matchedPrefix([1]) == 1)
        #expect(index.matchedPrefix([3]) == 0 && index.matchedPrefix([4]) == 0)
        index.resize(capacityTokens: 4096)
        #expect(index.count == 2)
        index.insert([6, 7, 8, 9, 10, 11], blockTokens: 512)
        #expect(index.count == 8)
        #expect(index.matchedPrefix([5]) == 1)
    }

    @Test("a scrape with the engine's KV geometry sizes the endpoint's prefix memory and KV capacity")
    func scrapeResizesIndex() throws {
        var router = TestFleet.router([TestFleet.backend("a", scraped: true)])
        var rng = Xoshiro256(seed: 3)
        let blocks: [UInt64] = Array(1...8)
        func send(_ id: String, at seconds: Double) throws -> AttemptPlan {
            let request = TestFleet.request(id, model: "only-a", prompt: 4196, prefix: blocks)
            return try #require(TestFleet.sent(router.requestArrived(request, now: TestFleet.at(seconds), rng: &rng)))
        }
        let first = try send("r1", at: 0)
        #expect(first.cachedTokens("a") == 0)
        router.completed(first.attempt, usage: nil, now: TestFleet.at(1))
        let second = try send("r2", at: 1)
        #expect(second.cachedTokens("a") == 8 * 512)
        router.completed(second.attempt, usage: nil, now: TestFleet.at(2))
        #expect(router.endpoints[0].kvCapacityTokens == 400_000)

        // A sample without geometry changes nothing.
        router.scraped("a", LoadSample(takenAt: TestFleet.at(2), waiting: 0), now: TestFleet.at(2))
        #expect(router.endpoints[0].kvCapacityTokens == 400_000)
        #expect(try send("r3", at: 2).cachedTokens("a") == 8 * 512)

        // 64 blocks of 16 tokens: the engine caches 1024 tokens, two of the request's blocks at most, and
        // those are its last two (the most recently used), which do not start its prompt.
        router.scraped("a", LoadSample(takenAt: TestFleet.at(3), kvBlockSize: 16, kvBlocks: 64), now: TestFleet.at(3))
        #expect(router.endpoints[0].kvCapacityTokens == 1024)
        #expect(router.endpoints[0].prefixes.capacityTokens == 1024)
        #expect(router.endpoints[0].prefixes.count == 2)
        #expect(try send("r4", at: 3).cachedTokens("a") == 0)
    }
}
