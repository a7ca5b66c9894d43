/// A topology file as written, before validation: the shape of the YAML with every field optional and
/// located. Decoding it checks only YAML types and key names; `TopologyValidator` checks the rest.
struct TopologyFile {
    static let keys = [
        "mesh", "regions", "nodes", "backends", "models", "routing", "catch_all", "limits", "keys", "redis",
    ]

    var location: Location
    var mesh: MeshFile?
    var regions: Sourced<[RegionFile]>?
    var nodes: Sourced<[NodeFile]>?
    var backends: Sourced<[BackendFile]>?
    var models: Sourced<[ModelFile]>?
    var routing: RoutingFile?
    var catchAll: CatchAllFile?
    var limits: LimitsFile?
    var keys: KeysFile?
    var redis: RedisFile?

    init?(_ root: YAMLValue) {
        guard let fields = root.fields(Self.keys) else { return nil }
        location = fields.location
        mesh = fields.value("mesh").flatMap(MeshFile.init)
        regions = fields.list("regions", RegionFile.init)
        nodes = fields.list("nodes", NodeFile.init)
        backends = fields.list("backends", BackendFile.init)
        models = fields.list("models", ModelFile.init)
        routing = fields.value("routing").flatMap(RoutingFile.init)
        catchAll = fields.value("catch_all").flatMap(CatchAllFile.init)
        limits = fields.value("limits").flatMap(LimitsFile.init)
        keys = fields.value("keys").flatMap(KeysFile.init)
        redis = fields.value("redis").flatMap(RedisFile.init)
    }
}

/// `mesh:`
struct MeshFile {
    var location: Location
    var name: Sourced<String>?
    var gossipKeyEnv: Sourced<String>?
    var seeds: Sourced<[Sourced<String>]>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["name", "gossip_key_env", "seeds"]) else { return nil }
        location = fields.location
        name = fields.string("name")
        gossipKeyEnv = fields.string("gossip_key_env")
        seeds = fields.strings("seeds")
    }
}

/// An item of `regions:`.
struct RegionFile {
    var location: Location
    var name: Sourced<String>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["name"]) else { return nil }
        location = fields.location
        name = fields.string("name")
    }
}

/// An item of `nodes:`.
struct NodeFile {
    var location: Location
    var name: Sourced<String>?
    var region: Sourced<String>?
    var listen: Sourced<String>?
    var gossip: Sourced<String>?
    var pool: Sourced<Bool>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["name", "region", "listen", "gossip", "pool"]) else { return nil }
        location = fields.location
        name = fields.string("name")
        region = fields.string("region")
        listen = fields.string("listen")
        gossip = fields.string("gossip")
        pool = fields.boolean("pool")
    }
}

/// An item of `backends:`.
struct BackendFile {
    static let keys = [
        "name", "region", "engine", "url", "metrics_url", "api_key_env", "api_key_file", "models", "capacity", "price",
        "emulate", "replicas", "timeouts", "reachable_from",
    ]

    var location: Location
    var name: Sourced<String>?
    var region: Sourced<String>?
    var engine: Sourced<String>?
    var url: Sourced<String>?
    var metricsURL: Sourced<String>?
    var apiKeyEnv: Sourced<String>?
    var apiKeyFile: Sourced<String>?
    var models: Sourced<[Sourced<String>]>?
    var capacity: CapacityFile?
    var price: PriceFile?
    var emulate: EmulateFile?
    var replicas: Sourced<Int>?
    var timeouts: Fields?
    var reachableFrom: Sourced<String>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(Self.keys) else { return nil }
        reachableFrom = fields.string("reachable_from")
        location = fields.location
        name = fields.string("name")
        region = fields.string("region")
        engine = fields.string("engine")
        url = fields.string("url")
        metricsURL = fields.string("metrics_url")
        apiKeyEnv = fields.string("api_key_env")
        apiKeyFile = fields.string("api_key_file")
        models = fields.strings("models")
        capacity = fields.value("capacity").flatMap(CapacityFile.init)
        price = fields.value("price").flatMap(PriceFile.init)
        emulate = fields.value("emulate").flatMap(EmulateFile.init)
        replicas = fields.integer("replicas")
        timeouts = fields.timeouts()
    }
}

/// `backends[i].capacity:`
struct CapacityFile {
    var prefillTokensPerSecond: Sourced<Double>?
    var decodeTokensPerSecond: Sourced<Double>?
    var maxConcurrency: Sourced<Int>?
    var contextWindow: Sourced<Int>?
    var kvCacheTokens: Sourced<Int>?

    init?(_ value: YAMLValue) {
        let keys = [
            "prefill_tokens_per_s", "decode_tokens_per_s", "max_concurrency", "context_window", "kv_cache_tokens",
        ]
        guard let fields = value.fields(keys) else { return nil }
        prefillTokensPerSecond = fields.number("prefill_tokens_per_s")
        decodeTokensPerSecond = fields.number("decode_tokens_per_s")
        maxConcurrency = fields.integer("max_concurrency")
        contextWindow = fields.integer("context_window")
        kvCacheTokens = fields.integer("kv_cache_tokens")
    }
}

/// `backends[i].price:`
struct PriceFile {
    var inputPerMTok: Sourced<Double>?
    var outputPerMTok: Sourced<Double>?
    var perHour: Sourced<Double>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["input_per_mtok", "output_per_mtok", "per_hour"]) else { return nil }
        inputPerMTok = fields.number("input_per_mtok")
        outputPerMTok = fields.number("output_per_mtok")
        perHour = fields.number("per_hour")
    }
}

/// `backends[i].emulate:`
struct EmulateFile {
    var location: Location
    var profile: Sourced<String>?
    var api: Sourced<String>?
    var tokensPerSecond: Sourced<Double>?
    var maxConcurrency: Sourced<Int>?
    var fault: FaultFile?

    init?(_ value: YAMLValue) {
        let keys = ["profile", "api", "tokens_per_second", "max_concurrency", "fault"]
        guard let fields = value.fields(keys) else { return nil }
        location = fields.location
        profile = fields.string("profile")
        api = fields.string("api")
        tokensPerSecond = fields.number("tokens_per_second")
        maxConcurrency = fields.integer("max_concurrency")
        fault = fields.value("fault").flatMap(FaultFile.init)
    }
}

/// `backends[i].emulate.fault:`
struct FaultFile {
    var location: Location
    var status: Sourced<Int>?
    var retryAfterSeconds: Sourced<Int>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["status", "retry_after_s"]) else { return nil }
        location = fields.location
        status = fields.integer("status")
        retryAfterSeconds = fields.integer("retry_after_s")
    }
}

/// An item of `models:`.
struct ModelFile {
    var location: Location
    var name: Sourced<String>?
    var deployments: Sourced<[DeploymentFile]>?
    var fallbacks: Sourced<[Sourced<String>]>?
    var policy: Sourced<String>?
    var contextFallbacks: Sourced<[Sourced<String>]>?
    var timeouts: Fields?
    var cache: Fields?

    init?(_ value: YAMLValue) {
        let keys = ["name", "deployments", "fallbacks", "policy", "context_fallbacks", "timeouts", "cache"]
        guard let fields = value.fields(keys) else { return nil }
        location = fields.location
        name = fields.string("name")
        deployments = fields.list("deployments", DeploymentFile.init)
        fallbacks = fields.strings("fallbacks")
        policy = fields.string("policy")
        contextFallbacks = fields.strings("context_fallbacks")
        timeouts = fields.timeouts()
        cache = fields.fields("cache", ["enabled", "ttl_s", "force", "store"])
    }
}

/// An item of `models[i].deployments:`.
struct DeploymentFile {
    var location: Location
    var backend: Sourced<String>?
    var model: Sourced<String>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["backend", "model"]) else { return nil }
        location = fields.location
        backend = fields.string("backend")
        model = fields.string("model")
    }
}

/// `routing:`
struct RoutingFile {
    var policy: Sourced<String>?
    var hysteresisMs: Sourced<Double>?
    var spillOver: Sourced<Bool>?
    var sessionTTLSeconds: Sourced<Double>?
    var attempts: Sourced<Int>?
    var backoffBaseMs: Sourced<Double>?
    var backoffMaxMs: Sourced<Double>?
    var timeouts: Fields?
    var consecutiveFailures: Sourced<Int>?
    var cooldownSeconds: Sourced<Double>?
    var breakerWindow: Sourced<Int>?
    var errorRate: Sourced<Double>?
    var balancing: Fields?
    var admission: Fields?
    var debugHeader: Sourced<Bool>?
    var idleProbeSeconds: Sourced<Double>?

    init?(_ value: YAMLValue) {
        let keys = [
            "policy", "proximity", "retries", "timeouts", "circuit_breaker", "balancing", "admission", "debug_header",
            "health",
        ]
        guard let fields = value.fields(keys) else { return nil }
        policy = fields.string("policy")
        if let proximity = fields.fields("proximity", ["hysteresis_ms", "spill_over", "session_ttl_s"]) {
            hysteresisMs = proximity.number("hysteresis_ms")
            spillOver = proximity.boolean("spill_over")
            sessionTTLSeconds = proximity.number("session_ttl_s")
        }
        if let retries = fields.fields("retries", ["attempts", "backoff_base_ms", "backoff_max_ms"]) {
            attempts = retries.integer("attempts")
            backoffBaseMs = retries.number("backoff_base_ms")
            backoffMaxMs = retries.number("backoff_max_ms")
        }
        timeouts = fields.timeouts()
        if let breaker = fields.fields(
            "circuit_breaker",
            ["consecutive_failures", "cooldown_s", "window", "error_rate"]
        ) {
            consecutiveFailures = breaker.integer("consecutive_failures")
            cooldownSeconds = breaker.number("cooldown_s")
            breakerWindow = breaker.integer("window")
            errorRate = breaker.number("error_rate")
        }
        balancing = fields.fields(
            "balancing",
            [
                "scrape_interval_ms", "stale_after_ms", "stale_penalty_ms", "affinity_budget_ms", "output_quantile",
                "kv_pressure_ms",
            ]
        )
        admission = fields.fields(
            "admission",
            ["max_queue_per_endpoint", "max_predicted_ttft_ms", "wait_queue_requests", "max_wait_ms"]
        )
        debugHeader = fields.boolean("debug_header")
        idleProbeSeconds = fields.fields("health", ["idle_probe_s"])?.number("idle_probe_s")
    }
}

extension Fields {
    /// A `timeouts:` mapping (of `routing`, a backend or a model).
    func timeouts() -> Fields? { fields("timeouts", ["connect_ms", "first_token_ms", "idle_ms", "total_ms"]) }
}

/// `catch_all:`
struct CatchAllFile {
    var location: Location
    var mode: Sourced<String>?
    var retryAfterSeconds: Sourced<Int>?
    var content: Sourced<String>?
    var cacheMaxBytes: Sourced<Int>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["mode", "retry_after_s", "content", "cache_max_bytes"]) else { return nil }
        location = fields.location
        mode = fields.string("mode")
        retryAfterSeconds = fields.integer("retry_after_s")
        content = fields.string("content")
        cacheMaxBytes = fields.integer("cache_max_bytes")
    }
}

/// `limits:`
struct LimitsFile {
    var maxRequestBodyBytes: Sourced<Int>?
    var responseCacheMaxBytes: Sourced<Int>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["max_request_body_bytes", "response_cache_max_bytes"]) else { return nil }
        maxRequestBodyBytes = fields.integer("max_request_body_bytes")
        responseCacheMaxBytes = fields.integer("response_cache_max_bytes")
    }
}

/// `keys:`
struct KeysFile {
    var location: Location
    var master: CredentialFile?
    var teams: Sourced<[TeamFile]>?
    var virtualKeys: Sourced<[VirtualKeyFile]>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["master", "teams", "virtual_keys"]) else { return nil }
        location = fields.location
        master = fields.value("master").flatMap { $0.fields(CredentialFile.keys) }.map(CredentialFile.init)
        teams = fields.list("teams", TeamFile.init)
        virtualKeys = fields.list("virtual_keys", VirtualKeyFile.init)
    }
}

/// Where a key's secret comes from: exactly one of its stored hash, an environment variable or a file.
struct CredentialFile {
    static let keys = ["hash", "secret_env", "secret_file"]

    var location: Location
    var hash: Sourced<String>?
    var secretEnv: Sourced<String>?
    var secretFile: Sourced<String>?

    init(_ fields: Fields) {
        location = fields.location
        hash = fields.string("hash")
        secretEnv = fields.string("secret_env")
        secretFile = fields.string("secret_file")
    }
}

/// The limits of a team or a key.
struct AllowanceFile {
    static let keys = ["models", "rpm", "tpm", "max_concurrent", "budget"]

    var models: Sourced<[Sourced<String>]>?
    var rpm: Sourced<Int>?
    var tpm: Sourced<Int>?
    var maxConcurrent: Sourced<Int>?
    var budget: Fields?

    init(_ fields: Fields) {
        models = fields.strings("models")
        rpm = fields.integer("rpm")
        tpm = fields.integer("tpm")
        maxConcurrent = fields.integer("max_concurrent")
        budget = fields.fields("budget", ["usd", "period"])
    }
}

/// An item of `keys.teams:`.
struct TeamFile {
    var location: Location
    var name: Sourced<String>?
    var allowance: AllowanceFile

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["name"] + AllowanceFile.keys) else { return nil }
        location = fields.location
        name = fields.string("name")
        allowance = AllowanceFile(fields)
    }
}

/// An item of `keys.virtual_keys:`.
struct VirtualKeyFile {
    var location: Location
    var id: Sourced<String>?
    var team: Sourced<String>?
    var credential: CredentialFile
    var allowance: AllowanceFile

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["id", "team"] + CredentialFile.keys + AllowanceFile.keys) else {
            return nil
        }
        location = fields.location
        id = fields.string("id")
        team = fields.string("team")
        credential = CredentialFile(fields)
        allowance = AllowanceFile(fields)
    }
}

/// `redis:`
struct RedisFile {
    var location: Location
    var url: Sourced<String>?
    var passwordEnv: Sourced<String>?
    var onFailure: Sourced<String>?
    var timeoutMs: Sourced<Double>?
    var pool: Sourced<Int>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["url", "password_env", "on_failure", "timeout_ms", "pool"]) else {
            return nil
        }
        location = fields.location
        url = fields.string("url")
        passwordEnv = fields.string("password_env")
        onFailure = fields.string("on_failure")
        timeoutMs = fields.number("timeout_ms")
        pool = fields.integer("pool")
    }
}
