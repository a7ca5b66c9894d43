import IsobarModel

/// `replicas: N` on an emulated backend: N identical engines named `NAME-1` … `NAME-N`. The validated
/// topology holds the replicas, not the group, so routing sees N backends; a deployment naming the group
/// becomes one deployment per replica.
extension TopologyValidator {
    /// The most replicas one backend may have.
    static let maximumReplicas = 10_000

    /// The backend names a group of `count` replicas called `name` expands into.
    static func replicaNames(of name: String, count: Int) -> [BackendID] {
        (1...max(count, 1)).map { BackendID("\(name)-\($0)") }
    }

    /// The replicated backends of the file: each group's name with the names of its replicas. Meaningful
    /// once the file validated.
    func replicaGroups() -> [String: [BackendID]] {
        var groups: [String: [BackendID]] = [:]
        for backend in file.backends?.value ?? [] {
            guard let name = backend.name?.value, let count = backend.replicas?.value else { continue }
            groups[name] = Self.replicaNames(of: name, count: count)
        }
        return groups
    }

    /// Checks `replicas` of one backend: in range, on an emulated engine only, and without a fixed port
    /// (each replica of `isobar up` listens on a port of its own).
    func checkReplicas(_ backend: BackendFile, engine: EngineKind) {
        guard let replicas = backend.replicas else { return }
        _ = integer(replicas, in: 1...Self.maximumReplicas)
        guard engine == .emulated else {
            return log.error(
                replicas.location,
                "replicas is only for engine: emulated; list each '\(engine.rawValue)' server as a backend of its own"
            )
        }
        for (key, text) in [("url", backend.url), ("metrics_url", backend.metricsURL)] {
            guard let text, case .success(let url) = UpstreamURL.parse(text.value) else { continue }
            log.error(
                text.location,
                "each replica listens on a port of its own: leave \(key) out or use port 0, not \(url.port)"
            )
        }
    }

    /// Logs a replica name that another backend already has, once per group, on the group's `replicas`.
    func checkReplicaNames() {
        let backends = file.backends?.value ?? []
        var plain: [String: Int] = [:]
        for backend in backends where backend.replicas == nil {
            guard let name = backend.name else { continue }
            plain[name.value] = plain[name.value] ?? name.location.line
        }
        for backend in backends {
            guard let name = backend.name?.value, let replicas = backend.replicas,
                (1...Self.maximumReplicas).contains(replicas.value)
            else { continue }
            let names = Self.replicaNames(of: name, count: replicas.value)
            if let clash = names.first(where: { plain[$0.rawValue] != nil }), let line = plain[clash.rawValue] {
                log.error(
                    replicas.location,
                    "replica '\(clash)' would have the name of the backend on line \(line); rename one of them"
                )
            }
        }
    }

    /// `topology` with every replicated backend replaced by its replicas, in place, and every deployment
    /// on such a backend by one deployment per replica.
    func expandingReplicas(_ topology: Topology) -> Topology {
        let groups = replicaGroups()
        guard !groups.isEmpty else { return topology }
        var expanded = topology
        expanded.backends = topology.backends.flatMap { backend -> [Backend] in
            guard let names = groups[backend.name.rawValue] else { return [backend] }
            return names.map { name in
                var replica = backend
                replica.name = name
                return replica
            }
        }
        for index in expanded.models.indices {
            expanded.models[index].deployments = expanded.models[index].deployments.flatMap { deployment in
                guard let names = groups[deployment.backend.rawValue] else { return [deployment] }
                return names.map { Deployment(backend: $0, model: deployment.model) }
            }
        }
        return expanded
    }
}
