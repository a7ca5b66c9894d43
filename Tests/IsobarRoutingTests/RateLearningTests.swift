import IsobarModel
import Testing

@testable import IsobarRouting

/// How a node learns what an endpoint can drain: scraped token throughput, only when that throughput
/// measures capacity, and uncontended times to first token; every step bounded.
@Suite("Learned rates")
struct RateLearningTests {
    /// Hints: 10,000 prompt and 1,000 output tokens per second, 8 sequences at once.
    static func router(maxConcurrency: Int? = 8) -> Router {
        let capacity = Capacity(
            prefillTokensPerSecond: 10_000,
            decodeTokensPerSecond: 1000,
            maxConcurrency: maxConcurrency
        )
        return TestFleet.router([TestFleet.backend("a", capacity: capacity, scraped: true)])
    }

    static func sample(
        waiting: Int,
        running: Int,
        kvUsage: Double? = 0.5,
        prompt: Double? = nil,
        generation: Double? = nil
    ) -> LoadSample {
        LoadSample(
            takenAt: .zero,
            waiting: waiting,
            running: running,
            kvUsage: kvUsage,
            promptTokensPerSecond: prompt,
            generationTokensPerSecond: generation
        )
    }

    @Test("a learned rate moves a bounded step: the observation counts at most twice, at least half the rate")
    func refinedIsBounded() {
        #expect(Router.refined(100, toward: 1000, weight: 1) == 200)
        #expect(Router.refined(100, toward: 1, weight: 1) == 50)
        #expect(Router.refined(100, toward: 150, weight: 0.5) == 125)
        #expect(close(Router.refined(100, toward: 1000, weight: 0.2), 120))
        #expect(close(Router.refined(100, toward: 100, weight: 0.2), 100))
    }

    @Test("scraped prompt throughput refines the prefill rate only while requests wait with room in the batch")
    func prefillRateFromScrapes() {
        // Nothing waits, the batch is full, or the KV cache is: prompt throughput does not measure prefill.
        let uninformative = [
            Self.sample(waiting: 0, running: 4, prompt: 30_000),
            Self.sample(waiting: 3, running: 8, prompt: 30_000),
            Self.sample(waiting: 3, running: 4, kvUsage: 0.95, prompt: 30_000),
            Self.sample(waiting: 3, running: 4, prompt: 0),
            Self.sample(waiting: 3, running: 4, prompt: nil),
        ]
        for sample in uninformative {
            var router = Self.router()
            router.scraped("a", sample, now: .zero)
            #expect(router.status("a").prefillRate == 10_000, "\(sample)")
        }
        // Requests wait, the batch has room: a step of a fifth toward the reading, bounded to 2x.
        var router = Self.router()
        router.scraped("a", Self.sample(waiting: 3, running: 4, prompt: 30_000), now: .zero)
        #expect(close(router.status("a").prefillRate, 12_000, tolerance: 1e-6))
        router.scraped("a", Self.sample(waiting: 3, running: 4, prompt: 1000), now: .zero)
        #expect(close(router.status("a").prefillRate, 10_800, tolerance: 1e-6))
        // Without a concurrency hint, any batch has room.
        var unbounded = Self.router(maxConcurrency: nil)
        unbounded.scraped("a", Self.sample(waiting: 1, running: 500, prompt: 15_000), now: .zero)
        #expect(close(unbounded.status("a").prefillRate, 11_000, tolerance: 1e-6))
    }

    @Test("scraped output throughput refines the decode rate only while the batch is full")
    func decodeRateFromScrapes() {
        var router = Self.router()
        router.scraped("a", Self.sample(waiting: 0, running: 7, generation: 1500), now: .zero)
        #expect(router.endpoints[0].decodeRate == 1000)
        router.scraped("a", Self.sample(waiting: 0, running: 8, generation: 1500), now: .zero)
        #expect(close(router.endpoints[0].decodeRate, 1100, tolerance: 1e-6))
        router.scraped("a", Self.sample(waiting: 5, running: 8, generation: 100_000), now: .zero)
        #expect(close(router.endpoints[0].decodeRate, 1320, tolerance: 1e-6))
        // Without a concurrency hint the node cannot tell a full batch: the hint stands.
        var unbounded = Self.router(maxConcurrency: nil)
        unbounded.scraped("a", Self.sample(waiting: 5, running: 500, generation: 1500), now: .zero)
        #expect(unbounded.endpoints[0].decodeRate == 1000)
    }

    @Test("uncontended first tokens of long prompts teach the prefill rate; contended or short ones do not")
    func prefillRateFromFirstTokens() throws {
        var router = TestFleet.router([TestFleet.backend("a")])
        var rng = Xoshiro256(seed: 1)
        var now = Instant.zero
        // 2000 tokens prefilled in 0.2 s, again and again: the rate converges from 20,000 to 10,000.
        for n in 0..<50 {
            let request = TestFleet.request("r\(n)", model: "only-a", prompt: 2000)
            let plan = try #require(TestFleet.sent(router.requestArrived(request, now: now, rng: &rng)))
            now = now + .milliseconds(200)
            router.firstToken(plan.attempt, now: now)
            if n == 0 { #expect(close(router.status("a").prefillRate, 19_000, tolerance: 1e-6)) }
            router.completed(plan.attempt, usage: nil, now: now)
        }
        let learned = router.status("a").prefillRate
        #expect(abs(learned - 10_000) < 100, "\(learned)")

        // A request sent while another waits for its first token measures the queue, not the engine.
        let ahead = try #require(
            TestFleet.sent(
                router.requestArrived(TestFleet.request("x", model: "only-a", prompt: 2000), now: now, rng: &rng)
            )
        )
        let behind = try #require(
            TestFleet.sent(
                router.requestArrived(TestFleet.request("y", model: "only-a", prompt: 2000), now: now, rng: &rng)
            )
        )
        router.firstToken(ahead.attempt, now: now + .milliseconds(200))
        let afterAhead = router.status("a").prefillRate
        router.firstToken(behind.attempt, now: now + .seconds(2))
        #expect(router.status("a").prefillRate == afterAhead)
        router.completed(ahead.attempt, usage: nil, now: now + .seconds(2))
        router.completed(behind.attempt, usage: nil, now: now + .seconds(2))

        // A short prompt's first token is dominated by per-step overheads.
        let short = try #require(
            TestFleet.sent(
                router.requestArrived(TestFleet.request("z", model: "only-a", prompt: 500), now: now, rng: &rng)
            )
        )
        router.firstToken(short.attempt, now: now + .seconds(1))
        #expect(router.status("a").prefillRate == afterAhead)
    }

    @Test("a first token counts as contended when the engine's last scrape showed requests waiting")
    func scrapedQueueMakesFirstTokenContended() throws {
        var router = TestFleet.router([TestFleet.backend("a", scraped: true)])
        var rng = Xoshiro256(seed: 2)
        router.scraped("a", LoadSample(takenAt: .zero, waiting: 3, running: 2), now: .zero)
        let request = TestFleet.request("r", model: "only-a", prompt: 4000)
        let plan = try #require(TestFleet.sent(router.requestArrived(request, now: .zero, rng: &rng)))
        router.firstToken(plan.attempt, now: TestFleet.at(1))
        #expect(router.status("a").prefillRate == 20_000)
    }

    @Test("the RTT to a remote endpoint is taken off its first-token time before the rate is learned")
    func rttIsNotPrefill() throws {
        var router = TestFleet.router([TestFleet.backend("w", region: "west")], regionRTT: ["west": 0.1])
        var rng = Xoshiro256(seed: 3)
        let request = TestFleet.request("r", model: "only-w", prompt: 2000)
        let plan = try #require(TestFleet.sent(router.requestArrived(request, now: .zero, rng: &rng)))
        // 0.1 s of the 0.2 s is the network: the engine prefilled at 20,000 tokens/s, as assumed.
        router.firstToken(plan.attempt, now: TestFleet.at(0.2))
        #expect(close(router.status("w").prefillRate, 20_000, tolerance: 1e-6))
    }
}
