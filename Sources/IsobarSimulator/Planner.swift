import IsobarModel

/// Capacity planning: the smallest number of replicas per group that meets the SLOs at a scenario's
/// load, found by bisection over simulations (each group's count in turn, twice over, since regions
/// interact through failover).
public struct Planner: Sendable {
    /// A service-level target on one latency quantile.
    public struct Target: Sendable, Equatable, CustomStringConvertible {
        public enum Metric: String, Sendable, CaseIterable { case ttft, tpot, e2e }
        public var metric: Metric
        /// The quantile, 0.5–0.999.
        public var quantile: Double
        public var seconds: Double

        public init(metric: Metric, quantile: Double, seconds: Double) {
            self.metric = metric
            self.quantile = quantile
            self.seconds = seconds
        }

        public var description: String {
            "\(metric.rawValue) p\(Self.percentile(quantile)) ≤ \(Self.format(seconds))"
        }

        /// The value of this metric's quantile in `result`.
        public func value(in result: PolicyResult) -> Double {
            switch metric {
            case .ttft: result.ttft.quantile(quantile)
            case .tpot: result.tpot.quantile(quantile)
            case .e2e: result.e2e.quantile(quantile)
            }
        }

        static func percentile(_ q: Double) -> String {
            let p = q * 100
            return p == p.rounded() ? String(Int(p)) : String(p)
        }

        public static func format(_ seconds: Double) -> String {
            seconds >= 1 ? "\((seconds * 100).rounded() / 100) s" : "\((seconds * 1000 * 10).rounded() / 10) ms"
        }
    }

    /// Replicas of one backend in a fleet: backends named `name-1` … `name-N` with the same region and profile.
    public struct Group: Sendable, Equatable {
        public var name: String
        public var region: RegionID
        public var profile: String
        public var count: Int
        public var pricePerHour: Double
    }

    /// One probe of the search.
    public struct Probe: Sendable, Equatable {
        public var counts: [String: Int]
        public var meets: Bool
        public var values: [Double]
    }

    /// The outcome of a search.
    public struct Plan: Sendable, Equatable {
        public var groups: [Group]
        /// Whether the plan meets every target (false when even the upper bound does not).
        public var feasible: Bool
        /// The targets' values at the plan, in target order.
        public var values: [Double]
        public var probes: [Probe]
        public var costPerHour: Double { groups.reduce(0) { $0 + Double($1.count) * $1.pricePerHour } }
    }

    public var simulator: Simulator
    public var policy: PolicyKind
    public var targets: [Target]
    /// Largest count tried per group.
    public var maxReplicas: Int
    /// Share of requests that may be refused and still meet the plan.
    public var maxRejectedShare = 0.001

    public init(simulator: Simulator, policy: PolicyKind, targets: [Target], maxReplicas: Int) {
        self.simulator = simulator
        self.policy = policy
        self.targets = targets
        self.maxReplicas = maxReplicas
    }

    /// The replica groups of a fleet, in topology order.
    public static func groups(of topology: Topology) -> [Group] {
        var groups: [Group] = []
        for backend in topology.backends {
            let name = Self.groupName(backend.name.rawValue)
            if let i = groups.firstIndex(where: { $0.name == name }) {
                groups[i].count += 1
            } else {
                groups.append(
                    Group(
                        name: name,
                        region: backend.region,
                        profile: backend.emulate?.profile ?? "?",
                        count: 1,
                        pricePerHour: backend.price.perHour
                    )
                )
            }
        }
        return groups
    }

    /// `name` without its `-N` replica suffix.
    static func groupName(_ name: String) -> String {
        guard let dash = name.lastIndex(of: "-"), name[name.index(after: dash)...].allSatisfy(\.isNumber),
            name.index(after: dash) < name.endIndex
        else { return name }
        return String(name[..<dash])
    }

    /// The scenario with each group resized to `counts` (groups not named keep their size).
    public static func resize(_ scenario: Scenario, to counts: [String: Int]) -> Scenario {
        var scenario = scenario
        var topology = scenario.topology
        var backends: [Backend] = []
        var replacements: [BackendID: [BackendID]] = [:]
        var seen: Set<String> = []
        for backend in topology.backends {
            let group = groupName(backend.name.rawValue)
            guard let count = counts[group] else {
                backends.append(backend)
                continue
            }
            let names = (1...max(1, count)).map { BackendID("\(group)-\($0)") }
            replacements[backend.name] = names
            guard seen.insert(group).inserted else { continue }
            for name in names {
                var copy = backend
                copy.name = name
                backends.append(copy)
            }
        }
        topology.backends = backends
        for m in topology.models.indices {
            var deployments: [Deployment] = []
            for deployment in topology.models[m].deployments {
                for name in replacements[deployment.backend] ?? [deployment.backend] {
                    let resized = Deployment(backend: name, model: deployment.model)
                    if !deployments.contains(resized) { deployments.append(resized) }
                }
            }
            topology.models[m].deployments = deployments
        }
        scenario.topology = topology
        scenario.faults = scenario.faults.map { fault in
            var fault = fault
            switch fault.kind {
            case .down(let ids): fault.kind = .down(ids.flatMap { replacements[$0] ?? [$0] })
            case .slow(let ids, let factor):
                fault.kind = .slow(ids.flatMap { replacements[$0] ?? [$0] }, factor: factor)
            case .partition: break
            }
            return fault
        }
        return scenario
    }

    /// Searches the smallest counts; `progress` hears of every probe.
    public func plan(_ scenario: Scenario, progress: ((Probe) -> Void)? = nil) throws(SimulatorError) -> Plan {
        var groups = Self.groups(of: scenario.topology)
        var probes: [Probe] = []
        func probe(_ counts: [String: Int]) throws(SimulatorError) -> Probe {
            let result = try simulator.run(Self.resize(scenario, to: counts), policy: policy)
            let values = targets.map { $0.value(in: result) }
            let rejected = Double(result.rejected + result.failedAfterFirstToken) / Double(max(1, result.arrived))
            let meets = zip(targets, values).allSatisfy { $1 <= $0.seconds } && rejected <= maxRejectedShare
            let outcome = Probe(counts: counts, meets: meets, values: values)
            probes.append(outcome)
            progress?(outcome)
            return outcome
        }
        var counts = Dictionary(uniqueKeysWithValues: groups.map { ($0.name, max($0.count, 1)) })
        let ceiling = Dictionary(uniqueKeysWithValues: groups.map { ($0.name, max($0.count, maxReplicas)) })
        if !(try probe(counts).meets) {
            counts = ceiling
            let top = try probe(counts)
            guard top.meets else {
                for i in groups.indices { groups[i].count = counts[groups[i].name]! }
                return Plan(groups: groups, feasible: false, values: top.values, probes: probes)
            }
        }
        for _ in 0..<2 {
            for group in groups {
                // Bisection: `high` meets the targets, `low` is the largest count known not to (or 0).
                var low = 0
                var high = counts[group.name]!
                while high - low > 1 {
                    let mid = (low + high) / 2
                    var trial = counts
                    trial[group.name] = mid
                    if try probe(trial).meets { high = mid } else { low = mid }
                }
                counts[group.name] = high
            }
        }
        let final: Probe
        if let known = probes.last(where: { $0.counts == counts }) {
            final = known
        } else {
            final = try probe(counts)
        }
        for i in groups.indices { groups[i].count = counts[groups[i].name]! }
        return Plan(groups: groups, feasible: true, values: final.values, probes: probes)
    }
}
