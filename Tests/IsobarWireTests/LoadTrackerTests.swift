import IsobarModel
import Testing

@testable import IsobarWire

@Suite("LoadTracker: gauges copied, counters turned into rates, restarts and gaps never invent numbers")
struct LoadTrackerTests {
    static func reading(
        prompt: Double? = nil,
        generation: Double? = nil,
        preemptions: Double? = nil,
        configure: (inout EngineReading) -> Void = { _ in }
    ) -> EngineReading {
        var r = EngineReading()
        r.waiting = 3
        r.running = 8
        r.kvUsage = 0.5
        r.kvBlockSize = 16
        r.kvBlocks = 1000
        r.promptTokens = prompt
        r.generationTokens = generation
        r.preemptions = preemptions
        configure(&r)
        return r
    }

    static let t0 = Instant(nanoseconds: 5_000_000_000)

    @Test("The first reading copies gauges, sets takenAt, and has no counter rates yet")
    func firstReading() {
        var tracker = LoadTracker()
        let s = tracker.sample(Self.reading(prompt: 100, generation: 50, preemptions: 0), at: Self.t0)
        #expect(
            s
                == LoadSample(takenAt: Self.t0, waiting: 3, running: 8, kvUsage: 0.5, kvBlockSize: 16, kvBlocks: 1000)
        )
    }

    @Test("Counters become per-second rates over the time since the previous reading")
    func rates() {
        var tracker = LoadTracker()
        _ = tracker.sample(Self.reading(prompt: 1000, generation: 500, preemptions: 2), at: Self.t0)
        let s = tracker.sample(
            Self.reading(prompt: 2000, generation: 750, preemptions: 3),
            at: Self.t0 + .milliseconds(500)
        )
        #expect(s.promptTokensPerSecond == 2000)
        #expect(s.generationTokensPerSecond == 500)
        #expect(s.preemptionsPerSecond == 2)
        #expect(s.takenAt == Self.t0 + .milliseconds(500))
    }

    @Test("A counter that goes down is a restart: no rates that round, none negative, rates resume after")
    func restart() {
        var tracker = LoadTracker()
        _ = tracker.sample(Self.reading(prompt: 90_000, generation: 40_000), at: Self.t0)
        let restarted = tracker.sample(Self.reading(prompt: 100, generation: 40_100), at: Self.t0 + .seconds(1))
        #expect(restarted.promptTokensPerSecond == nil)
        #expect(restarted.generationTokensPerSecond == nil)
        #expect(restarted.running == 8)
        let after = tracker.sample(Self.reading(prompt: 400, generation: 40_300), at: Self.t0 + .seconds(2))
        #expect(after.promptTokensPerSecond == 300)
        #expect(after.generationTokensPerSecond == 200)
    }

    @Test("Missing metrics stay nil: a gauge the engine does not export, a counter that vanished")
    func nilNotZero() {
        var tracker = LoadTracker()
        var sparse = EngineReading()
        sparse.waiting = 0
        let first = tracker.sample(sparse, at: Self.t0)
        #expect(first.waiting == 0)
        #expect(first.running == nil)
        #expect(first.kvUsage == nil)
        #expect(first.promptTokensPerSecond == nil)
        _ = tracker.sample(Self.reading(prompt: 10), at: Self.t0 + .seconds(1))
        let vanished = tracker.sample(Self.reading(prompt: nil), at: Self.t0 + .seconds(2))
        #expect(vanished.promptTokensPerSecond == nil)
        #expect(vanished.generationTokensPerSecond == nil)
    }

    @Test("Without a counter rate the engine's own throughput is used; with one, the counter wins")
    func gaugeFallback() {
        var tracker = LoadTracker()
        let gauge: (inout EngineReading) -> Void = { $0.generationTokensPerSecond = 86.5 }
        let first = tracker.sample(Self.reading(configure: gauge), at: Self.t0)
        #expect(first.generationTokensPerSecond == 86.5)
        _ = tracker.sample(Self.reading(generation: 100, configure: gauge), at: Self.t0 + .seconds(1))
        let counted = tracker.sample(Self.reading(generation: 300, configure: gauge), at: Self.t0 + .seconds(3))
        #expect(counted.generationTokensPerSecond == 100)
        // SGLang's throughput is measured over recent steps, its counters move only as requests end.
        let live: (inout EngineReading) -> Void = {
            $0.generationTokensPerSecond = 86.5
            $0.throughputIsLive = true
        }
        let measured = tracker.sample(Self.reading(generation: 300, configure: live), at: Self.t0 + .seconds(4))
        #expect(measured.generationTokensPerSecond == 86.5)
    }

    @Test("Prefix hit rate: the engine's own rate first, else cumulative hits over lookups")
    func prefixHitRate() {
        var tracker = LoadTracker()
        let counted = tracker.sample(
            Self.reading {
                $0.prefixCacheHits = 250
                $0.prefixCacheQueries = 1000
            },
            at: Self.t0
        )
        #expect(counted.prefixCacheHitRate == 0.25)
        let reported = tracker.sample(
            Self.reading {
                $0.prefixCacheHits = 250
                $0.prefixCacheQueries = 1000
                $0.prefixCacheHitRate = 0.4
            },
            at: Self.t0 + .seconds(1)
        )
        #expect(reported.prefixCacheHitRate == 0.4)
        let noLookups = tracker.sample(
            Self.reading {
                $0.prefixCacheHits = 0
                $0.prefixCacheQueries = 0
            },
            at: Self.t0 + .seconds(2)
        )
        #expect(noLookups.prefixCacheHitRate == nil)
    }

    @Test("Readings at the same instant, or after reset, give no rates")
    func noElapsedTime() {
        var tracker = LoadTracker()
        _ = tracker.sample(Self.reading(prompt: 10), at: Self.t0)
        #expect(tracker.sample(Self.reading(prompt: 20), at: Self.t0).promptTokensPerSecond == nil)
        tracker.reset()
        #expect(tracker.sample(Self.reading(prompt: 30), at: Self.t0 + .seconds(1)).promptTokensPerSecond == nil)
    }

    @Test("A real exposition through the whole pipe: parse, map, track")
    func pipeline() {
        var tracker = LoadTracker()
        let reading = EngineMetrics.reading(engine: .vllm, exposition: PrometheusFixture.exposition("vllm-v1.txt"))
        let s = tracker.sample(reading, at: Self.t0)
        #expect(s.running == 25)
        #expect(s.kvCacheTokens == 55268 * 16)
        #expect(s.prefixCacheHitRate == 1_200_576.0 / 3_546_209.0)
    }
}
