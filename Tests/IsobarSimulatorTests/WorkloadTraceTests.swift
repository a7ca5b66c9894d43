import Foundation
import IsobarModel
import Testing

@testable import IsobarSimulator

@Suite("Trace files")
struct WorkloadTraceTests {
    /// Where a test writes its inputs; removed when the test ends.
    let scratch = WorkloadScratch()

    // MARK: - The real traces

    @Test func azureTraceParses() throws {
        let records = try TraceReader.load(
            TraceFile(format: .azure, path: WorkloadFixture.trace("azure_llm_2023_code.csv"))
        )
        #expect(records.count == 8819)
        #expect(records.first == TraceRecord(arrival: 0, promptTokens: 4808, outputTokens: 10))
        #expect(abs(records[1].arrival - 0.052) < 1e-9)
        // 18:17:03.9799600 to 19:14:19.9280160.
        #expect(abs(records.last!.arrival - 3435.948056) < 1e-6)
        #expect(records.last!.promptTokens == 549 && records.last!.outputTokens == 173)
    }

    @Test func timeScaleHalvesTheSpan() throws {
        let path = WorkloadFixture.trace("azure_llm_2023_code.csv")
        let records = try TraceReader.load(TraceFile(format: .azure, path: path, timeScale: 0.5))
        #expect(abs(records.last!.arrival - 3435.948056 / 2) < 1e-6)
    }

    @Test func mooncakeTraceParsesWithHashIDs() throws {
        let path = WorkloadFixture.trace("mooncake_fast25_synthetic_trace.jsonl.gz")
        let records = try TraceReader.load(TraceFile(format: .mooncake, path: path))
        #expect(records.count == 3993)
        #expect(records[0].promptTokens == 40160 && records[0].outputTokens == 6)
        #expect(records[0].hashIDs == Array(0...78))
        #expect(records.reduce(0) { $0 + $1.hashIDs.count } == 121_877)
        #expect(records.last!.arrival == 1022.025)
    }

    @Test(
        "Length-only traces parse",
        arguments: [
            ("sharegpt_8k_filtered_stats_llama2_tokenizer.csv.gz", 30_731, 74, 918),
            ("arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv.gz", 28_257, 3772, 54),
        ]
    )
    func lengthTracesParse(file: String, rows: Int, prompt: Int, output: Int) throws {
        let records = try TraceReader.load(TraceFile(format: .lengths, path: WorkloadFixture.trace(file)))
        #expect(records.count == rows)
        #expect(records[0].promptTokens == prompt && records[0].outputTokens == output)
        #expect(records.allSatisfy { $0.arrival == 0 && $0.promptTokens >= 1 && $0.outputTokens >= 1 })
    }

    @Test func lengthCDFsLoadInBothLayouts() throws {
        let array = try EmpiricalCDF.load(path: WorkloadFixture.trace("length_cdfs/fleetsim_lmsys_cdf.json"))
        let object = try EmpiricalCDF.load(path: WorkloadFixture.trace("length_cdfs/fleetsim_agent_heavy_cdf.json"))
        #expect(array.count == 18 && object.count == 18)
        #expect(array.first! == (64, 0.13143902904110133))
        #expect(object[2] == (256, 7e-05))
        #expect(object.last! == (65536, 1))
    }

    // MARK: - Written inputs

    @Test func azureTimesRollOverDaysAndMonths() throws {
        let path = try scratch.file(
            "times.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2024-02-28 23:59:59.5,10,0\r\n2024-02-29 00:00:00.25,20,3\r\n"
                + "2024-03-01T00:00:00,30,4"
        )
        let records = try TraceReader.load(TraceFile(format: .azure, path: path))
        #expect(records.map(\.arrival) == [0, 0.75, 86_400.5])
        // A row that generated nothing is replayed as one generating a single token.
        #expect(records.map(\.outputTokens) == [1, 3, 4])
    }

    @Test func rowsOutOfOrderAreSortedAndHeaderlessColumnsArePositional() throws {
        let path = try scratch.file("unsorted.csv", "2023-11-16 10:00:05,1,1\n2023-11-16 10:00:02,2,2\n")
        let records = try TraceReader.load(TraceFile(format: .azure, path: path))
        #expect(records.map(\.arrival) == [0, 3])
        #expect(records.map(\.promptTokens) == [2, 1])
    }

    @Test func headerColumnsAreFoundByName() throws {
        let path = try scratch.file("named.csv", "pd_ratio,num_decode_tokens,num_prefill_tokens\n0.5,20,10\n")
        let records = try TraceReader.load(TraceFile(format: .lengths, path: path))
        #expect(records == [TraceRecord(arrival: 0, promptTokens: 10, outputTokens: 20)])
    }

    @Test(
        "Malformed rows are located by file and line",
        arguments: [
            (
                TraceFile.Format.azure,
                "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,10,2\n\n"
                    + "2023-11-16 18:17:04.1,abc,3\n", "4: ContextTokens: expected a non-negative integer, got 'abc'"
            ),
            (
                .azure, "2023-11-16 18:17:03.97,10,2\n2023-11-16 25:00:00,1,1\n",
                "2: TIMESTAMP: expected a time like 2023-11-16 18:17:03.9799600, got '2023-11-16 25:00:00'"
            ),
            (
                .azure, "2023-11-16 18:17:03.97,10\n",
                "1: expected the columns TIMESTAMP,ContextTokens,GeneratedTokens, got 2 field(s)"
            ),
            (
                .lengths, "num_prefill_tokens,decode\n1,2\n",
                "1: the header has no column num_decode_tokens (it has num_prefill_tokens,decode)"
            ),
            (
                .lengths, "num_prefill_tokens,num_decode_tokens\n5,-1\n",
                "2: num_decode_tokens: expected a non-negative integer, got '-1'"
            ),
            (.lengths, "7,99999999999\n", "1: num_decode_tokens: 99999999999 is too large (at most 1000000000)"),
            (
                .mooncake,
                "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1}\n{\"timestamp\": 3, \"input_length\": \"x\"}\n",
                "2: input_length: expected a non-negative integer, got '\"x\"'"
            ),
            (
                .mooncake, "{\"timestamp\": 0, \"input_length\": 5}\n",
                "1: output_length: expected a non-negative integer, it is missing"
            ),
            (
                .mooncake, "{\"timestamp\": 0, \"hash_ids\": [1, 2,, 3]}\n",
                "1: invalid value (column 36)"
            ),
            (.mooncake, "timestamp=0\n", "1: invalid literal (column 1)"),
            (.mooncake, "[1, 2]\n", "1: expected a JSON object"),
            (
                .mooncake, "{\"timestamp\": 1, \"input_length\": 2, \"output_length\": 3, \"hash_ids\": [-4]}\n",
                "1: hash_ids: expected an array of non-negative integers, got '[-4]'"
            ),
            (.lengths, "\n\n", "the trace has no records"),
        ]
    )
    func malformedInputIsLocated(format: TraceFile.Format, text: String, expected: String) throws {
        let path = try scratch.file("bad", text)
        let error = #expect(throws: SimulatorError.self) { try TraceReader.load(TraceFile(format: format, path: path)) }
        #expect(error?.kind == .malformed)
        #expect(error?.description == "\(path)\(expected.first!.isNumber ? ":" : ": ")\(expected)")
    }

    @Test func corruptCompressionIsReported() throws {
        let garbage = try scratch.file("garbage.csv.gz", "TIMESTAMP,ContextTokens,GeneratedTokens\n")
        let error = #expect(throws: SimulatorError.self) {
            try TraceReader.load(TraceFile(format: .azure, path: garbage))
        }
        #expect(error?.kind == .corrupt)
        #expect(error?.description == "\(garbage): corrupt gzip data (incorrect header check)")

        let whole = try Data(
            contentsOf: URL(filePath: WorkloadFixture.trace("sharegpt_8k_filtered_stats_llama2_tokenizer.csv.gz"))
        )
        let truncated = try scratch.file("truncated.csv.gz", whole.prefix(whole.count / 2))
        let cut = #expect(throws: SimulatorError.self) {
            try TraceReader.load(TraceFile(format: .lengths, path: truncated))
        }
        #expect(cut?.kind == .corrupt)
        #expect(cut?.message == "truncated gzip data: the file ends inside the compressed stream")
    }

    @Test func unusableSettingsAreRefused() {
        let file = TraceFile(format: .azure, path: WorkloadFixture.trace("azure_llm_2023_code.csv"), timeScale: 0)
        let error = #expect(throws: SimulatorError.self) { try TraceReader.load(file) }
        #expect(error?.message == "the time scale must be a positive number")
    }

    @Test func missingFileIsUnreadable() {
        let error = #expect(throws: SimulatorError.self) {
            try TraceReader.load(TraceFile(format: .azure, path: "/nonexistent/trace.csv"))
        }
        #expect(error?.kind == .unreadable)
        #expect(error?.description == "/nonexistent/trace.csv: cannot open: No such file or directory")
    }

    @Test func malformedCDFIsLocated() throws {
        let decreasing = try scratch.file("cdf.json", "[\n  [64, 0.5],\n  [32, 1.0]\n]\n")
        let error = #expect(throws: SimulatorError.self) { try EmpiricalCDF.load(path: decreasing) }
        #expect(error?.description == "\(decreasing): [1]: tokens and cumulative fractions must not decrease")
        let broken = try scratch.file("cdf.json", "[\n  [64, 0.5],\n  [128 1.0]\n]\n")
        let syntax = #expect(throws: SimulatorError.self) { try EmpiricalCDF.load(path: broken) }
        #expect(syntax?.description == "\(broken):3: expected ',' or ']' in array")
        let short = try scratch.file("cdf.json", "{\"source\": \"x\", \"cdf\": [[64, 0.5], [128, 0.9]]}")
        let unfinished = #expect(throws: SimulatorError.self) { try EmpiricalCDF.load(path: short) }
        #expect(unfinished?.message == "the last cumulative fraction is 0.9, not 1")
        let absent = try scratch.file("cdf.json", "{\"source\": [1, {\"a\": null}]}")
        let missing = #expect(throws: SimulatorError.self) { try EmpiricalCDF.load(path: absent) }
        #expect(missing?.message == "expected [[tokens, cumulative], ...] or an object with a 'cdf' key holding it")
    }
}

/// The repository's trace files.
enum WorkloadFixture {
    /// `simulator/traces/<name>` in this checkout.
    static func trace(_ name: String) -> String {
        let tests = URL(filePath: #filePath).deletingLastPathComponent()
        return tests.appending(path: "../../simulator/traces/\(name)").standardized.path(percentEncoded: false)
    }
}

/// A temporary directory for the files one test writes, removed with the last reference to it.
final class WorkloadScratch: Sendable {
    let directory = FileManager.default.temporaryDirectory.appending(path: "isobar-workload-\(UUID().uuidString)")

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Writes `contents` to the file `name` of the directory and returns its path.
    func file(_ name: String, _ contents: some DataProtocol) throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appending(path: name)
        try Data(contents).write(to: url)
        return url.path(percentEncoded: false)
    }

    func file(_ name: String, _ text: String) throws -> String {
        try file(name, Data(text.utf8))
    }
}
