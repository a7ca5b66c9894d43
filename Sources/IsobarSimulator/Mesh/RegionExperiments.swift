import IsobarModel

/// The issue-6 proximity measurements, on full simulations with the real routers: how much spill-over to
/// other regions cuts an overloaded region's tail, and how fast a region's traffic leaves during an
/// outage and comes back after it. The tests run them on shortened scenarios; `make bench` runs the
/// shipped ones and prints them against the targets.
public enum RegionExperiments {
    /// p99 time to first token of `region`'s clients, in seconds, with isobar routing local-only
    /// (`spill_over: false`) and with spill-over.
    public struct SpillOver: Sendable, Equatable {
        public var localOnlyP99: Double
        public var spillOverP99: Double
        /// Share of `region`'s requests served in other regions with spill-over.
        public var spilledShare: Double
        public var cut: Double { spillOverP99 > 0 ? localOnlyP99 / spillOverP99 : .infinity }
    }

    public static func spillOver(_ scenario: Scenario, region: RegionID) throws(SimulatorError) -> SpillOver {
        // The completed requests of the measured window, with spill-over on or off.
        func completed(spillOver: Bool) throws(SimulatorError) -> [Served] {
            var run = scenario
            run.topology.routing.proximity.spillOver = spillOver
            return try served(run, region: region).filter { $0.arrival >= scenario.warmupSeconds && $0.servedIn != nil }
        }
        let home = try completed(spillOver: false)
        let away = try completed(spillOver: true)
        return SpillOver(
            localOnlyP99: home.compactMap(\.ttft).nearestRank(0.99),
            spillOverP99: away.compactMap(\.ttft).nearestRank(0.99),
            spilledShare: away.isEmpty ? 0 : Double(away.count { $0.servedIn != region }) / Double(away.count)
        )
    }

    /// How a region's clients' traffic moved during an outage of its engines, in seconds.
    public struct Outage: Sendable, Equatable {
        /// From the outage's start until at least 95 % of every later second's requests (to the outage's
        /// end) were served by other regions.
        public var movedAfter: Double
        /// From the region's recovery until at least 90 % of every later second's requests (to the run's
        /// end) were served in the region again.
        public var returnedAfter: Double
        /// Requests of the region's clients that failed (refused or cut) from the outage's start on.
        public var failed: Int
    }

    /// Runs `scenario` with the isobar policy; `fault` must take down `region`'s engines and end.
    public static func outage(
        _ scenario: Scenario,
        region: RegionID,
        fault: Fault
    ) throws(SimulatorError) -> Outage {
        let requests = try served(scenario, region: region)
        let start = fault.atSeconds
        let end = fault.untilSeconds ?? .infinity
        var failed = 0
        // Per second of arrival: requests, served away, served at home.
        var seconds: [Int: Second] = [:]
        for record in requests where record.arrival >= start {
            guard let servedIn = record.servedIn else {
                failed += 1
                continue
            }
            let second = Int(record.arrival.rounded(.down))
            var bucket = seconds[second] ?? Second()
            bucket.all += 1
            if servedIn == region { bucket.home += 1 } else { bucket.away += 1 }
            seconds[second] = bucket
        }
        let lastSecond = seconds.keys.max() ?? Int(start)
        func settled(from first: Int, through last: Int, share: Double, _ count: KeyPath<Second, Int>) -> Double {
            var settledAt = first
            if last >= first {
                for second in first...last {
                    guard let b = seconds[second], b.all > 0 else { continue }
                    if Double(b[keyPath: count]) < share * Double(b.all) { settledAt = second + 1 }
                }
            }
            return Double(settledAt)
        }
        let moved = settled(from: Int(start), through: Int(min(end, Double(lastSecond))) - 1, share: 0.95, \.away)
        let returned = end.isFinite ? settled(from: Int(end), through: lastSecond - 1, share: 0.9, \.home) : .infinity
        return Outage(movedAfter: moved - start, returnedAfter: returned - end, failed: failed)
    }

    // MARK: - Running

    /// The requests of one second of arrival: all, served in other regions, served at home.
    struct Second {
        var all = 0
        var away = 0
        var home = 0
    }

    struct Served {
        var arrival: Double
        /// The region of the backend that answered; nil if the request failed.
        var servedIn: RegionID?
        var ttft: Double?
    }

    /// Runs `scenario` with the isobar policy and keeps what happened to `region`'s clients' requests.
    static func served(
        _ scenario: Scenario,
        region: RegionID
    ) throws(SimulatorError) -> [Served] {
        let regionOf = Dictionary(
            scenario.topology.backends.map { ($0.name, $0.region) },
            uniquingKeysWith: { a, _ in a }
        )
        var all: [Served] = []
        _ = try Simulator().run(scenario, policy: .isobar) { record in
            guard record.region == region else { return }
            let servedIn = record.outcome == .completed ? record.backend.flatMap { regionOf[$0] } : nil
            all.append(Served(arrival: record.arrival, servedIn: servedIn, ttft: record.ttft))
        }
        return all
    }
}
