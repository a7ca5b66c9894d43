/// The timing of an emulated engine: how long an unloaded engine takes to the first token, how fast each
/// sequence decodes and how many sequences run at once (more wait in a queue).
///
/// These are coarse presets for trying the gateway; the engine-model issue replaces them with
/// iteration-level profiles calibrated from real runs.
public struct EmulatorProfile: Sendable, Equatable {
    public var name: String
    /// Time to first token of an unloaded engine, in milliseconds.
    public var firstTokenMs: Double
    /// Prefill speed in tokens per second, added to the first-token time per prompt token; `nil` is instant.
    public var prefillTokensPerSecond: Double?
    /// Decode speed of one sequence in tokens per second; `nil` emits every token at once.
    public var tokensPerSecond: Double?
    /// Sequences served at once.
    public var maxConcurrency: Int
    /// Output length when the request sets no `max_tokens`.
    public var defaultOutputTokens: Int
    /// KV-cache tokens; usage is reported as the running sequences' tokens over this.
    public var kvCacheTokens: Int

    public init(
        name: String,
        firstTokenMs: Double,
        prefillTokensPerSecond: Double?,
        tokensPerSecond: Double?,
        maxConcurrency: Int,
        defaultOutputTokens: Int = 64,
        kvCacheTokens: Int = 262_144
    ) {
        self.name = name
        self.firstTokenMs = firstTokenMs
        self.prefillTokensPerSecond = prefillTokensPerSecond
        self.tokensPerSecond = tokensPerSecond
        self.maxConcurrency = maxConcurrency
        self.defaultOutputTokens = defaultOutputTokens
        self.kvCacheTokens = kvCacheTokens
    }

    /// The shipped presets, by name.
    public static let presets: [EmulatorProfile] = [
        // A zero-latency upstream, for benchmarks of the gateway itself.
        EmulatorProfile(
            name: "instant",
            firstTokenMs: 0,
            prefillTokensPerSecond: nil,
            tokensPerSecond: nil,
            maxConcurrency: 100_000,
            defaultOutputTokens: 16
        ),
        EmulatorProfile(
            name: "llama-3.1-8b-h100",
            firstTokenMs: 25,
            prefillTokensPerSecond: 30_000,
            tokensPerSecond: 120,
            maxConcurrency: 256,
            kvCacheTokens: 460_000
        ),
        EmulatorProfile(
            name: "llama-3.1-70b-h100",
            firstTokenMs: 60,
            prefillTokensPerSecond: 9_000,
            tokensPerSecond: 45,
            maxConcurrency: 128,
            kvCacheTokens: 900_000
        ),
        EmulatorProfile(
            name: "llama-2-70b-a100",
            firstTokenMs: 90,
            prefillTokensPerSecond: 4_500,
            tokensPerSecond: 30,
            maxConcurrency: 64,
            kvCacheTokens: 200_000
        ),
    ]

    /// The preset called `name`, if any.
    public static func named(_ name: String) -> EmulatorProfile? {
        presets.first { $0.name == name }
    }
}

extension PolicyKind {
    /// True for policies this build implements; the others are reserved names of the design.
    public var isAvailable: Bool {
        switch self {
        case .roundRobin, .random, .leastRequest, .powerOfTwo: true
        case .isobar, .leastTokens, .peakEWMA: false
        }
    }
}

extension CatchAll.Mode {
    /// True for modes this build implements.
    public var isAvailable: Bool { self == .busy }
}
