import Foundation
import IsobarConfig
import IsobarModel
import Testing

/// The scenarios shipped in `simulator/scenarios/` are what `isobar simulate` users start from; they must
/// load, and `isobar check` must take them for scenarios.
@Suite("Shipped scenarios")
struct ScenarioExamplesTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("simulator/scenarios")

    static var files: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }

    static func load(_ name: String) throws -> Scenario {
        try ScenarioLoader.load(path: directory.appendingPathComponent(name).path, environment: [:])
    }

    @Test func theScenariosOfTheIssueAreShipped() {
        let expected = [
            "bursty-azure.yaml", "capacity-plan.yaml", "heterogeneous-fleet.yaml", "prefix-heavy.yaml",
            "region-outage.yaml", "skewed-lengths.yaml",
        ]
        #expect(expected.allSatisfy(Self.files.contains))
    }

    @Test(arguments: files)
    func scenarioLoads(_ name: String) throws {
        let path = Self.directory.appendingPathComponent(name).path
        do {
            guard case .scenario(let scenario) = try ConfigLoader.check(path: path, environment: [:]) else {
                Issue.record("\(name) was not taken for a scenario")
                return
            }
            #expect(scenario.name == String(name.dropLast(".yaml".count)))
            #expect(scenario.topology.backends.allSatisfy { scenario.profile(of: $0) != nil })
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func skewedLengthsRunsSixtyFourReplicas() throws {
        let scenario = try Self.load("skewed-lengths.yaml")
        #expect(scenario.topology.backends.count == 64)
        #expect(scenario.topology.models.first?.deployments.count == 64)
        #expect(scenario.stop == .requests(100_000))
        #expect(scenario.slo == SLO(ttftSeconds: 2, tpotSeconds: 0.08))
    }

    @Test func regionOutageTakesARegionDownForFiveMinutes() throws {
        let scenario = try Self.load("region-outage.yaml")
        let outage = try #require(scenario.faults.first)
        #expect((outage.untilSeconds ?? 0) - outage.atSeconds == 300)
        guard case .down(let backends) = outage.kind else {
            Issue.record("expected a down fault, got \(outage.kind)")
            return
        }
        let regions = Set(backends.compactMap { scenario.topology.backend($0)?.region })
        #expect(regions.count == 1)
        #expect(backends.count == scenario.topology.backends.filter { regions.contains($0.region) }.count)
    }

    @Test func capacityPlanPricesEveryReplica() throws {
        let scenario = try Self.load("capacity-plan.yaml")
        #expect(Set(scenario.topology.backends.map(\.region)).count == 2)
        #expect(scenario.topology.backends.allSatisfy { $0.price.perHour > 0 })
    }
}
