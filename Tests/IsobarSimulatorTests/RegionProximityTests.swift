import Foundation
import IsobarConfig
import IsobarModel
import IsobarSimulator
import Testing

/// Spill-over between regions and traffic moving around a region's outage, on the shipped three-region
/// scenarios shortened to a couple of simulated minutes (DESIGN §7; issue-6 targets: an overloaded
/// region's p99 TTFT cut at least 3x against local-only routing; traffic moves within 5 s of an outage
/// and returns within 30 s of recovery). `make bench` runs the full-length scenarios.
@Suite("Routing between regions in the simulator")
struct RegionProximityTests {
    static let scenarios = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("simulator/scenarios")

    static func scenario(_ name: String, seconds: Double) throws -> Scenario {
        var scenario = try ScenarioLoader.load(
            path: scenarios.appendingPathComponent(name).path,
            environment: [:]
        )
        scenario.stop = .duration(seconds: seconds)
        return scenario
    }

    @Test("an overloaded region spills to the nearest region with room: its p99 TTFT falls at least 3x")
    func overloadSpills() throws {
        let scenario = try Self.scenario("region-overload.yaml", seconds: 120)
        let result = try RegionExperiments.spillOver(scenario, region: "eu-west")
        // Local-only, eu-west's queue grows for the whole run; spilling, its clients wait about as long
        // as everyone else's, plus the detour for the share that leaves.
        #expect(result.cut >= 3, "local-only p99 \(result.localOnlyP99) s, spill-over p99 \(result.spillOverP99) s")
        #expect(result.localOnlyP99 > 5)
        #expect(result.spillOverP99 < 1)
        // Only the excess leaves: most of eu-west's traffic stays at home. (Nodes scrape only their own
        // region's engines here: the spill proves the other regions' load arrived by gossip.)
        #expect(result.spilledShare > 0.05 && result.spilledShare < 0.35, "spilled \(result.spilledShare)")
    }

    @Test("a region's outage moves its clients' traffic within 5 s, and recovery brings it back within 30 s")
    func outageMovesAndReturns() throws {
        var scenario = try Self.scenario("region-outage.yaml", seconds: 150)
        // The shipped fault (every eu-west replica down), earlier and shorter.
        var fault = try #require(scenario.faults.first)
        fault.atSeconds = 40
        fault.untilSeconds = 90
        scenario.faults = [fault]
        scenario.warmupSeconds = 10
        let outage = try RegionExperiments.outage(scenario, region: "eu-west", fault: fault)
        #expect(outage.movedAfter <= 5, "moved after \(outage.movedAfter) s")
        #expect(outage.returnedAfter <= 30, "returned after \(outage.returnedAfter) s")
        // Only requests inside the engines at the crash are lost (about a second's worth: 36 requests/s).
        #expect(outage.failed < 100, "\(outage.failed) failed")
    }
}
