import IsobarModel

/// How one emulated engine behaves: its timing profile, the models it serves, the protocol it is
/// addressed in, and an optional failure it answers every request with.
public struct EmulatorConfiguration: Sendable, Equatable {
    public var profile: EmulatorProfile
    /// Models served; empty serves any model name.
    public var models: [String]
    /// If set, requests must carry this key (`Authorization: Bearer` or `x-api-key`).
    public var apiKey: String?
    public var fault: EmulatedFault?
    /// The backend name reported in replies, for telling replicas apart.
    public var name: String

    public init(
        profile: EmulatorProfile,
        models: [String] = [],
        apiKey: String? = nil,
        fault: EmulatedFault? = nil,
        name: String = "emulator"
    ) {
        self.profile = profile
        self.models = models
        self.apiKey = apiKey
        self.fault = fault
        self.name = name
    }

    /// The configuration of an `engine: emulated` backend of a topology.
    public init(backend: Backend) {
        let settings = backend.emulate ?? EmulateSettings(profile: "instant")
        var profile = EmulatorProfile.named(settings.profile) ?? EmulatorProfile.presets[0]
        if let tps = settings.tokensPerSecond { profile.tokensPerSecond = tps }
        if let ms = settings.firstTokenMs { profile.firstTokenMs = ms }
        if let n = settings.maxConcurrency { profile.maxConcurrency = n }
        self.init(
            profile: profile,
            models: backend.models,
            apiKey: backend.apiKey?.value,
            fault: settings.fault,
            name: backend.name.rawValue
        )
    }
}
