import IsobarModel

/// Checks a decoded `ScenarioFile` and builds the `Scenario` it describes.
///
/// Like `TopologyValidator`, every check logs and goes on. The topology file and profile files a scenario
/// names are validated too; their problems are returned separately, named by their own files.
struct ScenarioValidator: Validating {
    /// The validated topology of the scenario.
    struct Fleet {
        var topology: Topology
        /// The replica names of each replicated backend, by the backend's name in the file.
        var replicaGroups: [String: [BackendID]]
    }

    let file: ScenarioFile
    let log: DiagnosticLog
    /// Where `*_env` keys of the topology are looked up.
    let environment: [String: String]
    /// Reads a file the scenario names, already resolved; `nil` if it cannot be read as text.
    let readFile: (String) -> String?
    /// Whether a file the scenario names exists, already resolved.
    let fileExists: (String) -> Bool
    /// The scenario file's directory, against which relative paths resolve; `nil` if its name has none.
    let directory: String?
    /// The name of a scenario without `name:`.
    let defaultName: String

    /// The scenario, or `nil` with the problems of the other files it names (the scenario's own are in `log`).
    func validate() -> (scenario: Scenario?, otherFiles: [ConfigDiagnostic]) {
        let before = log.count
        let profiles = loadProfiles()
        let fleet = loadTopology(profiles: profiles.names)
        let name = checkName()
        let stop = checkStop()
        let warmup = checkWarmup(stop: stop)
        let workloads = checkWorkloads(fleet.fleet)
        let network = checkNetwork(fleet.fleet)
        let faults = checkFaults(fleet.fleet, stop: stop)
        let policies = checkPolicies()
        let slo = checkSLO()
        let seed = integer(file.seed, in: 0...Int.max).map(UInt64.init) ?? 42
        let scrape = positive(file.scrapeIntervalMs).map { $0 / 1000 } ?? 0.25
        let load = positive(file.load)
        let otherFiles = profiles.problems + fleet.problems
        guard log.count == before, otherFiles.isEmpty, let topology = fleet.fleet?.topology, let name, let stop else {
            return (nil, otherFiles)
        }
        let scenario = Scenario(
            name: name,
            seed: seed,
            stop: stop,
            topology: topology,
            profiles: profiles.loaded,
            workloads: workloads,
            network: network,
            faults: faults,
            policies: policies,
            slo: slo,
            scrapeIntervalSeconds: scrape,
            warmupSeconds: warmup,
            load: load
        )
        return (scenario, [])
    }

    // MARK: - Run settings

    private func checkName() -> String? {
        guard let name = file.name else { return defaultName.isEmpty ? "scenario" : defaultName }
        guard !name.value.isEmpty else {
            log.error(name.location, "must not be empty")
            return nil
        }
        return name.value
    }

    private func checkStop() -> Scenario.Stop? {
        switch (file.requests, file.durationSeconds) {
        case (.some, .some(let duration)):
            log.error(duration.location, "set either requests or duration_s, not both")
            return nil
        case (.some(let requests), nil):
            return integer(requests, in: 1...Int.max).map { .requests($0) }
        case (nil, .some(let duration)):
            return positive(duration).map { .duration(seconds: $0) }
        case (nil, nil):
            if !file.givesStop {
                log.error(
                    file.location,
                    "set requests (how many requests arrive) or duration_s (for how many seconds they arrive)"
                )
            }
            return nil
        }
    }

    private func checkWarmup(stop: Scenario.Stop?) -> Double {
        guard let warmup = nonNegative(file.warmupSeconds) else { return 0 }
        if case .duration(let seconds) = stop, warmup >= seconds, let location = file.warmupSeconds?.location {
            log.error(location, "must be less than duration_s (\(format(seconds))), or nothing would be measured")
        }
        return warmup
    }

    private func checkPolicies() -> [PolicyKind] {
        guard let list = file.policies else { return [.roundRobin, .leastRequest, .powerOfTwo] }
        if list.value.isEmpty { log.error(list.location, "at least one policy is needed") }
        var seen: [PolicyKind: Int] = [:]
        return list.value.compactMap { name in
            guard let policy = policy(name) else { return nil }
            if let line = seen[policy] {
                log.error(name.location, "policy '\(name.value)' is already listed (line \(line))")
                return nil
            }
            seen[policy] = name.location.line
            return policy
        }
    }

    private func checkSLO() -> SLO {
        SLO(
            ttftSeconds: positive(file.slo?.ttftMs).map { $0 / 1000 },
            tpotSeconds: positive(file.slo?.tpotMs).map { $0 / 1000 },
            e2eSeconds: positive(file.slo?.e2eMs).map { $0 / 1000 }
        )
    }

    // MARK: - Files

    /// The path `path` names, relative to the scenario's directory, without `.` and `dir/..` steps.
    func resolve(_ path: String) -> String {
        let joined = path.hasPrefix("/") || directory == nil ? path : "\(directory ?? "")/\(path)"
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." {
                parts.removeLast()
            } else {
                parts.append(part)
            }
        }
        let normal = parts.joined(separator: "/")
        return joined.hasPrefix("/") ? "/" + normal : (normal.isEmpty ? "." : normal)
    }

    /// The resolved path of a file that must exist, or `nil` after logging why it cannot be used.
    func existingFile(_ path: Sourced<String>, _ what: String) -> String? {
        guard !path.value.isEmpty else {
            log.error(path.location, "must not be empty")
            return nil
        }
        let resolved = resolve(path.value)
        guard fileExists(resolved) else {
            log.error(path.location, "\(what) '\(resolved)' does not exist")
            return nil
        }
        return resolved
    }

    /// The text of a file that must exist, or `nil` after logging why it cannot be read.
    func text(_ path: Sourced<String>, _ what: String) -> (path: String, text: String)? {
        guard let resolved = existingFile(path, what) else { return nil }
        guard let text = readFile(resolved) else {
            log.error(path.location, "\(what) '\(resolved)' is not readable UTF-8 text")
            return nil
        }
        return (resolved, text)
    }
}
