import Yams

/// A scenario file as written, before validation: the shape of the YAML with every field optional and
/// located. Decoding it checks only YAML types and key names; `ScenarioValidator` checks the rest.
struct ScenarioFile {
    static let keys = [
        "name", "seed", "requests", "duration_s", "warmup_s", "scrape_interval_ms", "load", "topology", "profiles",
        "workload", "network", "faults", "policies", "slo",
    ]

    var location: Location
    var name: Sourced<String>?
    var seed: Sourced<Int>?
    var requests: Sourced<Int>?
    var durationSeconds: Sourced<Double>?
    var warmupSeconds: Sourced<Double>?
    var scrapeIntervalMs: Sourced<Double>?
    /// The share of the fleet's capacity the workload's rates represent.
    var load: Sourced<Double>?
    /// A path to a topology file, or the topology itself (checked by the validator).
    var topology: YAMLValue?
    /// Profile names with the paths of their files.
    var profiles: [(name: Sourced<String>, path: Sourced<String>)]?
    var workload: Sourced<[WorkloadFile]>?
    var network: NetworkFile?
    var faults: Sourced<[InjectedFaultFile]>?
    var policies: Sourced<[Sourced<String>]>?
    var slo: SLOFile?
    /// Whether `requests` or `duration_s` is given at all (a value of the wrong type reads as absent).
    var givesStop: Bool

    init?(_ root: YAMLValue) {
        guard let fields = root.fields(Self.keys) else { return nil }
        location = fields.location
        givesStop = fields.value("requests") != nil || fields.value("duration_s") != nil
        name = fields.string("name")
        seed = fields.integer("seed")
        requests = fields.integer("requests")
        durationSeconds = fields.number("duration_s")
        warmupSeconds = fields.number("warmup_s")
        scrapeIntervalMs = fields.number("scrape_interval_ms")
        load = fields.number("load")
        topology = fields.value("topology")
        profiles = fields.value("profiles")?.entries()?.compactMap { key, value in
            value.string().map { (key, $0) }
        }
        workload = fields.list("workload", WorkloadFile.init)
        network = fields.value("network").flatMap(NetworkFile.init)
        faults = fields.list("faults", InjectedFaultFile.init)
        policies = fields.strings("policies")
        slo = fields.value("slo").flatMap(SLOFile.init)
    }
}

/// An item of `workload:`.
struct WorkloadFile {
    static let keys = ["region", "model", "stream", "arrivals", "prompt_tokens", "output_tokens", "lengths", "trace"]

    var location: Location
    var region: Sourced<String>?
    var model: Sourced<String>?
    var stream: Sourced<Bool>?
    var arrivals: ArrivalsFile?
    var promptTokens: DistributionFile?
    var outputTokens: DistributionFile?
    var lengths: LengthsFile?
    var trace: ReplayFile?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(Self.keys) else { return nil }
        location = fields.location
        region = fields.string("region")
        model = fields.string("model")
        stream = fields.boolean("stream")
        arrivals = fields.value("arrivals").flatMap(ArrivalsFile.init)
        promptTokens = fields.value("prompt_tokens").flatMap { DistributionFile($0, extra: ["min", "max"]) }
        outputTokens = fields.value("output_tokens").flatMap { DistributionFile($0, extra: ["min", "max"]) }
        lengths = fields.value("lengths").flatMap(LengthsFile.init)
        trace = fields.value("trace").flatMap(ReplayFile.init)
    }
}

/// `workload[i].arrivals:`
struct ArrivalsFile {
    var location: Location
    var rate: Sourced<Double>?
    var process: Sourced<String>?
    var cv: Sourced<Double>?
    var periodSeconds: Sourced<Double>?
    var amplitude: Sourced<Double>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["rate_rps", "process", "cv", "period_s", "amplitude"]) else { return nil }
        location = fields.location
        rate = fields.number("rate_rps")
        process = fields.string("process")
        cv = fields.number("cv")
        periodSeconds = fields.number("period_s")
        amplitude = fields.number("amplitude")
    }
}

/// A length distribution: `workload[i].prompt_tokens`, `output_tokens`, or a component of a mixture. Its
/// keys depend on `dist`; an unknown `dist` allows the keys of every kind, so that only `dist` is reported.
struct DistributionFile {
    /// The parameters of each kind.
    static let parameters: [String: [String]] = [
        "constant": ["value"], "uniform": ["low", "high"], "lognormal": ["median", "sigma"], "pareto": ["xm", "alpha"],
        "exponential": ["mean"], "mixture": ["components"], "empirical": ["file"],
    ]
    static let integerParameters: Set = ["value", "low", "high"]

    var location: Location
    var dist: Sourced<String>?
    var numbers: [String: Sourced<Double>] = [:]
    var integers: [String: Sourced<Int>] = [:]
    var components: Sourced<[DistributionFile]>?
    var file: Sourced<String>?
    var min: Sourced<Int>?
    var max: Sourced<Int>?
    /// The weight of a mixture component.
    var weight: Sourced<Double>?

    /// - Parameter extra: Keys besides `dist` and its parameters: `min` and `max` for a whole distribution,
    ///   `weight` for a component.
    init?(_ value: YAMLValue, extra: [String]) {
        let kind = value.node.mapping?.first { $0.key.scalar?.string == "dist" }?.value.scalar?.string
        let parameters = kind.flatMap { Self.parameters[$0] } ?? Self.parameters.values.flatMap { $0 }.sorted()
        guard let fields = value.fields(["dist"] + parameters + extra) else { return nil }
        location = fields.location
        dist = fields.string("dist")
        for key in parameters where Self.integerParameters.contains(key) {
            integers[key] = fields.integer(key)
        }
        for key in parameters where !Self.integerParameters.contains(key) && key != "components" && key != "file" {
            numbers[key] = fields.number(key)
        }
        if parameters.contains("components") {
            components = fields.list("components") { DistributionFile($0, extra: ["weight"]) }
        }
        if parameters.contains("file") { file = fields.string("file") }
        if extra.contains("min") {
            min = fields.integer("min")
            max = fields.integer("max")
        }
        if extra.contains("weight") { weight = fields.number("weight") }
    }
}

/// `workload[i].lengths:` prompt and output lengths drawn together from the rows of a trace.
struct LengthsFile {
    var location: Location
    var trace: Sourced<String>?
    var format: Sourced<String>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["trace", "format"]) else { return nil }
        location = fields.location
        trace = fields.string("trace")
        format = fields.string("format")
    }
}

/// `workload[i].trace:` a trace replayed with its own arrival times.
struct ReplayFile {
    var location: Location
    var format: Sourced<String>?
    var file: Sourced<String>?
    var timeScale: Sourced<Double>?
    var hashBlockTokens: Sourced<Int>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["format", "file", "time_scale", "hash_block_tokens"]) else { return nil }
        location = fields.location
        format = fields.string("format")
        file = fields.string("file")
        timeScale = fields.number("time_scale")
        hashBlockTokens = fields.integer("hash_block_tokens")
    }
}

/// `network:`
struct NetworkFile {
    var location: Location
    var rtt: Sourced<[RTTFile]>?
    var sameRegionMs: Sourced<Double>?
    var defaultMs: Sourced<Double>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["rtt_ms", "same_region_ms", "default_ms"]) else { return nil }
        location = fields.location
        rtt = fields.list("rtt_ms", RTTFile.init)
        sameRegionMs = fields.number("same_region_ms")
        defaultMs = fields.number("default_ms")
    }
}

/// An item of `network.rtt_ms:`
struct RTTFile {
    var location: Location
    var between: Sourced<[Sourced<String>]>?
    var ms: Sourced<Double>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["between", "ms"]) else { return nil }
        location = fields.location
        between = fields.strings("between")
        ms = fields.number("ms")
    }
}

/// An item of `faults:`
struct InjectedFaultFile {
    static let kinds = ["down", "partition", "slow"]

    var location: Location
    var atSeconds: Sourced<Double>?
    var untilSeconds: Sourced<Double>?
    /// The kinds given (`down`, `partition`, `slow`) with their names, in the order of `kinds`.
    var targets: [(kind: String, names: Sourced<[Sourced<String>]>)] = []
    var factor: Sourced<Double>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["at_s", "until_s", "factor"] + Self.kinds) else { return nil }
        location = fields.location
        atSeconds = fields.number("at_s")
        untilSeconds = fields.number("until_s")
        for kind in Self.kinds {
            if let names = fields.strings(kind) { targets.append((kind, names)) }
        }
        factor = fields.number("factor")
    }
}

/// `slo:`
struct SLOFile {
    var ttftMs: Sourced<Double>?
    var tpotMs: Sourced<Double>?
    var e2eMs: Sourced<Double>?

    init?(_ value: YAMLValue) {
        guard let fields = value.fields(["ttft_ms", "tpot_ms", "e2e_ms"]) else { return nil }
        ttftMs = fields.number("ttft_ms")
        tpotMs = fields.number("tpot_ms")
        e2eMs = fields.number("e2e_ms")
    }
}

// MARK: - Maps with free keys

extension YAMLValue {
    /// The entries of a mapping whose keys are names the file chooses (such as `profiles:`), each value
    /// located at `path.key`. Repeated keys are logged as duplicates and left out.
    func entries() -> [(key: Sourced<String>, value: YAMLValue)]? {
        guard case .mapping(let mapping) = node else {
            typeError("a mapping")
            return nil
        }
        var entries: [(key: Sourced<String>, value: YAMLValue)] = []
        var firstLines: [String: Int] = [:]
        for (keyNode, valueNode) in pairsWithMerges(mapping) {
            guard case .scalar(let scalar) = keyNode else {
                log.error(location, "expected a key name, got \(YAMLValue(keyNode, at: location, log: log).kind)")
                continue
            }
            let name = String(scalar.string.drop { $0 == Self.repeatMarker })
            let keyLocation = location.key(name, line: keyNode.mark?.line ?? location.line)
            if let first = firstLines[name] {
                log.error(keyLocation, "duplicate key '\(name)' (first given on line \(first))")
                continue
            }
            firstLines[name] = keyLocation.line
            entries.append(
                (Sourced(value: name, location: keyLocation), YAMLValue(valueNode, at: keyLocation, log: log))
            )
        }
        return entries
    }
}
