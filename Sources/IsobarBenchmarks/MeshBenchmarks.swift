import Foundation
import IsobarConfig
import IsobarModel
import IsobarSimulator

/// The issue-6 gossip targets at 100 nodes with 1 % packet loss, measured on the simulated network.
func meshBenchmarks(nodes: Int = 100, loss: Double = 0.01) {
    print("")
    print("Mesh gossip, \(nodes) nodes in 3 regions, \(Int(loss * 100)) % packet loss (simulated network)")
    var spread: MeshExperiments.Spread!
    let spreadWall = seconds { spread = MeshExperiments.spread(nodes: nodes, lossRate: loss, seed: 6, trials: 3) }
    reportSeconds("membership change to 99 % of nodes: join", spread.joinP99Seconds, target: 2)
    reportSeconds("membership change to 99 % of nodes: leave", spread.leaveP99Seconds, target: 2)
    flushOutput()
    var detection: MeshExperiments.Detection!
    let detectionWall = seconds {
        detection = MeshExperiments.detection(nodes: nodes, lossRate: loss, seed: 7, trials: 20)
    }
    reportSeconds("crash to first suspicion (worst of 20)", detection.worstSuspicion, target: 3)
    reportSeconds("crash to dead everywhere (worst of 20)", detection.worstDeadEverywhere, target: 12)
    flushOutput()
    var falsePositives: MeshExperiments.FalsePositives!
    let falseWall = seconds {
        falsePositives = MeshExperiments.falsePositives(nodes: nodes, lossRate: loss, seed: 8, seconds: 3600)
    }
    print(
        "false deaths, one CPU-starved node, 1 simulated hour".padding(toLength: 52, withPad: " ", startingAt: 0)
            + String(
                format: "%14d      target = 0  %@  (%d suspicions refuted %d times)",
                falsePositives.falseDeaths,
                falsePositives.falseDeaths == 0 ? "ok" : "MISSED",
                falsePositives.falseSuspicions,
                falsePositives.refutations
            )
    )
    var traffic: MeshExperiments.Traffic!
    let trafficWall = seconds { traffic = MeshExperiments.traffic(nodes: nodes, lossRate: loss, seed: 9, seconds: 60) }
    report(
        "idle gossip traffic per node",
        traffic.idleBytesPerNodePerSecond,
        unit: "B/s",
        target: 1_000,
        higherIsBetter: false
    )
    report(
        "load dissemination traffic per node",
        traffic.loadedBytesPerNodePerSecond,
        unit: "B/s",
        target: 10_000,
        higherIsBetter: false
    )
    reportSeconds("load data lag behind its publisher, p99", traffic.lagP99Seconds, target: 2)
    print(
        String(
            format:
                "  (worst lag %.2f s; %.0f digests learned per node per second; wall time %.1f + %.1f + %.1f + %.1f s)",
            traffic.lagMaxSeconds,
            traffic.digestsPerNodePerSecond,
            spreadWall,
            detectionWall,
            falseWall,
            trafficWall
        )
    )
}

/// The issue-6 proximity targets on the shipped three-region scenarios, full length: spill-over's cut of
/// an overloaded region's p99 TTFT against local-only routing (the baseline, same run), and how fast a
/// region's traffic moves away in an outage and comes back after it.
func proximityBenchmarks(root: URL) throws {
    print("")
    print("Routing between regions (simulator, isobar policy, digests by gossip)")
    func scenario(_ name: String) throws -> Scenario {
        try ScenarioLoader.load(
            path: root.appendingPathComponent("simulator/scenarios/\(name).yaml").path,
            environment: [:]
        )
    }
    var spill: RegionExperiments.SpillOver!
    let spillWall = try seconds {
        spill = try RegionExperiments.spillOver(scenario("region-overload"), region: "eu-west")
    }
    print(
        "overloaded region p99 TTFT, local-only → spill-over".padding(toLength: 52, withPad: " ", startingAt: 0)
            + String(
                format: "%6.2f s → %.3f s  ratio %.0fx  target ≥ 3x  %@",
                spill.localOnlyP99,
                spill.spillOverP99,
                spill.cut,
                spill.cut >= 3 ? "ok" : "MISSED"
            )
    )
    print(
        String(
            format: "  (%.1f %% of eu-west's requests served elsewhere; wall time %.1f s)",
            spill.spilledShare * 100,
            spillWall
        )
    )
    let outageScenario = try scenario("region-outage")
    guard let fault = outageScenario.faults.first else { return }
    var outage: RegionExperiments.Outage!
    let outageWall = try seconds {
        outage = try RegionExperiments.outage(outageScenario, region: "eu-west", fault: fault)
    }
    reportSeconds("eu-west outage: its traffic served elsewhere after", outage.movedAfter, target: 5)
    reportSeconds("eu-west recovery: its traffic back home after", outage.returnedAfter, target: 30)
    print(
        String(
            format: "  (to the second of arrival; %d requests arriving from the outage on failed; wall %.1f s)",
            outage.failed,
            outageWall
        )
    )
}

/// A 500-node mesh: membership spread after a cold start (slow: the start-up alone sends some 3 million
/// updates), then spread and crash detection on a settled mesh.
func largeMeshBenchmark() {
    var spread: MeshExperiments.Spread!
    let wall = seconds { spread = MeshExperiments.spread(nodes: 500, lossRate: 0.01, seed: 6, trials: 1) }
    reportSeconds("500 nodes: membership change to 99 %, join", spread.joinP99Seconds, target: 2)
    reportSeconds("500 nodes: membership change to 99 %, leave", spread.leaveP99Seconds, target: 2)
    print(String(format: "  (converged after start-up: %@; wall time %.0f s)", spread.converged ? "yes" : "NO", wall))
    // Settled (everyone already knows everyone), as the tests run it.
    var settled: MeshExperiments.Spread!
    var detection: MeshExperiments.Detection!
    let settledWall = seconds {
        settled = MeshExperiments.spread(nodes: 500, lossRate: 0.01, seed: 21, trials: 1, start: .settled)
        detection = MeshExperiments.detection(nodes: 500, lossRate: 0.01, seed: 22, trials: 2, start: .settled)
    }
    reportSeconds("500 nodes settled: change to 99 %, join", settled.joinP99Seconds, target: 2)
    reportSeconds("500 nodes settled: change to 99 %, leave", settled.leaveP99Seconds, target: 2)
    reportSeconds("500 nodes settled: crash suspected after", detection.worstSuspicion, target: 3)
    reportSeconds("500 nodes settled: crash dead everywhere after", detection.worstDeadEverywhere, target: 12)
    print(String(format: "  (wall time %.1f s)", settledWall))
}

func reportSeconds(_ label: String, _ value: Double, target: Double) {
    print(
        label.padding(toLength: 52, withPad: " ", startingAt: 0)
            + String(format: "%14.2f s    target ≤ %.0f s  %@", value, target, value <= target ? "ok" : "MISSED")
    )
}

/// Benchmarks print as they go, even into a pipe.
func flushOutput() { fflush(nil) }
