import IsobarModel

extension TopologyValidator {
    func checkModels() -> [ModelGroup] {
        guard let list = nonEmptyList(file.models, "models", what: "model") else { return [] }
        var names = NameTable(kind: "model", log: log, identifier: false)
        let groups = list.compactMap { checkModel($0, names: &names) }
        checkFallbackCycles(list)
        return groups
    }

    private func checkModel(_ model: ModelFile, names: inout NameTable) -> ModelGroup? {
        let before = log.count
        let name = names.claim(model.name, in: model.location)
        let deployments = checkDeployments(model, name: name ?? "")
        let fallbacks = checkFallbacks(model.fallbacks, "fallbacks", of: model, name: name)
        let contextFallbacks = checkFallbacks(model.contextFallbacks, "context_fallbacks", of: model, name: name)
        let policy = model.policy.flatMap(policy)
        let timeouts = checkTimeouts(model.timeouts)
        let cache = checkCache(model.cache)
        guard log.count == before, let name else { return nil }
        return ModelGroup(
            name: ModelName(name),
            deployments: deployments,
            fallbacks: fallbacks.map(ModelName.init),
            policy: policy,
            contextFallbacks: contextFallbacks.map(ModelName.init),
            timeouts: timeouts,
            cache: cache
        )
    }

    /// `cache: {enabled, ttl_s, force, store}`: on when `enabled` is true; `ttl_s` above 0, at most 30
    /// days; `store: redis` only with the `redis:` section.
    private func checkCache(_ fields: Fields?) -> ResponseCacheSettings? {
        guard let fields else { return nil }
        let defaults = ResponseCacheSettings()
        var ttl = defaults.ttlSeconds
        if let given = fields.number("ttl_s") {
            if given.value > 0, given.value <= 30 * 86_400 {
                ttl = given.value
            } else {
                log.error(
                    given.location,
                    "must be above 0 and at most 2592000 seconds (30 days), got \(format(given.value))"
                )
            }
        }
        let force = fields.boolean("force")?.value ?? defaults.force
        var store = defaults.store
        if let given = fields.string("store") {
            store = choice(given, "cache store") ?? store
            if store == .redis, file.redis == nil {
                log.error(given.location, "a shared response cache needs the redis: section")
            }
        }
        guard required(fields.boolean("enabled"), "enabled", in: fields.location)?.value == true else { return nil }
        return ResponseCacheSettings(ttlSeconds: ttl, force: force, store: store)
    }

    // MARK: - Deployments

    private func checkDeployments(_ model: ModelFile, name: String) -> [Deployment] {
        guard let list = required(model.deployments, "deployments", in: model.location) else { return [] }
        if list.value.isEmpty { log.error(list.location, "at least one deployment is needed") }
        var seen = Set<Deployment>()
        return list.value.compactMap { file in
            guard let deployment = checkDeployment(file, defaultModel: name) else { return nil }
            guard seen.insert(deployment).inserted else {
                log.error(
                    file.location,
                    "model '\(deployment.model)' on backend '\(deployment.backend)' is listed twice"
                )
                return nil
            }
            return deployment
        }
    }

    /// A deployment whose backend exists and serves its model. The model defaults to the group's name.
    private func checkDeployment(_ deployment: DeploymentFile, defaultModel: String) -> Deployment? {
        let backends = declaredNames(file.backends?.value, \.name)
        let name = reference(deployment.backend, "backend", in: deployment.location, kind: "backend", among: backends)
        let model = deployment.model ?? Sourced(value: defaultModel, location: deployment.location)
        if model.value.isEmpty {
            log.error(model.location, "must not be empty")
            return nil
        }
        guard let name else { return nil }
        let served = file.backends?.value.first { $0.name?.value == name }?.models?.value.map(\.value) ?? []
        if !served.isEmpty, !served.contains(model.value) {
            log.error(
                model.location,
                "backend '\(name)' does not serve model '\(model.value)'; it serves: \(served.joined(separator: ", "))"
            )
            return nil
        }
        return Deployment(backend: BackendID(name), model: model.value)
    }

    // MARK: - Fallbacks

    /// The fallbacks (or context fallbacks) of one model: existing models other than itself, each once.
    /// Cycles through several models are found by `checkFallbackCycles` (a context fallback is tried once
    /// per request, so its cycles are harmless).
    private func checkFallbacks(
        _ list: Sourced<[Sourced<String>]>?,
        _ key: String,
        of model: ModelFile,
        name: String?
    ) -> [String] {
        let models = declaredNames(file.models?.value, \.name)
        var seen = Set<String>()
        return (list?.value ?? []).compactMap { fallback in
            if fallback.value == name {
                log.error(fallback.location, "a model cannot fall back to itself")
                return nil
            }
            guard let target = reference(fallback, key, in: model.location, kind: "model", among: models) else {
                return nil
            }
            guard seen.insert(target).inserted else {
                log.error(fallback.location, "fallback '\(target)' is listed twice")
                return nil
            }
            return target
        }
    }

    /// Logs each cycle of the fallback graph once, on the fallback that closes it.
    private func checkFallbackCycles(_ models: [ModelFile]) {
        var edges: [String: [Sourced<String>]] = [:]
        var order: [String] = []
        for model in models {
            guard let name = model.name?.value, edges[name] == nil else { continue }
            edges[name] = (model.fallbacks?.value ?? []).filter { $0.value != name }
            order.append(name)
        }
        var search = CycleSearch(edges: edges)
        for name in order { search.visit(name) }
        for cycle in search.cycles {
            log.error(cycle.closing, "fallback cycle: " + cycle.names.joined(separator: " -> "))
        }
    }
}

/// A depth-first search for the cycles of the fallback graph.
private struct CycleSearch {
    let edges: [String: [Sourced<String>]]
    private(set) var cycles: [(names: [String], closing: Location)] = []
    private var finished = Set<String>()
    private var path: [String] = []
    private var reported = Set<[String]>()

    init(edges: [String: [Sourced<String>]]) {
        self.edges = edges
    }

    mutating func visit(_ name: String) {
        guard !finished.contains(name) else { return }
        path.append(name)
        for edge in edges[name] ?? [] where edges[edge.value] != nil {
            if let start = path.firstIndex(of: edge.value) {
                record(Array(path[start...]) + [edge.value], closing: edge.location)
            } else {
                visit(edge.value)
            }
        }
        path.removeLast()
        finished.insert(name)
    }

    private mutating func record(_ names: [String], closing: Location) {
        guard reported.insert(names.dropLast().sorted()).inserted else { return }
        cycles.append((names, closing))
    }
}
