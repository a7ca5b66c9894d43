import Foundation
import IsobarModel

extension TopologyValidator {
    func checkBackends(regions: [String]) -> [Backend] {
        guard let list = nonEmptyList(file.backends, "backends", what: "backend") else { return [] }
        var names = NameTable(kind: "backend", log: log)
        return list.compactMap { checkBackend($0, names: &names, regions: regions) }
    }

    private func checkBackend(_ backend: BackendFile, names: inout NameTable, regions: [String]) -> Backend? {
        let before = log.count
        let name = names.claim(backend.name, in: backend.location)
        let region = reference(backend.region, "region", in: backend.location, kind: "region", among: regions)
        let engine = required(backend.engine, "engine", in: backend.location).flatMap {
            choice($0, "engine") as EngineKind?
        }
        let capacity = checkCapacity(backend.capacity)
        let price = checkPrice(backend.price)
        checkSimulated(backend, engine: engine)
        guard let engine else {
            // Still check what can be checked without knowing the engine.
            if let text = backend.url { _ = parsedURL(text) }
            return nil
        }
        let url = upstreamURL(backend, engine: engine)
        let metricsURL = metricsURL(backend, engine: engine, url: url)
        let apiKey = apiKey(backend, engine: engine)
        let models = servedModels(backend, engine: engine)
        let emulate = emulateSettings(backend, engine: engine)
        let timeouts = checkTimeouts(backend.timeouts)
        let reach = backend.reachableFrom.map { choice($0, "reachable_from") as Reach? } ?? .anywhere
        checkReplicas(backend, engine: engine)
        guard log.count == before, let name, let region, let url else { return nil }
        return Backend(
            name: BackendID(name),
            region: RegionID(region),
            engine: engine,
            url: url,
            metricsURL: metricsURL,
            apiKey: apiKey,
            models: models,
            capacity: capacity,
            price: price,
            emulate: emulate,
            timeouts: timeouts,
            reach: reach ?? .anywhere
        )
    }

    /// In a scenario's fleet, every backend is an engine the simulator models.
    private func checkSimulated(_ backend: BackendFile, engine: EngineKind?) {
        guard case .simulation = purpose, let engine, engine != .emulated, let location = backend.engine?.location
        else { return }
        log.error(
            location,
            "the simulator models engines only: use engine: emulated with emulate: {profile: ...}, not '\(engine.rawValue)'"
        )
    }

    // MARK: - URLs

    private func upstreamURL(_ backend: BackendFile, engine: EngineKind) -> UpstreamURL? {
        guard let text = backend.url else {
            switch engine {
            case .openai: return UpstreamURL(tls: true, host: "api.openai.com", port: 443)
            case .anthropic: return UpstreamURL(tls: true, host: "api.anthropic.com", port: 443)
            // Port 0: `isobar up` picks a free loopback port when it starts the emulated engine.
            case .emulated: return UpstreamURL(tls: false, host: "127.0.0.1", port: 0)
            default:
                log.missing(backend.location.key("url"), "required key is missing for engine '\(engine.rawValue)'")
                return nil
            }
        }
        return engine == .emulated ? emulatedURL(text) : parsedURL(text)
    }

    private func parsedURL(_ text: Sourced<String>) -> UpstreamURL? {
        switch UpstreamURL.parse(text.value) {
        case .success(let url): return url
        case .failure(let error):
            log.error(text.location, error.message)
            return nil
        }
    }

    /// An emulated engine runs on this machine: its url is `http://` on a loopback host, and port 0 asks
    /// `isobar up` for a free port. `UpstreamURL.parse` refuses port 0, so that port is parsed as 1.
    private func emulatedURL(_ text: Sourced<String>) -> UpstreamURL? {
        let authorityEnd = text.value.dropFirst("http://".count).firstIndex(of: "/") ?? text.value.endIndex
        let anyPort = text.value.hasPrefix("http://") && text.value[..<authorityEnd].hasSuffix(":0")
        var parsable = text
        if anyPort { parsable.value = text.value[..<authorityEnd].dropLast() + "1" + text.value[authorityEnd...] }
        guard var url = parsedURL(parsable) else { return nil }
        guard !url.tls, HostPort(host: url.host, port: url.port).isLoopback else {
            log.error(text.location, "an emulated backend's url must be http:// on a loopback host such as 127.0.0.1")
            return nil
        }
        if anyPort { url.port = 0 }
        return url
    }

    /// The given `metrics_url`, else `url` + `/metrics` for self-hosted engines (engines serve metrics at
    /// the root, so a `url` ending in `/v1` gives `/metrics`, not `/v1/metrics`). An emulated engine on
    /// port 0 has none yet: `isobar up` sets it once the port is known.
    private func metricsURL(_ backend: BackendFile, engine: EngineKind, url: UpstreamURL?) -> UpstreamURL? {
        if let text = backend.metricsURL {
            guard engine.isSelfHosted else {
                let selfHosted = EngineKind.allCases.filter(\.isSelfHosted).map(\.rawValue).joined(separator: ", ")
                log.error(text.location, "metrics_url is only for self-hosted engines (\(selfHosted))")
                return nil
            }
            return parsedURL(text)
        }
        guard engine.isSelfHosted, var url, url.port != 0 else { return nil }
        if url.basePath.hasSuffix("/v1") { url.basePath.removeLast(3) }
        url.basePath += "/metrics"
        return url
    }

    // MARK: - API key

    private func apiKey(_ backend: BackendFile, engine: EngineKind) -> Secret? {
        switch (backend.apiKeyEnv, backend.apiKeyFile) {
        case (.some, .some(let path)):
            log.error(path.location, "set either api_key_env or api_key_file, not both")
            return nil
        case (.some(let variable), nil):
            return secret(fromEnvironment: variable)
        case (nil, .some(let path)):
            return secret(fromFile: path)
        case (nil, nil):
            if engine == .openai || engine == .anthropic {
                log.missing(
                    backend.location.key("api_key_env"),
                    "engine '\(engine.rawValue)' needs an API key: set api_key_env or api_key_file"
                )
            }
            return nil
        }
    }

    func secret(fromEnvironment variable: Sourced<String>) -> Secret? {
        guard !variable.value.isEmpty else {
            log.error(variable.location, "must not be empty")
            return nil
        }
        guard let value = environment[variable.value] else {
            log.error(variable.location, "environment variable \(variable.value) is not set")
            return nil
        }
        guard !value.isEmpty else {
            log.error(variable.location, "environment variable \(variable.value) is empty")
            return nil
        }
        return Secret(value)
    }

    /// The trimmed contents of a secret file (`what`: the secret it holds, for messages).
    func secret(fromFile path: Sourced<String>, what: String = "API key") -> Secret? {
        guard !path.value.isEmpty else {
            log.error(path.location, "must not be empty")
            return nil
        }
        let resolved = path.value.hasPrefix("/") || directory == nil ? path.value : "\(directory ?? "")/\(path.value)"
        guard let contents = readFile(resolved) else {
            log.error(path.location, "cannot read the \(what) file '\(resolved)'")
            return nil
        }
        let key = contents.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !key.isEmpty else {
            log.error(path.location, "the \(what) file '\(resolved)' is empty")
            return nil
        }
        return Secret(key)
    }

    // MARK: - Models, capacity, price

    /// The upstream models a backend serves; empty (any model) is allowed only for cloud APIs.
    private func servedModels(_ backend: BackendFile, engine: EngineKind) -> [String] {
        let models = backend.models?.value ?? []
        if models.isEmpty, ![.openai, .anthropic, .openAICompatible].contains(engine) {
            log.missing(
                backend.models?.location ?? backend.location.key("models"),
                "engine '\(engine.rawValue)' needs the list of models it serves, e.g. [meta-llama/Llama-3.1-8B-Instruct]"
            )
        }
        var seen = Set<String>()
        for model in models {
            if model.value.isEmpty {
                log.error(model.location, "model name must not be empty")
            } else if !seen.insert(model.value).inserted {
                log.error(model.location, "duplicate model '\(model.value)'")
            }
        }
        return models.map(\.value)
    }

    private func checkCapacity(_ capacity: CapacityFile?) -> Capacity {
        guard let capacity else { return Capacity() }
        return Capacity(
            prefillTokensPerSecond: positive(capacity.prefillTokensPerSecond),
            decodeTokensPerSecond: positive(capacity.decodeTokensPerSecond),
            maxConcurrency: integer(capacity.maxConcurrency, in: 1...Int.max),
            contextWindow: integer(capacity.contextWindow, in: 1...Int.max),
            kvCacheTokens: integer(capacity.kvCacheTokens, in: 1...Int.max)
        )
    }

    private func checkPrice(_ price: PriceFile?) -> Price {
        Price(
            inputPerMTok: nonNegative(price?.inputPerMTok) ?? 0,
            outputPerMTok: nonNegative(price?.outputPerMTok) ?? 0,
            perHour: nonNegative(price?.perHour) ?? 0
        )
    }

    // MARK: - Emulation

    private func emulateSettings(_ backend: BackendFile, engine: EngineKind) -> EmulateSettings? {
        guard let emulate = backend.emulate else {
            if engine == .emulated {
                log.missing(
                    backend.location.key("emulate"),
                    "required key is missing for engine 'emulated', e.g. emulate: {profile: llama-3.1-8b-h100}"
                )
            }
            return nil
        }
        if engine != .emulated {
            log.error(emulate.location, "emulate is only for engine: emulated, not '\(engine.rawValue)'")
        }
        let profile = required(emulate.profile, "profile", in: emulate.location).flatMap(engineProfile)
        let api = emulate.api.map { choice($0, "api") as WireAPI? } ?? .openai
        let settings = EmulateSettings(
            profile: profile ?? "",
            api: api ?? .openai,
            tokensPerSecond: positive(emulate.tokensPerSecond),
            maxConcurrency: integer(emulate.maxConcurrency, in: 1...Int.max),
            fault: emulate.fault.flatMap(emulatedFault)
        )
        return settings
    }

    /// The name of an engine profile: a preset, or in a scenario's fleet also a profile the scenario loads.
    private func engineProfile(_ name: Sourced<String>) -> String? {
        var names = EngineProfile.presets.map(\.name)
        if case .simulation(let loaded) = purpose { names += loaded }
        if names.contains(name.value) { return name.value }
        let hint = suggestion(for: name.value, among: names)
        log.error(name.location, "unknown profile '\(name.value)'\(hint); use one of \(names.joined(separator: ", "))")
        return nil
    }

    private func emulatedFault(_ fault: FaultFile) -> EmulatedFault? {
        let status = integer(required(fault.status, "status", in: fault.location), in: 400...599)
        let retryAfter = integer(fault.retryAfterSeconds, in: 0...Int.max)
        return status.map { EmulatedFault(status: $0, retryAfterSeconds: retryAfter) }
    }
}
