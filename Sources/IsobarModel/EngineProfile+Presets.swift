extension EngineProfile {
    /// The shipped profiles. Coefficients and their derivations: simulator/README.md.
    public static let presets: [EngineProfile] = [instant, fixed, llama31_8B_H100, llama31_70B_H100, llama2_70B_A100]

    /// The preset called `name`, if any.
    public static func named(_ name: String) -> EngineProfile? {
        presets.first { $0.name == name }
    }

    /// Steps take no time: a zero-latency upstream for benchmarks of the gateway itself.
    public static let instant = EngineProfile(
        name: "instant",
        maxNumSeqs: 100_000,
        maxNumBatchedTokens: 1 << 30,
        numBlocks: 1 << 30,
        prefixCaching: false,
        stepTime: .fixed(seconds: 0)
    )

    /// Every step takes 10 ms: for analytic checks (set `max_num_seqs: 1` for a single-server queue).
    public static let fixed = EngineProfile(
        name: "fixed",
        maxNumSeqs: 256,
        maxNumBatchedTokens: 8192,
        numBlocks: 1 << 20,
        prefixCaching: false,
        stepTime: .fixed(seconds: 0.010)
    )

    /// Llama-3.1-8B-Instruct, bf16, one H100 SXM 80GB (TP1), vLLM V1 `vllm serve` defaults for an
    /// H100 (1,024 sequences, 8,192 batched tokens). Step time from LLMServingSim's H100 per-layer
    /// kernel latencies; KV blocks from 0.9 of GPU memory less weights and activation reserve.
    /// Derivation: simulator/README.md, "Engine profiles"; numbers: simulator/calibration/derive_profiles.py.
    public static let llama31_8B_H100 = EngineProfile(
        name: "llama-3.1-8b-h100",
        maxNumSeqs: 1024,
        maxNumBatchedTokens: 8192,
        numBlocks: 26_476,
        stepTime: .roofline(
            RooflineStepTime(
                overhead: 0.000_929,
                weightRead: 0.006_28,
                linearPerToken: 0.000_022_9,
                prefillAttention: 2.97e-9,
                decodeAttention: 5.15e-8
            )
        )
    )

    /// Llama-3.1-70B-Instruct, bf16, four H100 SXM 80GB (TP4), vLLM V1 `vllm serve` defaults for an
    /// H100 (1,024 sequences, 8,192 batched tokens). Step time from LLMServingSim's H100 TP4 per-layer
    /// kernel latencies plus an all-reduce estimate (the kernel rows hold no communication).
    /// Derivation: simulator/README.md, "Engine profiles"; numbers: simulator/calibration/derive_profiles.py.
    public static let llama31_70B_H100 = EngineProfile(
        name: "llama-3.1-70b-h100",
        maxNumSeqs: 1024,
        maxNumBatchedTokens: 8192,
        numBlocks: 27_701,
        stepTime: .roofline(
            RooflineStepTime(
                overhead: 0.002_81,
                weightRead: 0.015_0,
                linearPerToken: 0.000_068_1,
                prefillAttention: 4.68e-9,
                decodeAttention: 3.27e-8
            )
        )
    )

    /// Llama-2-70B-chat, fp16, two A100 SXM 80GB (TP2), vLLM V1 `vllm serve` defaults for an A100
    /// (256 sequences, 2,048 batched tokens). Step time fitted to Splitwise's measured end-to-end runs
    /// (Patel et al., ISCA 2024), whose 2023 software stack is slower per step than the H100 profiles'
    /// kernels. Derivation: simulator/README.md, "Engine profiles"; numbers: simulator/calibration/derive_profiles.py.
    public static let llama2_70B_A100 = EngineProfile(
        name: "llama-2-70b-a100",
        maxNumSeqs: 256,
        maxNumBatchedTokens: 2048,
        numBlocks: 2_393,
        stepTime: .roofline(
            RooflineStepTime(
                overhead: 0.020_6,
                weightRead: 0.036_5,
                linearPerToken: 0.000_364,
                prefillAttention: 6.94e-9,
                decodeAttention: 6.64e-7
            )
        )
    )
}
