import IsobarModel

/// Reads each engine kind's own metric names into an `EngineReading`.
///
/// Label sets are combined the way the quantity composes: counts and counters are summed (several
/// `model_name`s, vLLM's data-parallel `engine` labels, SGLang's `dp_rank`s), fractions are averaged. When an
/// engine renamed a metric, the current name is tried first and the older one after it. Non-finite values
/// (NaN, ±Inf) and impossible ones (negative counts) are ignored, so they read as missing, not as zero.
public enum EngineMetrics {
    /// The reading of one exposition of an engine of kind `engine`. Providers (OpenAI, Anthropic) give an
    /// empty reading.
    public static func reading(engine: EngineKind, exposition: PrometheusExposition) -> EngineReading {
        var mapper = Mapper(exposition: exposition)
        mapper.map(engine)
        return mapper.reading
    }

    /// The sample names `reading(engine:exposition:)` reads for `engine`, for a parse that skips the rest:
    /// `PrometheusParser().parse(bytes, selecting: EngineMetrics.selection(for: engine))`.
    public static func selection(for engine: EngineKind) -> MetricSelection {
        selections[engine] ?? MetricSelection([])
    }

    /// The sample names `reading(engine:exposition:)` reads for `engine`, in the order it tries them.
    public static func sampleNames(for engine: EngineKind) -> [String] {
        names[engine] ?? []
    }

    private static let names: [EngineKind: [String]] = Dictionary(
        uniqueKeysWithValues: EngineKind.allCases.map { ($0, metricNames(for: $0)) }
    )

    /// The names each engine's mapping asks for, found by mapping an empty exposition.
    static func metricNames(for engine: EngineKind) -> [String] {
        var mapper = Mapper(exposition: PrometheusExposition(), recording: true)
        mapper.map(engine)
        return mapper.asked
    }

    private static let selections: [EngineKind: MetricSelection] = Dictionary(
        uniqueKeysWithValues: EngineKind.allCases.map { ($0, MetricSelection(sampleNames(for: $0), metadata: false)) }
    )
}

/// Fills a reading field by field from the first metric name present, noting every name it looks up.
private struct Mapper {
    typealias Field = EngineReading.Field
    let exposition: PrometheusExposition
    var reading = EngineReading()
    /// Every metric name looked up, in order, when recording.
    var asked: [String] = []
    private let recording: Bool

    init(exposition: PrometheusExposition, recording: Bool = false) {
        self.exposition = exposition
        self.recording = recording
    }

    mutating func map(_ engine: EngineKind) {
        switch engine {
        case .vllm, .emulated: vllm()
        case .sglang: sglang()
        case .tgi: tgi()
        case .llamacpp: llamaCpp()
        case .trtllm:
            tritonTensorRTLLM()
            trtllmServe()
        case .openai, .anthropic, .openAICompatible: break
        }
    }

    // MARK: - Engines

    /// vLLM V1 and V0 (and Isobar's emulator, which exports vLLM's names).
    mutating func vllm() {
        count(\.waiting, .waiting, "vllm:num_requests_waiting")
        count(\.running, .running, "vllm:num_requests_running")
        fraction(\.kvUsage, .kvUsage, "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
        total(\.preemptions, .preemptions, "vllm:num_preemptions_total")
        total(\.promptTokens, .promptTokens, "vllm:prompt_tokens_total")
        total(\.generationTokens, .generationTokens, "vllm:generation_tokens_total")
        total(\.prefixCacheHits, .prefixCacheHits, "vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
        total(
            \.prefixCacheQueries,
            .prefixCacheQueries,
            "vllm:prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_queries_total"
        )
        // V0's block hit rate is -1 while prefix caching is off: that is "unknown", not a rate.
        fraction(\.prefixCacheHitRate, .prefixCacheHitRate, "vllm:gpu_prefix_cache_hit_rate")
        cacheConfigInfo("vllm:cache_config_info")
    }

    mutating func sglang() {
        count(\.waiting, .waiting, "sglang:num_queue_reqs")
        count(\.running, .running, "sglang:num_running_reqs")
        fraction(\.kvUsage, .kvUsage, "sglang:token_usage")
        total(\.generationTokensPerSecond, .generationTokensPerSecond, "sglang:gen_throughput")
        // Measured over recent decode steps; SGLang's token counters move only when requests finish.
        reading.throughputIsLive = reading.generationTokensPerSecond != nil
        total(\.promptTokens, .promptTokens, "sglang:prompt_tokens_total")
        total(\.generationTokens, .generationTokens, "sglang:generation_tokens_total")
        total(\.preemptions, .preemptions, "sglang:num_retracted_requests_total")
        // SGLang's pool is token-granular: one token per "block".
        if count(\.kvBlocks, .kvBlocks, "sglang:max_total_num_tokens") {
            reading.kvBlockSize = 1
            reading.sources[.kvBlockSize] = "sglang:max_total_num_tokens"
        }
        // Older builds report the hit rate in percent.
        if let rate = mean("sglang:cache_hit_rate"), rate >= 0 {
            reading.prefixCacheHitRate = min(1, rate > 1 ? rate / 100 : rate)
            reading.sources[.prefixCacheHitRate] = "sglang:cache_hit_rate"
        }
        // Cached prompt tokens out of all prompt tokens (which include the cached ones).
        if total(\.prefixCacheHits, .prefixCacheHits, "sglang:cached_tokens_total") {
            total(\.prefixCacheQueries, .prefixCacheQueries, "sglang:prompt_tokens_total")
        }
    }

    /// TGI has no token counters; its per-request histograms' sums are cumulative and grow as requests end.
    mutating func tgi() {
        count(\.waiting, .waiting, "tgi_queue_size")
        count(\.running, .running, "tgi_batch_current_size")
        count(\.batchMaxTokens, .batchMaxTokens, "tgi_batch_current_max_tokens")
        total(\.promptTokens, .promptTokens, "tgi_request_input_length_sum")
        total(\.generationTokens, .generationTokens, "tgi_request_generated_tokens_sum")
    }

    mutating func llamaCpp() {
        count(\.waiting, .waiting, "llamacpp:requests_deferred")
        count(\.running, .running, "llamacpp:requests_processing")
        // Exported by builds before the unified KV cache; later builds drop it.
        fraction(\.kvUsage, .kvUsage, "llamacpp:kv_cache_usage_ratio")
        total(\.promptTokens, .promptTokens, "llamacpp:prompt_tokens_total")
        total(\.generationTokens, .generationTokens, "llamacpp:tokens_predicted_total")
        total(\.promptTokensPerSecond, .promptTokensPerSecond, "llamacpp:prompt_tokens_seconds")
        total(\.generationTokensPerSecond, .generationTokensPerSecond, "llamacpp:predicted_tokens_seconds")
    }

    /// The Triton TensorRT-LLM backend's batch-manager statistics.
    mutating func tritonTensorRTLLM() {
        let requests = "nv_trt_llm_request_metrics"
        count(\.waiting, .waiting, requests, where: [("request_type", "waiting")])
        count(\.running, .running, requests, where: [("request_type", "active")])
        let blocks = "nv_trt_llm_kv_cache_block_metrics"
        count(\.kvBlocks, .kvBlocks, blocks, where: [("kv_cache_block_type", "max")])
        if let perBlock = nonNegativeSum(blocks, where: [("kv_cache_block_type", "tokens_per")]),
            let size = Self.whole(perBlock), size > 0
        {
            reading.kvBlockSize = size
            reading.sources[.kvBlockSize] = "\(blocks){kv_cache_block_type=\"tokens_per\"}"
        }
        if let used = nonNegativeSum(blocks, where: [("kv_cache_block_type", "used")]),
            let max = nonNegativeSum(blocks, where: [("kv_cache_block_type", "max")]), max > 0
        {
            reading.kvUsage = min(1, Swift.max(0, used / max))
            reading.sources[.kvUsage] = "\(blocks){kv_cache_block_type=\"used\"}/{kv_cache_block_type=\"max\"}"
        } else {
            fraction(\.kvUsage, .kvUsage, blocks, where: [("kv_cache_block_type", "fraction")])
        }
    }

    /// `trtllm-serve`'s own metrics (served at `/prometheus/metrics`).
    mutating func trtllmServe() {
        count(\.waiting, .waiting, "trtllm_num_requests_waiting")
        count(\.running, .running, "trtllm_num_requests_running")
        fraction(\.kvUsage, .kvUsage, "trtllm_kv_cache_utilization")
        count(\.kvBlocks, .kvBlocks, "trtllm_kv_cache_max_blocks")
        count(\.kvBlockSize, .kvBlockSize, "trtllm_kv_cache_tokens_per_block")
        total(\.promptTokens, .promptTokens, "trtllm_prompt_tokens_total")
        total(\.generationTokens, .generationTokens, "trtllm_generation_tokens_total")
        fraction(\.prefixCacheHitRate, .prefixCacheHitRate, "trtllm_kv_cache_hit_rate")
        let reused = nonNegativeSum("trtllm_kv_cache_reused_blocks_total")
        let missed = nonNegativeSum("trtllm_kv_cache_missed_blocks_total")
        if let reused, let missed {
            reading.prefixCacheHits = reused
            reading.prefixCacheQueries = reused + missed
            reading.sources[.prefixCacheHits] = "trtllm_kv_cache_reused_blocks_total"
            reading.sources[.prefixCacheQueries] =
                "trtllm_kv_cache_reused_blocks_total+trtllm_kv_cache_missed_blocks_total"
        }
    }

    /// vLLM's info gauge: `block_size` and `num_gpu_blocks` are labels (one sample per data-parallel engine).
    mutating func cacheConfigInfo(_ name: String) {
        let samples = lookup(name).map { exposition.samples[$0] }
        if let size = samples.lazy.compactMap({ $0.label("block_size").flatMap(Int.init) }).first(where: { $0 > 0 }) {
            reading.kvBlockSize = size
            reading.sources[.kvBlockSize] = "\(name){block_size}"
        }
        let blocks = samples.compactMap { $0.label("num_gpu_blocks").flatMap(Int.init) }.filter { $0 > 0 }
        if !blocks.isEmpty {
            reading.kvBlocks = blocks.reduce(0, +)
            reading.sources[.kvBlocks] = "\(name){num_gpu_blocks}"
        }
    }

    // MARK: - Combining label sets

    /// A count (requests, blocks): the sum over label sets, as a whole number.
    @discardableResult
    mutating func count(
        _ field: WritableKeyPath<EngineReading, Int?>,
        _ name: Field,
        _ metrics: String...,
        where labels: [(String, String)] = []
    ) -> Bool {
        for metric in metrics {
            guard let sum = nonNegativeSum(metric, where: labels), let value = Self.whole(sum) else { continue }
            reading[keyPath: field] = value
            reading.sources[name] = Self.source(metric, labels)
            return true
        }
        return false
    }

    /// A cumulative counter, or a throughput: the sum over label sets (each data-parallel rank reports its
    /// own).
    @discardableResult
    mutating func total(_ field: WritableKeyPath<EngineReading, Double?>, _ name: Field, _ metrics: String...) -> Bool {
        for metric in metrics {
            guard let sum = nonNegativeSum(metric) else { continue }
            reading[keyPath: field] = sum
            reading.sources[name] = metric
            return true
        }
        return false
    }

    /// A fraction (0–1): the mean over label sets; negative means unknown.
    mutating func fraction(
        _ field: WritableKeyPath<EngineReading, Double?>,
        _ name: Field,
        _ metrics: String...,
        where labels: [(String, String)] = []
    ) {
        for metric in metrics {
            guard let value = mean(metric, where: labels), value >= 0 else { continue }
            reading[keyPath: field] = min(1, value)
            reading.sources[name] = Self.source(metric, labels)
            return
        }
    }

    mutating func nonNegativeSum(_ metric: String, where labels: [(String, String)] = []) -> Double? {
        let values = finiteValues(metric, labels)
        guard !values.isEmpty, values.allSatisfy({ $0 >= 0 }) else { return nil }
        return values.reduce(0, +)
    }

    mutating func mean(_ metric: String, where labels: [(String, String)] = []) -> Double? {
        let values = finiteValues(metric, labels)
        guard !values.isEmpty else { return nil }
        return values.reduce(0, +) / Double(values.count)
    }

    private mutating func finiteValues(_ metric: String, _ labels: [(String, String)]) -> [Double] {
        var values: [Double] = []
        for i in lookup(metric) {
            let sample = exposition.samples[i]
            if sample.value.isFinite, sample.matches(labels) { values.append(sample.value) }
        }
        return values
    }

    private mutating func lookup(_ metric: String) -> [Int] {
        if recording, !asked.contains(metric) { asked.append(metric) }
        return exposition.sampleIndices(named: metric)
    }

    static func whole(_ value: Double) -> Int? {
        guard value.isFinite, value >= 0, value < 1e15 else { return nil }
        return Int(value.rounded())
    }

    private static func source(_ metric: String, _ labels: [(String, String)]) -> String {
        labels.isEmpty ? metric : metric + "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
    }
}
