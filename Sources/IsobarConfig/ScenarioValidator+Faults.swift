import IsobarModel

/// `network:` and `faults:`: the RTT matrix between regions and what breaks when.
extension ScenarioValidator {
    func checkNetwork(_ fleet: Fleet?) -> Network {
        let defaults = Network()
        guard let network = file.network else { return defaults }
        let same = nonNegative(network.sameRegionMs).map { $0 / 1000 } ?? defaults.sameRegionRTTSeconds
        let fallback = nonNegative(network.defaultMs).map { $0 / 1000 } ?? defaults.defaultRTTSeconds
        var rtt: [RegionPair: Double] = [:]
        var lines: [RegionPair: Int] = [:]
        for entry in network.rtt?.value ?? [] {
            let pair = regionPair(required(entry.between, "between", in: entry.location), fleet)
            let ms = nonNegative(required(entry.ms, "ms", in: entry.location))
            guard let pair, let ms else { continue }
            if let line = lines[pair] {
                log.error(
                    entry.location,
                    "the RTT between \(pair.first) and \(pair.second) is already given on line \(line)"
                )
                continue
            }
            lines[pair] = entry.location.line
            rtt[pair] = ms / 1000
        }
        return Network(rttSeconds: rtt, sameRegionRTTSeconds: same, defaultRTTSeconds: fallback)
    }

    /// Two different regions of the fleet.
    private func regionPair(_ list: Sourced<[Sourced<String>]>?, _ fleet: Fleet?) -> RegionPair? {
        guard let list else { return nil }
        guard list.value.count == 2 else {
            log.error(list.location, "expected two regions, got \(list.value.count)")
            return nil
        }
        let names = fleet?.topology.regions.map(\.name.rawValue)
        let regions = list.value.compactMap { name -> String? in
            guard let names else { return name.value }
            return reference(name, "", in: list.location, kind: "region", among: names)
        }
        guard regions.count == 2 else { return nil }
        guard regions[0] != regions[1] else {
            log.error(list.location, "expected two different regions (a region to itself is same_region_ms)")
            return nil
        }
        return RegionPair(RegionID(regions[0]), RegionID(regions[1]))
    }

    // MARK: - Faults

    func checkFaults(_ fleet: Fleet?, stop: Scenario.Stop?) -> [Fault] {
        (file.faults?.value ?? []).compactMap { checkFault($0, fleet, stop: stop) }
    }

    private func checkFault(_ fault: InjectedFaultFile, _ fleet: Fleet?, stop: Scenario.Stop?) -> Fault? {
        let before = log.count
        let start = nonNegative(required(fault.atSeconds, "at_s", in: fault.location))
        let end = nonNegative(fault.untilSeconds)
        if let start, let end, end <= start, let location = fault.untilSeconds?.location {
            log.error(location, "must be after at_s (\(format(start)))")
        }
        if let start, case .duration(let seconds) = stop, start > seconds, let location = fault.atSeconds?.location {
            log.error(location, "the fault would start after the run (duration_s: \(format(seconds)))")
        }
        let kind = faultKind(fault, fleet)
        guard log.count == before, let start, let kind else { return nil }
        return Fault(atSeconds: start, untilSeconds: end, kind: kind)
    }

    private func faultKind(_ fault: InjectedFaultFile, _ fleet: Fleet?) -> Fault.Kind? {
        guard let (kind, names) = fault.targets.first else {
            log.error(
                fault.location,
                "a fault needs one of down: [BACKEND, ...], partition: [REGION, REGION] or slow: [BACKEND, ...]"
            )
            return nil
        }
        for other in fault.targets.dropFirst() {
            log.error(
                other.names.location,
                "a fault is one of down, partition or slow; give \(other.kind) its own item"
            )
        }
        if kind != "slow", let factor = fault.factor {
            log.error(factor.location, "factor is only for slow")
        }
        switch kind {
        case "down":
            return backends(names, fleet).map { .down($0) }
        case "partition":
            return regionPair(names, fleet).map { .partition($0.first, $0.second) }
        default:
            let factor = positive(required(fault.factor, "factor", in: fault.location))
            let targets = backends(names, fleet)
            return targets.flatMap { targets in factor.map { .slow(targets, factor: $0) } }
        }
    }

    /// The backends a fault names: a backend, one replica (`gpu-3`), or every replica of a replicated
    /// backend (`gpu`). Each is listed once, in the order named.
    private func backends(_ list: Sourced<[Sourced<String>]>, _ fleet: Fleet?) -> [BackendID]? {
        guard !list.value.isEmpty else {
            log.error(list.location, "at least one backend is needed")
            return nil
        }
        guard let fleet else { return nil }
        let existing = Set(fleet.topology.backends.map(\.name))
        let replicas = Set(fleet.replicaGroups.values.joined())
        let named =
            fleet.topology.backends.map(\.name).filter { !replicas.contains($0) }.map(\.rawValue)
            + fleet.replicaGroups.keys.sorted()
        var targets: [BackendID] = []
        var failed = false
        for name in list.value {
            if existing.contains(BackendID(name.value)) {
                targets.append(BackendID(name.value))
            } else if let group = fleet.replicaGroups[name.value] {
                targets += group
            } else {
                let hint = suggestion(for: name.value, among: named)
                let known = hint.isEmpty ? "; defined: \(named.joined(separator: ", "))" : hint
                log.error(name.location, "unknown backend '\(name.value)'\(known)")
                failed = true
            }
        }
        var seen = Set<BackendID>()
        return failed ? nil : targets.filter { seen.insert($0).inserted }
    }
}
