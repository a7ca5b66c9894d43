import IsobarModel
import Testing

@testable import IsobarWire

@Suite("EngineMetrics: each engine's real exposition maps to the expected reading")
struct EngineMetricsTests {
    static func reading(_ fixture: String, _ engine: EngineKind) -> EngineReading {
        EngineMetrics.reading(engine: engine, exposition: PrometheusFixture.exposition(fixture))
    }

    @Test("vLLM V1 with two data-parallel engines: counts and counters summed, KV usage averaged")
    func vllmV1() {
        let r = Self.reading("vllm-v1.txt", .vllm)
        #expect(r.waiting == 2)
        #expect(r.running == 25)
        #expect(r.kvUsage == (0.387_145_996_093_75 + 0.295_410_156_25) / 2)
        #expect(r.preemptions == 5)
        #expect(r.promptTokens == 3_546_209)
        #expect(r.generationTokens == 1_773_419)
        #expect(r.prefixCacheHits == 1_200_576)
        #expect(r.prefixCacheQueries == 3_546_209)
        #expect(r.prefixCacheHitRate == nil)
        #expect(r.kvBlockSize == 16)
        #expect(r.kvBlocks == 55268)
        #expect(r.sources[.kvUsage] == "vllm:kv_cache_usage_perc")
        #expect(r.sources[.prefixCacheHits] == "vllm:prefix_cache_hits_total")
        #expect(r.sources[.kvBlocks] == "vllm:cache_config_info{num_gpu_blocks}")
    }

    @Test("vLLM V0: the older KV gauge, and a -1 prefix hit rate (caching off) reads as unknown")
    func vllmV0() {
        let r = Self.reading("vllm-v0.txt", .vllm)
        #expect(r.waiting == 0)
        #expect(r.running == 0)
        #expect(r.kvUsage == 0)
        #expect(r.sources[.kvUsage] == "vllm:gpu_cache_usage_perc")
        #expect(r.prefixCacheHitRate == nil)
        #expect(r.preemptions == 0)
        #expect(r.promptTokens == 148)
        #expect(r.generationTokens == 955)
        #expect(r.prefixCacheHits == nil)
        #expect(r.kvBlockSize == 16)
        #expect(r.kvBlocks == 81767)
    }

    @Test("The emulator is read with vLLM's names")
    func emulated() {
        #expect(Self.reading("vllm-v1.txt", .emulated) == Self.reading("vllm-v1.txt", .vllm))
    }

    @Test("SGLang: queue, running, token usage, its own throughput and hit rate; no KV geometry in this dump")
    func sglang() {
        let r = Self.reading("sglang.txt", .sglang)
        #expect(r.waiting == 2826)
        #expect(r.running == 162)
        #expect(r.kvUsage == 0.28)
        #expect(r.generationTokensPerSecond == 86.508_141_777_269_02)
        #expect(r.throughputIsLive)
        #expect(r.prefixCacheHitRate == 0.007_507_552_643_049_313)
        #expect(r.promptTokens == 8_128_902)
        #expect(r.generationTokens == 7_557_572)
        #expect(r.preemptions == nil)
        #expect(r.kvBlocks == nil)
    }

    @Test("SGLang: pool size as token-granular KV, DP ranks summed, a percent hit rate scaled, cached tokens")
    func sglangRanks() {
        let x = PrometheusParser.parse(
            """
            sglang:max_total_num_tokens{dp_rank="0",engine_type="unified",tp_rank="0"} 144870.0
            sglang:max_total_num_tokens{dp_rank="1",engine_type="unified",tp_rank="1"} 144870.0
            sglang:num_running_reqs{dp_rank="0",engine_type="unified",tp_rank="0"} 3.0
            sglang:num_running_reqs{dp_rank="1",engine_type="unified",tp_rank="1"} 4.0
            sglang:cache_hit_rate{name="google/gemma-2-9b-it"} 87.58777633289988
            sglang:prompt_tokens_total{model_name="m"} 1000.0
            sglang:cached_tokens_total{cache_source="device",model_name="m"} 600.0
            sglang:num_retracted_requests_total{model_name="m"} 2.0
            """
        )
        let r = EngineMetrics.reading(engine: .sglang, exposition: x)
        #expect(r.kvBlocks == 289_740)
        #expect(r.kvBlockSize == 1)
        #expect(r.running == 7)
        #expect(r.prefixCacheHitRate == 0.875_877_763_328_998_8)
        #expect(r.prefixCacheHits == 600)
        #expect(r.prefixCacheQueries == 1000)
        #expect(r.preemptions == 2)
    }

    @Test("TGI: queue and batch gauges, the batch token budget, token totals from histogram sums")
    func tgi() {
        let r = Self.reading("tgi.txt", .tgi)
        #expect(r.waiting == 0)
        #expect(r.running == 0)
        #expect(r.batchMaxTokens == 0)
        #expect(r.promptTokens == 662)
        #expect(r.generationTokens == 3423)
        #expect(r.kvUsage == nil)
        #expect(r.sources[.generationTokens] == "tgi_request_generated_tokens_sum")
    }

    @Test("llama.cpp: processing and deferred requests, KV ratio of older builds, counters and its own rates")
    func llamaCpp() {
        let r = Self.reading("llamacpp.txt", .llamacpp)
        #expect(r.running == 0)
        #expect(r.waiting == 0)
        #expect(r.kvUsage == 0.491063)
        #expect(r.promptTokens == 6886)
        #expect(r.generationTokens == 3469)
        #expect(r.promptTokensPerSecond == 2.37151)
        #expect(r.generationTokensPerSecond == 0.978764)
        #expect(!r.throughputIsLive)
    }

    @Test("llama.cpp /slots: busy slots and their context fill what /metrics lacks, never override it")
    func llamaCppSlots() throws {
        let slots = try #require(
            PrometheusFixture.bytes("llamacpp-slots.json").withUnsafeBytes { LlamaCppSlots.reading(json: $0) }
        )
        #expect(slots == LlamaCppSlots(slots: 2, processing: 2, contextTokens: 131_072))
        let fromSlotsOnly = EngineReading().merging(slots)
        #expect(fromSlotsOnly.running == 2)
        #expect(fromSlotsOnly.kvBlockSize == 1)
        #expect(fromSlotsOnly.kvBlocks == 131_072)
        #expect(fromSlotsOnly.sources[.running] == "/slots is_processing")
        let merged = Self.reading("llamacpp.txt", .llamacpp).merging(slots)
        #expect(merged.running == 0)
        #expect(merged.kvUsage == 0.491063)
        let old = try #require(LlamaCppSlots.reading(json: JSON(parsing: #"[{"id":0,"state":1},{"id":1,"state":0}]"#)))
        #expect(old == LlamaCppSlots(slots: 2, processing: 1, contextTokens: nil))
        #expect(LlamaCppSlots.reading(json: JSON.object(["error": "not supported"])) == nil)
    }

    @Test("TensorRT-LLM on Triton: request types, KV usage as used over max blocks, block size")
    func triton() {
        let r = Self.reading("trtllm-triton.txt", .trtllm)
        #expect(r.waiting == 1)
        #expect(r.running == 0)
        #expect(r.kvBlocks == 6239)
        #expect(r.kvBlockSize == 64)
        #expect(r.kvUsage == 1.0 / 6239)
        #expect(r.promptTokens == nil)
    }

    @Test("trtllm-serve: its trtllm_ metric names (from tensorrt_llm/metrics/collector.py)")
    func trtllmServe() {
        let labels = #"{engine_type="trtllm",model_name="Qwen/Qwen3-8B"}"#
        let x = PrometheusParser.parse(
            """
            trtllm_num_requests_running\(labels) 6.0
            trtllm_num_requests_waiting\(labels) 2.0
            trtllm_kv_cache_utilization\(labels) 0.42
            trtllm_kv_cache_max_blocks\(labels) 4096.0
            trtllm_kv_cache_tokens_per_block\(labels) 32.0
            trtllm_prompt_tokens_total\(labels) 52311.0
            trtllm_generation_tokens_total\(labels) 18877.0
            trtllm_kv_cache_hit_rate\(labels) 0.31
            trtllm_kv_cache_reused_blocks_total\(labels) 900.0
            trtllm_kv_cache_missed_blocks_total\(labels) 2100.0
            """
        )
        let r = EngineMetrics.reading(engine: .trtllm, exposition: x)
        #expect(r.running == 6)
        #expect(r.waiting == 2)
        #expect(r.kvUsage == 0.42)
        #expect(r.kvBlocks == 4096)
        #expect(r.kvBlockSize == 32)
        #expect(r.promptTokens == 52311)
        #expect(r.generationTokens == 18877)
        #expect(r.prefixCacheHitRate == 0.31)
        #expect(r.prefixCacheHits == 900)
        #expect(r.prefixCacheQueries == 3000)
    }

    @Test("Missing, NaN and negative values read as missing, never as zero; providers read nothing")
    func missingIsNil() {
        let x = PrometheusParser.parse("vllm:num_requests_running NaN\nvllm:num_requests_waiting -1\nunrelated 5\n")
        let r = EngineMetrics.reading(engine: .vllm, exposition: x)
        #expect(r.running == nil)
        #expect(r.waiting == nil)
        #expect(r.kvUsage == nil)
        #expect(r.isEmpty)
        #expect(EngineMetrics.reading(engine: .openai, exposition: PrometheusFixture.exposition("vllm-v1.txt")).isEmpty)
    }

    @Test("A selective parse gives the same reading as a full one, for every engine and fixture")
    func selectiveParse() {
        let cases: [(String, EngineKind)] = [
            ("vllm-v1.txt", .vllm), ("vllm-v0.txt", .vllm), ("sglang.txt", .sglang), ("tgi.txt", .tgi),
            ("llamacpp.txt", .llamacpp), ("trtllm-triton.txt", .trtllm), ("vllm-v1.txt", .sglang),
        ]
        var parser = PrometheusParser()
        for (fixture, engine) in cases {
            let selective = PrometheusFixture.bytes(fixture).withUnsafeBytes {
                parser.parse($0, selecting: EngineMetrics.selection(for: engine))
            }
            #expect(EngineMetrics.reading(engine: engine, exposition: selective) == Self.reading(fixture, engine))
        }
        #expect(EngineMetrics.metricNames(for: .vllm).contains("vllm:cache_config_info"))
        #expect(EngineMetrics.metricNames(for: .trtllm).contains("trtllm_kv_cache_missed_blocks_total"))
        #expect(EngineMetrics.metricNames(for: .anthropic).isEmpty)
    }
}
