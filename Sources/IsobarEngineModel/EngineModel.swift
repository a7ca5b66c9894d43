import DequeModule
import IsobarModel

/// A request as an engine replica sees it.
public struct EngineRequest: Sendable, Equatable {
    public var id: UInt64
    public var promptTokens: Int
    /// Tokens to generate (at least 1).
    public var outputTokens: Int
    /// Hashes of the prompt's consecutive prefix blocks (each `hashBlockTokens` long), for the prefix cache.
    public var prefixHashes: [UInt64]
    public var hashBlockTokens: Int

    public init(
        id: UInt64,
        promptTokens: Int,
        outputTokens: Int,
        prefixHashes: [UInt64] = [],
        hashBlockTokens: Int = 512
    ) {
        self.id = id
        self.promptTokens = max(1, promptTokens)
        self.outputTokens = max(1, outputTokens)
        self.prefixHashes = prefixHashes
        self.hashBlockTokens = hashBlockTokens
    }
}

/// Something that happened to a request during a step; it takes effect when the step ends.
public enum EngineEvent: Sendable, Equatable {
    /// The first output token was sampled.
    case firstToken(UInt64)
    /// A later output token was sampled (reported only with `reportsEveryToken`).
    case token(UInt64)
    /// The last output token was sampled; the request left the engine.
    case finished(UInt64)
    /// The request was preempted (its KV freed); it waits to be recomputed.
    case preempted(UInt64)
}

/// An iteration-level model of one continuous-batching engine replica, after vLLM v1's scheduler.
///
/// Each `step()` forms a batch under two limits, the token budget (`maxNumBatchedTokens`) and the
/// sequence cap (`maxNumSeqs`): running decodes first (one token each), then running prefills
/// (chunked: as many prompt tokens as the budget leaves), then waiting requests in arrival order
/// while the budget, the cap and free KV blocks allow. KV memory is a pool of fixed-size blocks; a
/// request that cannot get a block for its next token preempts the newest running request, whose blocks
/// are freed and whose tokens are recomputed when it is admitted again. With prefix caching, prompt
/// blocks whose hashes are cached are not computed again. The step's duration comes from the profile's
/// `StepTime` formula; the shell calls `step()` again when that time has passed.
///
/// Pure: no clock, no I/O. The simulator and the emulator drive the same instance type.
public struct EngineModel: Sendable {
    public let profile: EngineProfile
    /// Step-time multiplier (a slow replica has more than 1).
    public var slowdown: Double = 1
    /// Report a `.token` event for every sampled token after the first (the emulator streams them).
    public var reportsEveryToken: Bool

    private var sequences: [Sequence] = []
    /// Prompt prefix hashes of each slot, kept apart so `Sequence` stays a plain value that copies freely.
    private var prefixes: [[UInt64]] = []
    private var freeSlots: [Int] = []
    private var slotOf: [UInt64: Int] = [:]
    private var waiting = Deque<Int>()
    private var running: [Int] = []
    private var freeBlocks: Int
    private var cache = PrefixCache()
    // Reused per step, so a step allocates nothing.
    private var batch: [Scheduled] = []

    public private(set) var counters = EngineCounters()

    struct Sequence {
        var id: UInt64
        var prompt: Int
        var target: Int
        var generated = 0
        /// Tokens whose KV is computed.
        var computed = 0
        /// Blocks this sequence owns (beyond the shared prefix blocks).
        var ownBlocks = 0
        /// Leading prefix blocks it holds in the cache.
        var sharedPrefixBlocks = 0
        var hashBlockTokens: Int
        var blocksPerHash: Int

        /// Prompt plus output sampled so far: what must be computed before the next token can be sampled.
        var tokens: Int { prompt + generated }
        var sharedTokens: Int { sharedPrefixBlocks * hashBlockTokens }
        /// The only token to compute is the last one sampled.
        var isDecoding: Bool { generated > 0 && computed == tokens - 1 }
    }

    struct Scheduled {
        var slot: Int
        var tokens: Int
    }

    public init(profile: EngineProfile, reportsEveryToken: Bool = false) {
        self.profile = profile
        self.reportsEveryToken = reportsEveryToken
        self.freeBlocks = profile.numBlocks
        batch.reserveCapacity(min(profile.maxNumSeqs, 1024))
    }

    // MARK: - Requests

    /// Queues a request. Returns false, leaving the engine unchanged, if the request can never fit in
    /// the KV cache (vLLM refuses such a request too) or its id is already in the engine.
    @discardableResult
    public mutating func add(_ request: EngineRequest) -> Bool {
        guard slotOf[request.id] == nil,
            blocks(forTokens: request.promptTokens + request.outputTokens) <= profile.numBlocks
        else { return false }
        let blockSize = profile.blockSize
        let perHash = (request.hashBlockTokens + blockSize - 1) / blockSize
        let sequence = Sequence(
            id: request.id,
            prompt: request.promptTokens,
            target: request.outputTokens,
            hashBlockTokens: request.hashBlockTokens,
            blocksPerHash: perHash
        )
        let hashes = profile.prefixCaching ? request.prefixHashes : []
        let slot: Int
        if let free = freeSlots.popLast() {
            sequences[free] = sequence
            prefixes[free] = hashes
            slot = free
        } else {
            sequences.append(sequence)
            prefixes.append(hashes)
            slot = sequences.count - 1
        }
        slotOf[request.id] = slot
        waiting.append(slot)
        return true
    }

    /// Removes a request (its client went away). Returns false if it is not in the engine.
    @discardableResult
    public mutating func cancel(_ id: UInt64) -> Bool {
        guard let slot = slotOf[id] else { return false }
        if let i = running.firstIndex(of: slot) {
            running.remove(at: i)
        } else if let i = waiting.firstIndex(of: slot) {
            waiting.remove(at: i)
        }
        releaseKV(slot)
        retire(slot)
        return true
    }

    /// Drops every request (the replica crashed); returns their ids, running first.
    public mutating func abortAll() -> [UInt64] {
        let ids = (running + Array(waiting)).map { sequences[$0].id }
        self = EngineModel(profile: profile, reportsEveryToken: reportsEveryToken)
        return ids
    }

    // MARK: - State

    /// True while a step has something to do.
    public var hasWork: Bool { !running.isEmpty || !waiting.isEmpty }
    public var runningCount: Int { running.count }
    public var waitingCount: Int { waiting.count }
    /// Fraction of KV blocks held by requests (cached blocks nobody uses count as free, as in vLLM).
    public var kvUsage: Double {
        Double(profile.numBlocks - freeBlocks - cache.idleBlocks) / Double(max(1, profile.numBlocks))
    }
    /// Prompt tokens queued or still to prefill, the backlog a new request waits behind.
    public var pendingPrefillTokens: Int {
        var total = 0
        for slot in waiting { total += sequences[slot].tokens - sequences[slot].computed }
        for slot in running where !sequences[slot].isDecoding {
            total += sequences[slot].tokens - sequences[slot].computed
        }
        return total
    }

    // MARK: - Stepping

    /// Runs one iteration: forms the batch, advances every scheduled request, appends what happened to
    /// `events`, and returns how long the step takes in seconds. Call only while `hasWork`.
    public mutating func step(events: inout [EngineEvent]) -> Double {
        batch.removeAll(keepingCapacity: true)
        var budget = profile.maxNumBatchedTokens
        let preempted = scheduleRunning(budget: &budget, events: &events)
        if !preempted { admitWaiting(budget: &budget) }
        return advance(events: &events)
    }

    /// Schedules running decodes, then running prefills. Returns true if anything was preempted.
    private mutating func scheduleRunning(budget: inout Int, events: inout [EngineEvent]) -> Bool {
        let decodesPreempted = scheduleRunning(decoding: true, budget: &budget, events: &events)
        let prefillsPreempted = scheduleRunning(decoding: false, budget: &budget, events: &events)
        return decodesPreempted || prefillsPreempted
    }

    /// Schedules the running sequences that are (or are not) decoding, in order. When one cannot get a
    /// block, the newest running sequence is preempted until it can, or until it is the one preempted.
    private mutating func scheduleRunning(decoding: Bool, budget: inout Int, events: inout [EngineEvent]) -> Bool {
        var preempted = false
        var i = 0
        while i < running.count, budget > 0 {
            let slot = running[i]
            guard sequences[slot].isDecoding == decoding else {
                i += 1
                continue
            }
            let tokens = min(sequences[slot].tokens - sequences[slot].computed, budget)
            let needed = blocksNeeded(slot, computing: tokens)
            while needed > freeBlocks + cache.idleBlocks {
                let victim = running.removeLast()
                preempt(victim, events: &events)
                preempted = true
                if victim == slot { return true }
            }
            take(needed)
            sequences[slot].ownBlocks += needed
            batch.append(Scheduled(slot: slot, tokens: tokens))
            budget -= tokens
            i += 1
        }
        return preempted
    }

    /// Admits waiting requests in order while the budget, the sequence cap and the KV pool allow.
    private mutating func admitWaiting(budget: inout Int) {
        while budget > 0, running.count < profile.maxNumSeqs, let slot = waiting.first {
            let shared = cachedPrefixBlocks(slot)
            for k in 0..<shared { cache.retain(prefixes[slot][k]) }
            sequences[slot].sharedPrefixBlocks = shared
            sequences[slot].computed = sequences[slot].sharedTokens
            let tokens = min(sequences[slot].tokens - sequences[slot].computed, budget)
            let needed = blocksNeeded(slot, computing: tokens)
            guard needed <= freeBlocks + cache.idleBlocks else {
                for k in 0..<shared { cache.release(prefixes[slot][k]) }
                sequences[slot].sharedPrefixBlocks = 0
                sequences[slot].computed = 0
                return
            }
            counters.prefixQueryTokens += sequences[slot].prompt
            counters.prefixHitTokens += sequences[slot].sharedTokens
            take(needed)
            sequences[slot].ownBlocks = needed
            waiting.removeFirst()
            running.append(slot)
            batch.append(Scheduled(slot: slot, tokens: tokens))
            budget -= tokens
        }
    }

    /// Advances every scheduled request by its tokens; returns the step's duration.
    private mutating func advance(events: inout [EngineEvent]) -> Double {
        var tokens = 0
        var prefillTokens = 0
        var prefillPairs = 0.0
        var decodeKV = 0
        var sampled = 0
        var finished = false
        var prefilled = false
        let reportsEveryToken = self.reportsEveryToken
        // One pass over the batch through a buffer pointer: no bounds or uniqueness checks per sequence.
        sequences.withUnsafeMutableBufferPointer { sequences in
            for entry in batch {
                let slot = entry.slot
                let before = sequences[slot].computed
                tokens += entry.tokens
                if sequences[slot].isDecoding {
                    decodeKV += before + 1
                } else {
                    prefilled = true
                    prefillTokens += entry.tokens
                    prefillPairs += Double(entry.tokens) * (Double(before) + Double(entry.tokens + 1) / 2)
                }
                sequences[slot].computed = before + entry.tokens
                guard sequences[slot].computed == sequences[slot].tokens else { continue }
                // Every prompt and output token is computed: the step samples the next token.
                sampled += 1
                sequences[slot].generated += 1
                let id = sequences[slot].id
                if sequences[slot].generated == 1 {
                    events.append(.firstToken(id))
                } else if reportsEveryToken {
                    events.append(.token(id))
                }
                if sequences[slot].generated == sequences[slot].target {
                    events.append(.finished(id))
                    finished = true
                }
            }
        }
        if prefilled, profile.prefixCaching {
            for entry in batch where sequences[entry.slot].hashBlockTokens > 0 { cacheComputedPrefix(entry.slot) }
        }
        counters.steps += 1
        counters.promptTokens += prefillTokens
        counters.generationTokens += sampled
        if finished { removeFinished() }
        let seconds: Double
        switch profile.stepTime {
        case .fixed(let fixed): seconds = fixed
        case .roofline(let formula):
            seconds = formula.seconds(tokens: tokens, prefillAttentionPairs: prefillPairs, decodeKVTokens: decodeKV)
        }
        return seconds * slowdown
    }

    private mutating func removeFinished() {
        var kept = 0
        for i in running.indices {
            let slot = running[i]
            if sequences[slot].generated == sequences[slot].target {
                releaseKV(slot)
                retire(slot)
            } else {
                running[kept] = slot
                kept += 1
            }
        }
        running.removeLast(running.count - kept)
    }

    // MARK: - KV blocks

    private func blocks(forTokens tokens: Int) -> Int {
        (tokens + profile.blockSize - 1) / profile.blockSize
    }

    /// Own blocks a sequence must add to compute `tokens` more tokens (no division unless one is needed:
    /// a decode needs a new block only once every `blockSize` tokens).
    private func blocksNeeded(_ slot: Int, computing tokens: Int) -> Int {
        let s = sequences[slot]
        let uncovered = s.computed + tokens - s.sharedTokens - s.ownBlocks * profile.blockSize
        return uncovered <= 0 ? 0 : (uncovered + profile.blockSize - 1) / profile.blockSize
    }

    /// Takes `count` blocks from the free pool, evicting idle cached prefixes as needed.
    private mutating func take(_ count: Int) {
        guard count > 0 else { return }
        while freeBlocks < count {
            let freed = cache.evictOldest()
            precondition(freed > 0, "KV pool exhausted: the scheduler checked availability first")
            freeBlocks += freed
        }
        freeBlocks -= count
    }

    /// Leading prefix blocks of a waiting request found in the cache, leaving at least one token to compute.
    private func cachedPrefixBlocks(_ slot: Int) -> Int {
        let s = sequences[slot]
        let hashes = prefixes[slot]
        guard !hashes.isEmpty, !cache.isEmpty else { return 0 }
        let limit = min(hashes.count, (s.tokens - 1) / s.hashBlockTokens)
        var k = 0
        while k < limit, cache.contains(hashes[k]) { k += 1 }
        return k
    }

    /// Turns fully computed prompt blocks that follow the shared prefix into cache entries.
    private mutating func cacheComputedPrefix(_ slot: Int) {
        while true {
            let s = sequences[slot]
            let next = s.sharedPrefixBlocks
            guard next < prefixes[slot].count, (next + 1) * s.hashBlockTokens <= min(s.computed, s.prompt),
                !cache.contains(prefixes[slot][next])
            else { return }
            let moved = min(s.blocksPerHash, s.ownBlocks)
            sequences[slot].ownBlocks -= moved
            cache.insert(prefixes[slot][next], blocks: moved)
            sequences[slot].sharedPrefixBlocks += 1
        }
    }

    /// Frees a sequence's own blocks and unpins its shared prefix blocks.
    private mutating func releaseKV(_ slot: Int) {
        freeBlocks += sequences[slot].ownBlocks
        for k in 0..<sequences[slot].sharedPrefixBlocks { cache.release(prefixes[slot][k]) }
        sequences[slot].ownBlocks = 0
        sequences[slot].sharedPrefixBlocks = 0
    }

    /// Frees a running sequence's KV and puts it back at the head of the queue, to be recomputed.
    private mutating func preempt(_ slot: Int, events: inout [EngineEvent]) {
        releaseKV(slot)
        sequences[slot].computed = 0
        waiting.prepend(slot)
        counters.preemptions += 1
        events.append(.preempted(sequences[slot].id))
    }

    private mutating func retire(_ slot: Int) {
        slotOf[sequences[slot].id] = nil
        prefixes[slot] = []
        freeSlots.append(slot)
    }
}

/// Cumulative counters of an engine replica, as vLLM exports them.
public struct EngineCounters: Sendable, Equatable {
    public var steps = 0
    /// Prompt tokens computed (recomputation after preemption included).
    public var promptTokens = 0
    public var generationTokens = 0
    public var preemptions = 0
    /// Prompt tokens looked up in the prefix cache, and those found.
    public var prefixQueryTokens = 0
    public var prefixHitTokens = 0

    public init() {}
}
