import IsobarModel

/// `topology:` and `profiles:`: the fleet a scenario simulates and the engine profiles it loads.
extension ScenarioValidator {
    /// Loads the `profiles:` files. Returns every profile by name (presets and loaded), the names the
    /// scenario gives (also those of files that failed, so the topology does not report them as unknown),
    /// and the problems of the profile files.
    func loadProfiles() -> (loaded: [String: EngineProfile], names: [String], problems: [ConfigDiagnostic]) {
        var profiles = Dictionary(uniqueKeysWithValues: EngineProfile.presets.map { ($0.name, $0) })
        var names: [String] = []
        var problems: [ConfigDiagnostic] = []
        var table = NameTable(kind: "profile", log: log)
        for (key, path) in file.profiles ?? [] {
            guard let name = table.claim(key, in: key.location) else { continue }
            guard EngineProfile.named(name) == nil else {
                log.error(key.location, "'\(name)' is the name of a preset; give the loaded profile a name of its own")
                continue
            }
            names.append(name)
            guard let (resolved, text) = text(path, "profile file") else { continue }
            let profileLog = DiagnosticLog(file: resolved)
            let profile = YAMLDocument.compose(text, log: profileLog).flatMap { root in
                EngineProfileFile.validate(
                    YAMLValue(root, at: .document(line: root.mark?.line ?? 1), log: profileLog),
                    defaultName: name
                )
            }
            guard var profile, profileLog.count == 0 else {
                problems += profileLog.sorted
                log.error(path.location, invalidFile("profile file", resolved, profileLog.count))
                continue
            }
            profile.name = name
            profiles[name] = profile
        }
        return (profiles, names, problems)
    }

    /// Validates `topology:`, a path to a topology file or the topology itself, for simulation: every
    /// backend an emulated engine with a preset or a loaded profile.
    func loadTopology(profiles: [String]) -> (fleet: Fleet?, problems: [ConfigDiagnostic]) {
        guard let value = file.topology else {
            log.error(file.location, "topology is required: a path to a topology file, or the topology itself")
            return (nil, [])
        }
        let purpose = TopologyValidator.Purpose.simulation(profiles: profiles)
        if case .mapping = value.node {
            let fleet = TopologyLoader.validate(
                value,
                environment: environment,
                readFile: readFile,
                directory: directory,
                purpose: purpose
            )
            return (fleet.map { Fleet(topology: $0.topology, replicaGroups: $0.replicaGroups) }, [])
        }
        guard case .scalar = value.node, let path = value.string() else {
            if value.node.scalar == nil { value.typeError("a path to a topology file or a mapping") }
            return (nil, [])
        }
        guard let (resolved, text) = text(path, "topology file") else { return (nil, []) }
        let topologyLog = DiagnosticLog(file: resolved)
        let fleet = YAMLDocument.compose(text, log: topologyLog).flatMap { root in
            TopologyLoader.validate(
                YAMLValue(root, at: .document(line: root.mark?.line ?? 1), log: topologyLog),
                environment: environment,
                readFile: readFile,
                directory: TopologyLoader.directory(of: resolved),
                purpose: purpose
            )
        }
        guard let fleet, topologyLog.count == 0 else {
            log.error(path.location, invalidFile("topology file", resolved, topologyLog.count))
            return (nil, topologyLog.sorted)
        }
        return (Fleet(topology: fleet.topology, replicaGroups: fleet.replicaGroups), [])
    }

    private func invalidFile(_ what: String, _ path: String, _ count: Int) -> String {
        "the \(what) '\(path)' is not valid (\(count) problem\(count == 1 ? "" : "s"), listed after this file's)"
    }
}
