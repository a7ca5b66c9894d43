/// What an inference engine replica can do: the scheduler limits of a continuous-batching engine
/// (vLLM v1 style), its KV-cache size, and how long one iteration (step) takes.
///
/// A value only; `IsobarEngineModel` runs it. Shipped profiles are in `EngineProfile.presets`; a profile
/// fitted by `isobar calibrate` is a YAML file with the same fields.
public struct EngineProfile: Sendable, Equatable {
    public var name: String
    /// Sequences in one batch (vLLM `max_num_seqs`).
    public var maxNumSeqs: Int
    /// Tokens computed in one step, prefill and decode together (vLLM `max_num_batched_tokens`).
    public var maxNumBatchedTokens: Int
    /// Tokens per KV-cache block.
    public var blockSize: Int
    /// KV-cache blocks on the replica.
    public var numBlocks: Int
    /// Reuse cached blocks of a shared prompt prefix (vLLM `enable_prefix_caching`).
    public var prefixCaching: Bool
    public var stepTime: StepTime

    public init(
        name: String,
        maxNumSeqs: Int,
        maxNumBatchedTokens: Int,
        blockSize: Int = 16,
        numBlocks: Int,
        prefixCaching: Bool = true,
        stepTime: StepTime
    ) {
        self.name = name
        self.maxNumSeqs = maxNumSeqs
        self.maxNumBatchedTokens = maxNumBatchedTokens
        self.blockSize = blockSize
        self.numBlocks = numBlocks
        self.prefixCaching = prefixCaching
        self.stepTime = stepTime
    }

    /// Tokens the KV cache holds.
    public var kvCacheTokens: Int { numBlocks * blockSize }
}

/// How long one engine step takes.
public enum StepTime: Sendable, Equatable {
    /// Every step takes the same time, whatever it computes (for analytic checks).
    case fixed(seconds: Double)
    /// A roofline-style formula of the work in the step (see `RooflineStepTime`).
    case roofline(RooflineStepTime)
}

/// The step-time formula of a GPU engine, in seconds:
///
///     step = overhead
///          + max(weightRead, linearPerToken × (P + D))
///          + prefillAttention × Σ over prefill chunks of chunk × (context before the chunk + (chunk + 1) / 2)
///          + decodeAttention × Σ over decode sequences of their KV length
///
/// where P is the prefill tokens of the step and D its decode sequences. The linear layers (projections,
/// MLP, LM head) are bound by reading the weights for small batches and by compute for large ones;
/// attention grows with the query tokens times the context they attend to. Coefficients come from
/// profiling data (see simulator/README.md for every derivation).
public struct RooflineStepTime: Sendable, Equatable {
    /// Per-step fixed cost: scheduling, sampling, kernel launches, in seconds.
    public var overhead: Double
    /// Time to stream the weights once (memory-bound floor of the linear layers), in seconds.
    public var weightRead: Double
    /// Compute time of the linear layers per batched token, in seconds.
    public var linearPerToken: Double
    /// Prefill attention per (query token × attended token) pair, in seconds.
    public var prefillAttention: Double
    /// Decode attention per KV-cache token read, in seconds.
    public var decodeAttention: Double

    public init(
        overhead: Double,
        weightRead: Double,
        linearPerToken: Double,
        prefillAttention: Double,
        decodeAttention: Double
    ) {
        self.overhead = overhead
        self.weightRead = weightRead
        self.linearPerToken = linearPerToken
        self.prefillAttention = prefillAttention
        self.decodeAttention = decodeAttention
    }

    /// The step time of a step with the given work.
    @inline(__always)
    public func seconds(tokens: Int, prefillAttentionPairs: Double, decodeKVTokens: Int) -> Double {
        overhead + max(weightRead, linearPerToken * Double(tokens)) + prefillAttention * prefillAttentionPairs
            + decodeAttention * Double(decodeKVTokens)
    }
}

extension Capacity {
    /// Fills the prefill and decode rate hints the operator left out from an engine profile: prefill at
    /// the compute-bound rate of the linear layers (a fixed-step profile: a full token budget per step),
    /// decode at a full batch per weight-bound step.
    public mutating func fillHints(from profile: EngineProfile) {
        switch profile.stepTime {
        case .fixed(let seconds) where seconds > 0:
            prefillTokensPerSecond = prefillTokensPerSecond ?? Double(profile.maxNumBatchedTokens) / seconds
            decodeTokensPerSecond = decodeTokensPerSecond ?? Double(profile.maxNumSeqs) / seconds
        case .fixed:
            break
        case .roofline(let formula):
            prefillTokensPerSecond = prefillTokensPerSecond ?? 1 / max(formula.linearPerToken, 1e-9)
            let step = formula.overhead + formula.weightRead
            decodeTokensPerSecond = decodeTokensPerSecond ?? Double(min(profile.maxNumSeqs, 256)) / max(step, 1e-6)
        }
        maxConcurrency = maxConcurrency ?? profile.maxNumSeqs
        kvCacheTokens = kvCacheTokens ?? profile.kvCacheTokens
    }
}
