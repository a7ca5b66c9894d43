import IsobarModel

/// Turns the successive readings of one endpoint into `LoadSample`s: gauges are copied, counters become
/// per-second rates over the time since the previous reading.
///
/// A counter that went down means the engine restarted: that round gives no rates (never negative ones) and
/// the next round measures from the new totals. A rate the counters cannot give (first reading, restart,
/// counter not exported) falls back to the throughput the engine computes itself, when it has one; when that
/// throughput is live (`EngineReading.throughputIsLive`) it comes first. A field that neither gives stays
/// `nil`, never zero. The prefix-cache hit rate is the engine's own when it reports
/// one, else its cumulative hits over lookups.
public struct LoadTracker: Sendable {
    private var previous: (reading: EngineReading, at: Instant)?

    public init() {}

    /// The sample for `reading`, taken at `now`; remembers it for the next call.
    public mutating func sample(_ reading: EngineReading, at now: Instant) -> LoadSample {
        let rates = self.rates(to: reading, at: now)
        previous = (reading, now)
        var sample = LoadSample(
            takenAt: now,
            waiting: reading.waiting,
            running: reading.running,
            kvUsage: reading.kvUsage,
            promptTokensPerSecond: Self.prefer(rates.prompt, reading.promptTokensPerSecond, reading),
            generationTokensPerSecond: Self.prefer(rates.generation, reading.generationTokensPerSecond, reading),
            preemptionsPerSecond: rates.preemptions,
            prefixCacheHitRate: reading.prefixCacheHitRate,
            kvBlockSize: reading.kvBlockSize,
            kvBlocks: reading.kvBlocks
        )
        if sample.prefixCacheHitRate == nil, let hits = reading.prefixCacheHits,
            let queries = reading.prefixCacheQueries, queries > 0
        {
            sample.prefixCacheHitRate = min(1, max(0, hits / queries))
        }
        return sample
    }

    /// The counter rate, else the engine's own throughput; the other way round when the engine's is live.
    private static func prefer(_ counted: Double?, _ reported: Double?, _ reading: EngineReading) -> Double? {
        reading.throughputIsLive ? reported ?? counted : counted ?? reported
    }

    /// Forgets the previous reading (the endpoint was replaced): the next sample has no counter rates.
    public mutating func reset() { previous = nil }

    private struct Rates {
        var prompt: Double?
        var generation: Double?
        var preemptions: Double?
    }

    private func rates(to reading: EngineReading, at now: Instant) -> Rates {
        guard let previous else { return Rates() }
        let seconds = (now - previous.at).seconds
        guard seconds > 0 else { return Rates() }
        let counters: [KeyPath<EngineReading, Double?>] = [
            \.promptTokens, \.generationTokens, \.preemptions, \.prefixCacheHits, \.prefixCacheQueries,
        ]
        let restarted = counters.contains { counter in
            guard let now = reading[keyPath: counter], let before = previous.reading[keyPath: counter] else {
                return false
            }
            return now < before
        }
        guard !restarted else { return Rates() }
        func rate(_ counter: KeyPath<EngineReading, Double?>) -> Double? {
            guard let now = reading[keyPath: counter], let before = previous.reading[keyPath: counter] else {
                return nil
            }
            return (now - before) / seconds
        }
        return Rates(
            prompt: rate(\.promptTokens),
            generation: rate(\.generationTokens),
            preemptions: rate(\.preemptions)
        )
    }
}
