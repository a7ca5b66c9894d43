import IsobarModel

/// How one emulated engine behaves: the engine profile that times it, the models it serves, and an
/// optional failure it answers every request with.
public struct EmulatorConfiguration: Sendable, Equatable {
    public var profile: EngineProfile
    /// Output tokens of a request that sets no `max_tokens`.
    public var defaultOutputTokens: Int
    /// Models served; empty serves any model name.
    public var models: [String]
    /// If set, requests must carry this key (`Authorization: Bearer` or `x-api-key`).
    public var apiKey: String?
    public var fault: EmulatedFault?
    /// The backend name reported in replies, for telling replicas apart.
    public var name: String

    public init(
        profile: EngineProfile,
        defaultOutputTokens: Int = 64,
        models: [String] = [],
        apiKey: String? = nil,
        fault: EmulatedFault? = nil,
        name: String = "emulator"
    ) {
        self.profile = profile
        self.defaultOutputTokens = defaultOutputTokens
        self.models = models
        self.apiKey = apiKey
        self.fault = fault
        self.name = name
    }

    /// The configuration of an `engine: emulated` backend of a topology.
    public init(backend: Backend) {
        let settings = backend.emulate ?? EmulateSettings(profile: EngineProfile.instant.name)
        var profile = EngineProfile.named(settings.profile) ?? .instant
        if let tps = settings.tokensPerSecond { profile.stepTime = .fixed(seconds: 1 / tps) }
        if let n = settings.maxConcurrency { profile.maxNumSeqs = n }
        self.init(
            profile: profile,
            defaultOutputTokens: profile == .instant ? 16 : 64,
            models: backend.models,
            apiKey: backend.apiKey?.value,
            fault: settings.fault,
            name: backend.name.rawValue
        )
    }
}
