import Foundation
import IsobarModel
import Testing

@testable import IsobarSimulator

#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite("Report: SVG charts")
struct ReportChartTests {
    /// Whether `svg` is well-formed XML.
    func wellFormed(_ svg: String) -> Bool {
        XMLParser(data: Data(svg.utf8)).parse()
    }

    func charts(_ result: ScenarioResult) -> [ReportWriter.File] {
        ReportWriter.files(result).filter { $0.name.hasSuffix(".svg") }
    }

    @Test("Every chart is well-formed SVG that names its policy")
    func wellFormedCharts() {
        let result = ReportFixture.result()
        let files = charts(result)
        #expect(files.count == 1 + 2 * result.policies.count)
        for file in files {
            #expect(wellFormed(file.contents), "\(file.name) is not well-formed")
            #expect(file.contents.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        }
        for policy in result.policies.map(\.policy.rawValue) {
            let own = files.filter { $0.name.contains(policy) }
            #expect(own.count == 2)
            for file in own { #expect(file.contents.contains(policy)) }
            #expect(files[0].contents.contains(">\(policy) (p99 "), "CDF legend lacks \(policy)")
        }
    }

    @Test("The TTFT CDF has units, a log axis, percentile guides and the SLO")
    func cdf() {
        let svg = ReportWriter.ttftCDFChart(ReportFixture.result())
        #expect(svg.contains("time to first token (ms, log scale)"))
        #expect(svg.contains("requests with TTFT at or below x (%)"))
        for label in [">p50<", ">p90<", ">p99<", ">SLO 2000 ms<", ">100<", ">1000<"] {
            #expect(svg.contains(label), "missing \(label)")
        }
        // One line per policy with about 200 points each.
        let lines = svg.components(separatedBy: "<polyline").dropFirst()
        #expect(lines.count == 3)
        for line in lines {
            let points = line.components(separatedBy: "points=\"")[1].prefix { $0 != "\"" }
            #expect(points.split(separator: " ").count == 200)
        }
    }

    @Test("64 backends and 600 samples: band, mean and top-5 lines, under 150 kB per chart")
    func manyBackends() {
        let result = ReportFixture.result(backends: 64, samples: 600)
        for file in charts(result) {
            #expect(wellFormed(file.contents), "\(file.name) is not well-formed")
            #expect(file.contents.utf8.count < 150_000, "\(file.name) is \(file.contents.utf8.count) bytes")
        }
        let queue = ReportWriter.queueChart(result.policies[0], of: result)
        #expect(queue.contains("min-max of 64 backends"))
        #expect(queue.contains("mean of 64 backends"))
        #expect(queue.components(separatedBy: "<polyline").count - 1 == 1 + ReportWriter.topBackendCount)
        #expect(queue.contains("backends highest on average"))
        #expect(queue.components(separatedBy: "<polygon").count - 1 == 2, "band and its legend swatch")
        let throughput = ReportWriter.throughputChart(result.policies[0], of: result)
        #expect(throughput.contains(">Fleet total<") && throughput.contains(">Per backend<"))
        #expect(throughput.contains("all backends") && throughput.contains("backends lowest on average"))
    }

    @Test("A small fleet gets one named line per backend")
    func fewBackends() {
        let result = ReportFixture.result(backends: 3, samples: 20)
        let queue = ReportWriter.queueChart(result.policies[1], of: result)
        for name in ["b-0", "b-1", "b-2"] { #expect(queue.contains(">\(name)<")) }
        #expect(queue.components(separatedBy: "<polyline").count - 1 == 3)
        #expect(queue.contains("waiting requests") && queue.contains("simulated time (s)"))
    }

    @Test("Long runs are thinned to at most 640 points a line")
    func thinning() {
        let points = ReportWriter.reduced((0..<3600).map(Double.init), interval: 1)
        #expect(points.count <= ReportWriter.maximumPoints)
        #expect(points.first?.x == 0)
        #expect(points[1].x == 6 && points[0].y == 2.5)
        #expect(ReportWriter.reduced([1, 2, 3], interval: 2).map(\.x) == [0, 2, 4])
    }

    @Test("Text is escaped and empty series still draw")
    func escapingAndEmpty() {
        var result = ReportFixture.result(scenario: "<a & b> \"c\" 'd'", backends: 2, samples: 0)
        result.policies.append(PolicyResult(policy: .random))
        for file in charts(result) {
            #expect(wellFormed(file.contents), "\(file.name) is not well-formed")
            #expect(!file.contents.contains("<a & b>"))
        }
        let empty = ReportWriter.queueChart(result.policies[3], of: result)
        #expect(empty.contains(">no samples<"))
        #expect(ReportWriter.ttftCDFChart(result).contains("random (no data)"))
        result.policies = [PolicyResult(policy: .random)]
        let none = ReportWriter.ttftCDFChart(result)
        #expect(wellFormed(none) && none.contains("no completed requests"))
    }

    @Test("Axis ticks: 1-2-5 steps on linear scales, powers of ten on wide log scales")
    func ticks() {
        #expect(ChartScale.linear(upTo: 87).upper == 100)
        #expect(ChartScale.linear(upTo: 87).ticks().map(\.label) == ["0", "20", "40", "60", "80", "100"])
        #expect(ChartScale.linear(upTo: 0).upper == 1)
        let wide = ChartScale.log(from: 0.5, to: 20000)
        #expect(wide.ticks().filter(\.major).map(\.label) == ["1", "10", "100", "1000", "10k"])
        let narrow = ChartScale.log(from: 80, to: 600)
        #expect(narrow.ticks().filter(\.major).map(\.label) == ["100", "200", "500"])
        #expect(ChartScale.log(from: 10, to: 11).upper / ChartScale.log(from: 10, to: 11).lower > 9.99)
        #expect(ChartScale.label(0.05) == "0.05" && ChartScale.label(2_500_000) == "2.5M")
    }
}
