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

    /// Llama-3.1-8B-Instruct, bf16, one H100 SXM (TP1).
    public static let llama31_8B_H100 = EngineProfile(
        name: "llama-3.1-8b-h100",
        maxNumSeqs: 256,
        maxNumBatchedTokens: 8192,
        numBlocks: 26_000,
        stepTime: .roofline(
            RooflineStepTime(
                overhead: 0.0012,
                weightRead: 0.0060,
                linearPerToken: 0.000_027,
                prefillAttention: 2.0e-11,
                decodeAttention: 6.0e-10
            )
        )
    )

    /// Llama-3.1-70B-Instruct, bf16, four H100 SXM (TP4).
    public static let llama31_70B_H100 = EngineProfile(
        name: "llama-3.1-70b-h100",
        maxNumSeqs: 256,
        maxNumBatchedTokens: 8192,
        numBlocks: 28_000,
        stepTime: .roofline(
            RooflineStepTime(
                overhead: 0.0020,
                weightRead: 0.0150,
                linearPerToken: 0.000_058,
                prefillAttention: 3.5e-11,
                decodeAttention: 1.2e-9
            )
        )
    )

    /// Llama-2-70B-chat, fp16, two A100-80GB (TP2).
    public static let llama2_70B_A100 = EngineProfile(
        name: "llama-2-70b-a100",
        maxNumSeqs: 128,
        maxNumBatchedTokens: 4096,
        numBlocks: 1_600,
        stepTime: .roofline(
            RooflineStepTime(
                overhead: 0.0020,
                weightRead: 0.0450,
                linearPerToken: 0.000_230,
                prefillAttention: 1.2e-10,
                decodeAttention: 4.0e-9
            )
        )
    )
}
