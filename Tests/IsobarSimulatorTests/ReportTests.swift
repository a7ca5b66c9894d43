import Foundation
import IsobarModel
import IsobarWire
import Testing

@testable import IsobarSimulator

/// A hand-built result: three policies where isobar is fastest, round-robin slowest, and least-request
/// has the most goodput.
enum ReportFixture {
    static let policies: [(PolicyKind, ttftScale: Double, metSLO: Int)] = [
        (.isobar, 0.1, 900), (.roundRobin, 0.4, 600), (.leastRequest, 0.2, 950),
    ]

    static func result(
        scenario: String = "skewed-lengths",
        backends: Int = 4,
        samples: Int = 60,
        wallSeconds: Double = 1.5
    ) -> ScenarioResult {
        let results = policies.map { kind, scale, met in
            policy(kind, ttftScale: scale, metSLO: met, backends: backends, samples: samples)
        }
        return ScenarioResult(
            scenario: scenario,
            seed: 42,
            requests: 1000,
            wallSeconds: wallSeconds,
            policies: results,
            slo: SLO(ttftSeconds: 2, tpotSeconds: 0.1)
        )
    }

    static func policy(
        _ kind: PolicyKind,
        ttftScale: Double,
        metSLO: Int,
        backends: Int,
        samples: Int
    ) -> PolicyResult {
        var p = PolicyResult(policy: kind)
        for i in 0..<1000 {
            let spread = 1 + Double((i * 37) % 100) / 25
            p.ttft.record(ttftScale * spread)
            p.tpot.record(0.02 + Double(i % 10) / 1000)
            p.e2e.record(ttftScale * spread + 5)
        }
        p.arrived = 1000
        p.completed = 990
        p.rejected = 8
        p.failedAfterFirstToken = 2
        p.metSLO = metSLO
        p.promptTokens = 1_000_000
        p.outputTokens = 250_000
        p.preemptions = kind == .isobar ? 3 : 12
        p.crossRegion = 99
        p.prefixQueryTokens = 1_000_000
        p.prefixHitTokens = 300_000
        p.windowSeconds = 100
        p.makespanSeconds = 101
        p.costUSD = 2.5
        p.timeSeries.intervalSeconds = 0.5
        p.timeSeries.backends = (0..<backends).map { BackendID("b-\($0)") }
        p.timeSeries.waiting = (0..<backends).map { b in (0..<samples).map { s in (b * 7 + s * 3) % 23 } }
        p.timeSeries.running = p.timeSeries.waiting
        p.timeSeries.tokensPerSecond = (0..<backends).map { b -> [Double] in
            (0..<samples).map { s -> Double in
                let step: Int = (b * 13 + s * 5) % 97
                return Double(100 + step)
            }
        }
        for b in 0..<backends { p.utilisation[BackendID("b-\(b)")] = 0.5 + Double(b % 5) / 10 }
        return p
    }
}

@Suite("Report: summary.json, table and markdown")
struct ReportTests {
    @Test("summary.json has the DESIGN §8 keys in a fixed order, latencies in milliseconds")
    func jsonKeys() throws {
        let json = ReportWriter.summaryJSON(ReportFixture.result())
        #expect(json.objectValue?.keys == ["scenario", "seed", "requests", "wall_seconds", "slo", "policies"])
        #expect(json["scenario"]?.stringValue == "skewed-lengths")
        #expect(json["seed"]?.intValue == 42)
        #expect(json["requests"]?.intValue == 1000)
        #expect(json["wall_seconds"]?.doubleValue == 1.5)
        #expect(json["slo"]?["ttft_ms"]?.doubleValue == 2000)
        #expect(json["slo"]?["e2e_ms"] == .null)
        #expect(json["policies"]?.objectValue?.keys == ["isobar", "round-robin", "least-request"])
        let isobar = try #require(json["policies"]?["isobar"]?.objectValue)
        let contract = [
            "ttft_ms", "tpot_ms", "e2e_ms", "goodput_rps", "throughput_tokens_per_s", "completed", "rejected",
            "preemptions", "cross_region_share", "cost_per_mtok",
        ]
        #expect(Array(isobar.keys.prefix(contract.count)) == contract)
        for extra in ["arrived", "cut", "utilisation_mean", "utilisation_max", "prefix_hit_rate"] {
            #expect(isobar[extra] != nil, "missing \(extra)")
        }
        #expect(isobar["ttft_ms"]?.objectValue?.keys == ["p50", "p90", "p99", "mean"])
        // TTFT samples run from 100 ms to ~496 ms.
        let p50 = try #require(isobar["ttft_ms"]?["p50"]?.doubleValue)
        let p99 = try #require(isobar["ttft_ms"]?["p99"]?.doubleValue)
        #expect(p50 > 250 && p50 < 310)
        #expect(p99 > 480 && p99 < 500)
        #expect(isobar["tpot_ms"]?["p50"]?.doubleValue.map { $0 > 20 && $0 < 30 } == true)
        #expect(isobar["goodput_rps"]?.doubleValue == 9)
        #expect(isobar["throughput_tokens_per_s"]?.doubleValue == 2500)
        #expect(isobar["cross_region_share"]?.doubleValue == 0.1)
        #expect(isobar["cost_per_mtok"]?.doubleValue == 2)
        #expect(isobar["cut"]?.intValue == 2)
        #expect(isobar["prefix_hit_rate"]?.doubleValue == 0.3)
    }

    @Test("Numbers are rounded to fixed decimals and the seed stays exact")
    func rounding() throws {
        var result = ReportFixture.result()
        result.seed = .max
        result.wallSeconds = 1.23456789
        let text = ReportWriter.summaryJSON(result).text
        #expect(text.contains("\"seed\":18446744073709551615"))
        #expect(text.contains("\"wall_seconds\":1.235"))
        let literals = text.split(whereSeparator: { ",:{}[]".contains($0) }).filter { $0.first?.isNumber == true }
        for literal in literals {
            let decimals = literal.split(separator: ".").dropFirst().first?.count ?? 0
            #expect(decimals <= 4, "\(literal) has more than 4 decimals")
        }
    }

    @Test("Identical results give identical bytes; without the wall time the wall time does not matter")
    func determinism() {
        let a = ReportWriter.files(ReportFixture.result(wallSeconds: 1.5), includeWallTime: false)
        let b = ReportWriter.files(ReportFixture.result(wallSeconds: 9.75), includeWallTime: false)
        #expect(a == b)
        let json = ReportWriter.summaryJSON(ReportFixture.result(), includeWallTime: false)
        #expect(json.objectValue?.keys.contains("wall_seconds") == false)
        #expect(
            ReportWriter.table(ReportFixture.result(wallSeconds: 1), includeWallTime: false)
                == ReportWriter.table(ReportFixture.result(wallSeconds: 2), includeWallTime: false)
        )
    }

    @Test("Pretty summary.json parses back to the same value")
    func prettyRoundTrip() throws {
        let json = ReportWriter.summaryJSON(ReportFixture.result(scenario: "a \"quoted\", odd: name"))
        let pretty = ReportWriter.prettyJSON(json)
        #expect(try JSON(parsing: pretty) == json)
        #expect(pretty.contains("\n    \"isobar\": {\n"))
        #expect(pretty.contains("\"ttft_ms\": {\"p50\": "))
        #expect(pretty.hasSuffix("}\n"))
    }

    @Test("The table lists every policy and marks the best p99 TTFT")
    func table() throws {
        let table = ReportWriter.table(ReportFixture.result())
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines[0] == "Scenario skewed-lengths  seed 42  1000 requests per policy  wall 1.50 s")
        #expect(lines[1].hasPrefix("SLO: TTFT <= 2000 ms, TPOT <= 100 ms"))
        let header = try #require(lines.first { $0.hasPrefix("metric") })
        #expect(header.split(separator: " ") == ["metric", "isobar", "round-robin", "least-request"])
        let p99 = try #require(lines.first { $0.hasPrefix("TTFT p99 (ms)") })
        let cells = p99.dropFirst("TTFT p99 (ms)".count).split(separator: " ")
        #expect(cells.count == 3)
        #expect(cells[0].hasSuffix("*"))
        #expect(!cells[1].hasSuffix("*") && !cells[2].hasSuffix("*"))
        // Columns are right-aligned: every cell of a column ends at the header's column end.
        let end = try #require(header.range(of: "isobar")?.upperBound).utf16Offset(in: header)
        let markEnd = try #require(p99.firstIndex(of: "*")).utf16Offset(in: p99)
        #expect(markEnd + 1 == end)
        let goodput = try #require(lines.first { $0.hasPrefix("goodput") })
        #expect(goodput.split(separator: " ").last == "9.50*")
        let meanUtilisation = try #require(lines.first { $0.hasPrefix("utilisation mean") })
        #expect(!meanUtilisation.contains("*"))
        let rejected = try #require(lines.first { $0.hasPrefix("rejected") })
        #expect(!rejected.contains("*"), "all equal: no mark")
        for label in ["TPOT p90 (ms)", "E2E p50 (ms)", "throughput", "cut streams", "preemptions", "cost per 1M"] {
            #expect(lines.contains { $0.hasPrefix(label) }, "missing row \(label)")
        }
        #expect(!table.contains("\u{1B}"))
        #expect(ReportWriter.table(ReportFixture.result(), color: true).contains("\u{1B}[1;32m"))
    }

    @Test("summary.md has the table, the SLO, a verdict and links to every chart")
    func markdown() {
        let md = ReportWriter.markdown(ReportFixture.result(scenario: "odd|name"))
        #expect(md.hasPrefix("# Simulation: odd\\|name\n"))
        #expect(md.contains("TTFT ≤ 2000 ms, TPOT ≤ 100 ms"))
        #expect(md.contains("| metric | isobar | round-robin | least-request |"))
        #expect(md.contains("**isobar** has the lowest p99 TTFT"))
        #expect(md.contains("**least-request** delivers the most goodput, 9.50 req/s"))
        for link in [
            "(ttft-cdf.svg)", "(queue-isobar.svg)", "(queue-round-robin.svg)", "(throughput-least-request.svg)",
        ] {
            #expect(md.contains("]\(link)"), "missing \(link)")
        }
        let p99Row = md.split(separator: "\n").first { $0.hasPrefix("| TTFT p99") }
        #expect(p99Row?.split(separator: "|")[1].contains("**") == true)
    }

    @Test("Verdict with one policy or no completed request")
    func verdictEdges() {
        var one = ReportFixture.result()
        one.policies = [one.policies[1]]
        #expect(ReportWriter.verdict(one).hasPrefix("Only **round-robin** ran"))
        var none = ReportFixture.result()
        none.policies = [PolicyResult(policy: .isobar), PolicyResult(policy: .random)]
        #expect(ReportWriter.verdict(none).contains("nothing to compare"))
        #expect(ReportWriter.table(none).contains("-"))
    }

    @Test("write(to:) creates the directory and every file; a bad path names itself")
    func writeFiles() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("isobar-report-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = root + "/nested/out"
        let paths = try ReportWriter.write(ReportFixture.result(), to: directory)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(paths.count == 9)
        #expect(
            names == [
                "queue-isobar.svg", "queue-least-request.svg", "queue-round-robin.svg", "summary.json", "summary.md",
                "throughput-isobar.svg", "throughput-least-request.svg", "throughput-round-robin.svg", "ttft-cdf.svg",
            ]
        )
        let written = try String(contentsOfFile: directory + "/summary.json", encoding: .utf8)
        #expect(try JSON(parsing: written) == ReportWriter.summaryJSON(ReportFixture.result()))

        let blocker = root + "/file"
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data()))
        #expect {
            try ReportWriter.write(ReportFixture.result(), to: blocker + "/out")
        } throws: { error in
            (error as? SimulatorError)?.file == blocker + "/out"
                && String(describing: error).hasPrefix(blocker + "/out: cannot create")
        }
    }

    @Test("Fixed-point formatting is locale-free and rounds half away from zero")
    func fixed() {
        #expect(ReportFormat.fixed(1.005, decimals: 1) == "1.0")
        #expect(ReportFormat.fixed(2.5, decimals: 0) == "3")
        #expect(ReportFormat.fixed(-0.04, decimals: 1) == "0.0")
        #expect(ReportFormat.fixed(-12.346, decimals: 2) == "-12.35")
        #expect(ReportFormat.fixed(0.007, decimals: 3) == "0.007")
        #expect(ReportFormat.fixed(1_234_567, decimals: 0) == "1234567")
        #expect(ReportFormat.fixed(.nan, decimals: 2) == "-")
        #expect(ReportRow.trimmed("2000.000") == "2000")
        #expect(ReportRow.trimmed("0.250") == "0.25")
    }
}
