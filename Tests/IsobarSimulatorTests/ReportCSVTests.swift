import Foundation
import IsobarModel
import Testing

@testable import IsobarSimulator

@Suite("Report: per-request CSV")
struct ReportCSVTests {
    let completed = RequestRecord(
        policy: .powerOfTwo,
        id: 7,
        region: "eu-west",
        backend: "h100-3",
        arrival: 12.3456789,
        promptTokens: 512,
        outputTokens: 128,
        ttft: 0.25,
        e2e: 3.5,
        outcome: .completed
    )

    /// Splits one CSV line into fields, undoing RFC 4180 quoting.
    func fields(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var characters = Array(line)[...]
        while let c = characters.popFirst() {
            if quoted {
                if c == "\"" {
                    if characters.first == "\"" {
                        current.append("\"")
                        characters = characters.dropFirst()
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                fields.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        return fields + [current]
    }

    @Test("Header and a completed row")
    func row() {
        #expect(
            fields(RequestCSV.header) == [
                "policy", "id", "region", "backend", "arrival_s", "prompt_tokens", "output_tokens", "ttft_ms",
                "e2e_ms", "outcome",
            ]
        )
        #expect(
            RequestCSV.row(completed) == "power-of-two,7,eu-west,h100-3,12.345679,512,128,250.000,3500.000,completed"
        )
    }

    @Test("A rejected request leaves backend and latencies empty")
    func rejected() {
        var record = completed
        record.backend = nil
        record.ttft = nil
        record.e2e = nil
        record.outcome = .rejected
        #expect(RequestCSV.row(record) == "power-of-two,7,eu-west,,12.345679,512,128,,,rejected")
    }

    @Test("Commas, quotes and line breaks in names are quoted")
    func escaping() {
        var record = completed
        record.region = RegionID("eu, \"west\"")
        record.backend = BackendID("a\nb")
        let line = RequestCSV.row(record)
        #expect(line.hasPrefix("power-of-two,7,\"eu, \"\"west\"\"\",\"a\nb\",12.345679"))
        let parsed = fields(line)
        #expect(parsed.count == 10)
        #expect(parsed[2] == "eu, \"west\"" && parsed[3] == "a\nb")
    }

    @Test("RequestCSVFile streams the header and rows to disk")
    func file() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("isobar-csv-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let csv = try RequestCSVFile(path: directory + "/requests.csv")
        for i in 0..<5000 {
            var record = completed
            record.id = UInt64(i)
            try csv.append(record)
        }
        try csv.close()
        let text = try String(contentsOfFile: directory + "/requests.csv", encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 5002)
        #expect(lines[0] == RequestCSV.header[...])
        #expect(lines[5000].hasPrefix("power-of-two,4999,"))
        #expect(lines[5001].isEmpty)
    }
}
