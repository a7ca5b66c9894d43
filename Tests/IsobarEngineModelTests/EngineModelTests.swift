import IsobarEngineModel
import IsobarModel
import Testing

/// Steps an engine until it is idle, recording when each event happened (end of its step).
struct EngineRun {
    var engine: EngineModel
    var now = 0.0
    var steps = 0
    var firstToken: [UInt64: Double] = [:]
    var finished: [UInt64: Double] = [:]
    var preempted: [UInt64] = []
    var tokens: [UInt64: Int] = [:]

    init(_ profile: EngineProfile, reportTokens: Bool = true) {
        engine = EngineModel(profile: profile, reportsEveryToken: reportTokens)
    }

    mutating func runUntilIdle(maxSteps: Int = 1_000_000) {
        var events: [EngineEvent] = []
        while engine.hasWork, steps < maxSteps {
            events.removeAll(keepingCapacity: true)
            now += engine.step(events: &events)
            steps += 1
            record(events)
        }
    }

    mutating func record(_ events: [EngineEvent]) {
        for event in events {
            switch event {
            case .firstToken(let id):
                firstToken[id] = now
                tokens[id, default: 0] += 1
            case .token(let id): tokens[id, default: 0] += 1
            case .finished(let id): finished[id] = now
            case .preempted(let id): preempted.append(id)
            }
        }
    }
}

extension EngineProfile {
    static func fixedStep(
        _ seconds: Double,
        seqs: Int = 256,
        budget: Int = 8192,
        blocks: Int = 1 << 20,
        caching: Bool = false
    )
        -> EngineProfile
    {
        EngineProfile(
            name: "test",
            maxNumSeqs: seqs,
            maxNumBatchedTokens: budget,
            numBlocks: blocks,
            prefixCaching: caching,
            stepTime: .fixed(seconds: seconds)
        )
    }
}

@Suite("Engine model: continuous batching")
struct EngineModelTests {
    @Test("one request: the prefill step samples the first token, then one decode step per token")
    func singleRequest() {
        var run = EngineRun(.fixedStep(0.01))
        run.engine.add(EngineRequest(id: 1, promptTokens: 100, outputTokens: 5))
        run.runUntilIdle()
        #expect(run.steps == 5)
        #expect(abs(run.firstToken[1]! - 0.01) < 1e-12)
        #expect(abs(run.finished[1]! - 0.05) < 1e-12)
        #expect(run.tokens[1] == 5)
        #expect(run.engine.counters.promptTokens == 100)
        #expect(run.engine.counters.generationTokens == 5)
    }

    @Test("a long prompt is prefilled in chunks of the token budget")
    func chunkedPrefill() {
        var run = EngineRun(.fixedStep(0.01, budget: 2048))
        run.engine.add(EngineRequest(id: 1, promptTokens: 5000, outputTokens: 2))
        run.runUntilIdle()
        // 2048 + 2048 + 904 prompt tokens: the first token comes at the end of the third step.
        #expect(abs(run.firstToken[1]! - 0.03) < 1e-12)
        #expect(run.steps == 4)
    }

    @Test("decodes go first; a prefill fills what is left of the budget, and does not stall the decode")
    func decodesFirst() {
        var run = EngineRun(.fixedStep(0.01, budget: 1000))
        run.engine.add(EngineRequest(id: 1, promptTokens: 10, outputTokens: 50))
        var events: [EngineEvent] = []
        run.now += run.engine.step(events: &events)
        run.record(events)
        run.engine.add(EngineRequest(id: 2, promptTokens: 2500, outputTokens: 1))
        run.runUntilIdle()
        // Request 1 decodes every step while request 2 prefills in chunks of 999.
        #expect(abs(run.finished[1]! - 0.50) < 1e-12)
        #expect(abs(run.firstToken[2]! - 0.04) < 1e-12)
    }

    @Test("the sequence cap holds requests back until a slot frees")
    func sequenceCap() {
        var run = EngineRun(.fixedStep(0.01, seqs: 2))
        for id in 1...3 { run.engine.add(EngineRequest(id: UInt64(id), promptTokens: 10, outputTokens: 3)) }
        run.runUntilIdle()
        #expect(run.finished[1]! == run.finished[2]!)
        #expect(run.firstToken[3]! > run.finished[1]! - 1e-12)
    }

    @Test("when KV blocks run out the newest running request is preempted and later recomputed")
    func preemption() {
        // 20 blocks of 16 tokens = 320 tokens of KV; two requests that each grow to 300 tokens.
        var run = EngineRun(.fixedStep(0.01, blocks: 20))
        run.engine.add(EngineRequest(id: 1, promptTokens: 100, outputTokens: 200))
        run.engine.add(EngineRequest(id: 2, promptTokens: 100, outputTokens: 200))
        run.runUntilIdle()
        #expect(run.preempted.contains(2))
        #expect(!run.preempted.contains(1))
        #expect(run.tokens[1] == 200 && run.tokens[2] == 200)
        #expect(run.finished[1]! < run.finished[2]!)
        // Request 2's prompt and the output it had were computed again.
        #expect(run.engine.counters.promptTokens > 200)
        #expect(run.engine.kvUsage == 0)
    }

    @Test("a request that can never fit in the KV cache is refused")
    func refusesOversized() {
        var engine = EngineModel(profile: .fixedStep(0.01, blocks: 10))
        let tooLong = engine.add(EngineRequest(id: 1, promptTokens: 150, outputTokens: 20))
        let fits = engine.add(EngineRequest(id: 2, promptTokens: 100, outputTokens: 20))
        let duplicate = engine.add(EngineRequest(id: 2, promptTokens: 1, outputTokens: 1))
        #expect(!tooLong && fits && !duplicate)
    }

    @Test("a cached prompt prefix is not computed again")
    func prefixCache() {
        var run = EngineRun(.fixedStep(0.01, caching: true))
        let hashes: [UInt64] = [11, 12, 13]
        run.engine.add(
            EngineRequest(id: 1, promptTokens: 1600, outputTokens: 2, prefixHashes: hashes, hashBlockTokens: 512)
        )
        run.runUntilIdle()
        #expect(run.engine.counters.promptTokens == 1600)
        run.engine.add(
            EngineRequest(id: 2, promptTokens: 1700, outputTokens: 2, prefixHashes: hashes + [14], hashBlockTokens: 512)
        )
        run.runUntilIdle()
        // 3 × 512 tokens came from the cache.
        #expect(run.engine.counters.promptTokens == 1600 + 1700 - 1536)
        #expect(run.engine.counters.prefixHitTokens == 1536)
        #expect(run.engine.kvUsage == 0)
    }

    @Test("idle cached prefixes are evicted least recently used first when blocks are needed")
    func prefixEviction() {
        // 100 blocks; each 512-token prefix block takes 32 engine blocks.
        var run = EngineRun(.fixedStep(0.01, blocks: 100, caching: true))
        run.engine.add(
            EngineRequest(id: 1, promptTokens: 600, outputTokens: 1, prefixHashes: [1], hashBlockTokens: 512)
        )
        run.runUntilIdle()
        run.engine.add(
            EngineRequest(id: 2, promptTokens: 600, outputTokens: 1, prefixHashes: [2], hashBlockTokens: 512)
        )
        run.runUntilIdle()
        // Needs 63 blocks with 36 free: one of the two cached prefixes (the older, 1) must go.
        run.engine.add(EngineRequest(id: 3, promptTokens: 1000, outputTokens: 1))
        run.runUntilIdle()
        let before = run.engine.counters.prefixHitTokens
        run.engine.add(
            EngineRequest(id: 4, promptTokens: 600, outputTokens: 1, prefixHashes: [2], hashBlockTokens: 512)
        )
        run.runUntilIdle()
        #expect(run.engine.counters.prefixHitTokens == before + 512)
        run.engine.add(
            EngineRequest(id: 5, promptTokens: 600, outputTokens: 1, prefixHashes: [1], hashBlockTokens: 512)
        )
        run.runUntilIdle()
        #expect(run.engine.counters.prefixHitTokens == before + 512)
    }

    @Test("cancelling frees the request's slot and blocks")
    func cancel() {
        var run = EngineRun(.fixedStep(0.01, seqs: 1))
        run.engine.add(EngineRequest(id: 1, promptTokens: 100, outputTokens: 100))
        run.engine.add(EngineRequest(id: 2, promptTokens: 100, outputTokens: 2))
        var events: [EngineEvent] = []
        _ = run.engine.step(events: &events)
        let cancelled = run.engine.cancel(1)
        let again = run.engine.cancel(1)
        #expect(cancelled && !again)
        run.runUntilIdle()
        #expect(run.tokens[2] == 2)
        #expect(run.engine.kvUsage == 0)
    }

    @Test("the roofline step time: weight-bound small batches, compute-bound large ones, attention on top")
    func rooflineStepTime() {
        let formula = RooflineStepTime(
            overhead: 0.001,
            weightRead: 0.005,
            linearPerToken: 0.000_01,
            prefillAttention: 1e-9,
            decodeAttention: 1e-8
        )
        let profile = EngineProfile(
            name: "r",
            maxNumSeqs: 8,
            maxNumBatchedTokens: 4096,
            numBlocks: 10_000,
            stepTime: .roofline(formula)
        )
        var engine = EngineModel(profile: profile)
        engine.add(EngineRequest(id: 1, promptTokens: 1000, outputTokens: 2))
        var events: [EngineEvent] = []
        // Prefill of 1000 tokens: compute-bound (0.01 s > 0.005 s), attention 1000 × 500.5 pairs.
        let prefill = engine.step(events: &events)
        #expect(abs(prefill - (0.001 + 0.01 + 1e-9 * 1000 * 500.5)) < 1e-12)
        // Decode of one token with 1001 KV tokens: weight-bound.
        let decode = engine.step(events: &events)
        #expect(abs(decode - (0.001 + 0.005 + 1e-8 * 1001)) < 1e-12)
    }

    @Test("conservation under random load: every request finishes once with every token, and the pool empties")
    func conservation() {
        var rng = Xoshiro256(seed: 99)
        var run = EngineRun(.fixedStep(0.01, seqs: 16, budget: 512, blocks: 200, caching: true))
        var asked: [UInt64: Int] = [:]
        var next: UInt64 = 1
        var events: [EngineEvent] = []
        for _ in 0..<3000 {
            if Int.random(in: 0..<3, using: &rng) == 0 {
                let output = Int.random(in: 1...120, using: &rng)
                let shared = UInt64.random(in: 0..<4, using: &rng)
                let request = EngineRequest(
                    id: next,
                    promptTokens: Int.random(in: 1...900, using: &rng),
                    outputTokens: output,
                    prefixHashes: [shared, shared &+ 100],
                    hashBlockTokens: 128
                )
                if run.engine.add(request) { asked[next] = output }
                next += 1
            }
            if run.engine.hasWork {
                events.removeAll(keepingCapacity: true)
                run.now += run.engine.step(events: &events)
                run.record(events)
            }
        }
        run.runUntilIdle()
        #expect(run.finished.count == asked.count)
        #expect(asked.allSatisfy { run.tokens[$0.key] == $0.value })
        #expect(run.engine.counters.generationTokens == asked.values.reduce(0, +))
        #expect(run.engine.kvUsage == 0)
        #expect(!run.preempted.isEmpty)
    }
}
