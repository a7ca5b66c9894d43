/// What one scrape of a self-hosted engine said, in Isobar's terms but before any rate: gauges as the engine
/// reports them, counters as cumulative totals, and the metric each field came from.
///
/// Every field is optional and stays `nil` when the engine does not export it: a missing metric is never read
/// as zero. `LoadTracker` turns successive readings into `LoadSample`s.
public struct EngineReading: Sendable, Equatable {
    /// The fields of a reading, to name where each came from.
    public enum Field: String, Sendable, CaseIterable {
        case waiting, running, kvUsage, kvBlockSize, kvBlocks, prefixCacheHitRate
        case promptTokensPerSecond, generationTokensPerSecond, batchMaxTokens
        case promptTokens, generationTokens, preemptions, prefixCacheHits, prefixCacheQueries
    }

    // MARK: Gauges

    /// Requests queued in the engine, not yet scheduled.
    public var waiting: Int?
    /// Requests in the running batch.
    public var running: Int?
    /// Fraction of the KV cache in use, 0–1.
    public var kvUsage: Double?
    /// Tokens per KV block (1 for engines whose cache is token-granular, such as SGLang's pool).
    public var kvBlockSize: Int?
    /// KV blocks of the engine (summed over its data-parallel ranks).
    public var kvBlocks: Int?
    /// A prefix-cache hit rate the engine computes itself, 0–1 (SGLang, vLLM V0, trtllm-serve).
    public var prefixCacheHitRate: Double?
    /// A prompt throughput the engine computes itself, tokens/s (llama.cpp).
    public var promptTokensPerSecond: Double?
    /// A generation throughput the engine computes itself, tokens/s (SGLang, llama.cpp).
    public var generationTokensPerSecond: Double?
    /// The throughputs above are the engine's live measure over its recent steps (SGLang's `gen_throughput`),
    /// so they are better than counter rates, which for that engine advance only as requests finish.
    public var throughputIsLive = false
    /// Tokens reserved by the running batch (TGI's `tgi_batch_current_max_tokens`); no capacity to divide it
    /// by is exported, so it is not a KV usage.
    public var batchMaxTokens: Int?

    // MARK: Cumulative counters

    public var promptTokens: Double?
    public var generationTokens: Double?
    public var preemptions: Double?
    /// Prefix-cache hits and lookups, in the engine's unit (tokens or blocks); only their ratio and rates
    /// matter.
    public var prefixCacheHits: Double?
    public var prefixCacheQueries: Double?

    /// The metric each present field was read from (`vllm:kv_cache_usage_perc`, `/slots n_ctx`, …).
    public var sources: [Field: String] = [:]

    public init() {}

    /// True if no field was read.
    public var isEmpty: Bool { sources.isEmpty }

    /// Fills what `/metrics` lacked from llama.cpp's `/slots`: busy slots as running requests, and the slots'
    /// context as a token-granular KV cache.
    public func merging(_ slots: LlamaCppSlots) -> EngineReading {
        var merged = self
        if merged.running == nil {
            merged.running = slots.processing
            merged.sources[.running] = "/slots is_processing"
        }
        if merged.kvBlocks == nil, let context = slots.contextTokens {
            merged.kvBlockSize = 1
            merged.kvBlocks = context
            merged.sources[.kvBlockSize] = "/slots n_ctx"
            merged.sources[.kvBlocks] = "/slots n_ctx"
        }
        return merged
    }
}

/// What llama.cpp's `GET /slots` says: how many slots the server has, how many are busy, and their context.
public struct LlamaCppSlots: Sendable, Equatable {
    public var slots: Int
    /// Slots serving a request (`is_processing`, or a non-zero `state` in older builds).
    public var processing: Int
    /// The slots' context sizes summed (`n_ctx`), when every slot reports one.
    public var contextTokens: Int?

    public init(slots: Int, processing: Int, contextTokens: Int?) {
        self.slots = slots
        self.processing = processing
        self.contextTokens = contextTokens
    }

    /// Reads a `/slots` body; `nil` if it is not a JSON array of slot objects.
    public static func reading(json bytes: UnsafeRawBufferPointer) -> LlamaCppSlots? {
        guard case .success(let json) = JSON.parse(bytes) else { return nil }
        return reading(json: json)
    }

    /// Reads a parsed `/slots` body; `nil` if it is not an array of slot objects.
    public static func reading(json: JSON) -> LlamaCppSlots? {
        guard let array = json.arrayValue else { return nil }
        var processing = 0
        var context = 0
        var contextKnown = true
        for slot in array {
            guard case .object = slot else { return nil }
            if let busy = slot["is_processing"]?.boolValue {
                if busy { processing += 1 }
            } else if let state = slot["state"]?.intValue, state != 0 {
                processing += 1
            }
            if let n = slot["n_ctx"]?.intValue, n > 0 {
                context += n
            } else {
                contextKnown = false
            }
        }
        return LlamaCppSlots(
            slots: array.count,
            processing: processing,
            contextTokens: contextKnown && !array.isEmpty ? context : nil
        )
    }
}
