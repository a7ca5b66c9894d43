/// What a scrape of one engine's metrics said about its load, normalised across engine kinds.
///
/// Gauges are as scraped; rates come from the change of a counter between two scrapes. Every field is
/// optional: engines export different subsets (TGI has no KV usage, llama.cpp no preemptions). A sample
/// is only as good as its age: readers pass `now` to `age(at:)` and treat old samples as unknown, never
/// as idle.
public struct LoadSample: Sendable, Equatable {
    /// When the scrape completed.
    public var takenAt: Instant
    /// Requests queued in the engine, not yet scheduled.
    public var waiting: Int?
    /// Requests in the engine's running batch.
    public var running: Int?
    /// Fraction of KV-cache blocks in use, 0–1.
    public var kvUsage: Double?
    /// Prompt tokens computed per second since the previous scrape.
    public var promptTokensPerSecond: Double?
    /// Output tokens generated per second since the previous scrape.
    public var generationTokensPerSecond: Double?
    /// Preemptions per second since the previous scrape.
    public var preemptionsPerSecond: Double?
    /// Fraction of prompt tokens served from the prefix cache (cumulative, as the engine reports it).
    public var prefixCacheHitRate: Double?
    /// KV-cache geometry, when the engine exports it (vLLM `cache_config_info`, SGLang max tokens).
    public var kvBlockSize: Int?
    public var kvBlocks: Int?

    public init(
        takenAt: Instant,
        waiting: Int? = nil,
        running: Int? = nil,
        kvUsage: Double? = nil,
        promptTokensPerSecond: Double? = nil,
        generationTokensPerSecond: Double? = nil,
        preemptionsPerSecond: Double? = nil,
        prefixCacheHitRate: Double? = nil,
        kvBlockSize: Int? = nil,
        kvBlocks: Int? = nil
    ) {
        self.takenAt = takenAt
        self.waiting = waiting
        self.running = running
        self.kvUsage = kvUsage
        self.promptTokensPerSecond = promptTokensPerSecond
        self.generationTokensPerSecond = generationTokensPerSecond
        self.preemptionsPerSecond = preemptionsPerSecond
        self.prefixCacheHitRate = prefixCacheHitRate
        self.kvBlockSize = kvBlockSize
        self.kvBlocks = kvBlocks
    }

    /// How old the sample is at `now`.
    public func age(at now: Instant) -> Duration { now - takenAt }

    /// Tokens the KV cache holds, when the geometry is known.
    public var kvCacheTokens: Int? {
        guard let kvBlockSize, let kvBlocks else { return nil }
        return kvBlockSize * kvBlocks
    }
}
