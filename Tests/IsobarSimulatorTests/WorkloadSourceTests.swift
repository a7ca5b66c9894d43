import IsobarModel
import Testing

@testable import IsobarSimulator

@Suite("Request sources")
struct WorkloadSourceTests {
    let traces = TraceCache()

    static let chat = Workload(
        region: "eu",
        model: "llama",
        source: .synthetic(
            arrivals: Arrivals(rate: 20, process: .gamma(cv: 2)),
            lengths: .independent(
                prompt: LengthDistribution(.lognormal(median: 1200, sigma: 1), max: 32_768),
                output: LengthDistribution(.exponential(mean: 250), max: 4096)
            )
        )
    )

    func first(_ count: Int, of workload: Workload, seed: UInt64) throws -> [GeneratedRequest] {
        var source = try RequestSource(workload: workload, seed: seed, traces: traces)
        return (0..<count).compactMap { _ in source.next() }
    }

    func scenario(_ workloads: [Workload]) -> Scenario {
        let topology = Topology(mesh: Mesh(name: "test"), regions: [], nodes: [], backends: [], models: [])
        return Scenario(name: "test", seed: 42, stop: .requests(100), topology: topology, workloads: workloads)
    }

    @Test func syntheticRequestsArriveInOrderWithinBounds() throws {
        let requests = try first(10_000, of: Self.chat, seed: 1)
        #expect(requests.count == 10_000)
        #expect(zip(requests, requests.dropFirst()).allSatisfy { $0.arrival <= $1.arrival })
        #expect(requests.allSatisfy { (1...32_768).contains($0.promptTokens) && (1...4096).contains($0.outputTokens) })
        #expect(requests.allSatisfy { $0.prefixHashes.isEmpty && $0.hashBlockTokens == 512 })
    }

    @Test func sameSeedSameRequestsOtherSeedsDiffer() throws {
        #expect(try first(2000, of: Self.chat, seed: 9) == first(2000, of: Self.chat, seed: 9))
        let other = try first(2000, of: Self.chat, seed: 10)
        #expect(try zip(first(2000, of: Self.chat, seed: 9), other).allSatisfy { $0.arrival != $1.arrival })
    }

    @Test func arrivalsDoNotDependOnTheLengths() throws {
        var longer = Self.chat
        longer.source = .synthetic(
            arrivals: Arrivals(rate: 20, process: .gamma(cv: 2)),
            lengths: .independent(prompt: LengthDistribution(.constant(9)), output: LengthDistribution(.constant(3)))
        )
        let base = try first(500, of: Self.chat, seed: 3)
        let changed = try first(500, of: longer, seed: 3)
        #expect(base.map(\.arrival) == changed.map(\.arrival))
        #expect(changed.allSatisfy { $0.promptTokens == 9 && $0.outputTokens == 3 })
    }

    @Test func addingAWorkloadLeavesTheOthersAlone() throws {
        let one = scenario([Self.chat])
        let two = scenario([Self.chat, Self.chat])
        var alone = try RequestSource(scenario: one, workloadIndex: 0, traces: traces)
        var first = try RequestSource(scenario: two, workloadIndex: 0, traces: traces)
        var second = try RequestSource(scenario: two, workloadIndex: 1, traces: traces)
        let a = (0..<200).map { _ in alone.next()! }
        #expect(a == (0..<200).map { _ in first.next()! })
        #expect(a != (0..<200).map { _ in second.next()! })
        #expect(
            RequestSource.seed(scenarioSeed: 42, workloadIndex: 0)
                != RequestSource.seed(scenarioSeed: 42, workloadIndex: 1)
        )
    }

    @Test func pairsSampleRowsOfALengthTrace() throws {
        let file = TraceFile(
            format: .lengths,
            path: WorkloadFixture.trace("sharegpt_8k_filtered_stats_llama2_tokenizer.csv.gz")
        )
        let rows = Set(try traces.records(file).map { [$0.promptTokens, $0.outputTokens] })
        let workload = Workload(
            region: "eu",
            model: "llama",
            source: .synthetic(arrivals: Arrivals(rate: 5), lengths: .pairs(file))
        )
        let requests = try first(2000, of: workload, seed: 4)
        #expect(requests.allSatisfy { rows.contains([$0.promptTokens, $0.outputTokens]) })
        #expect(Set(requests.map(\.promptTokens)).count > 1000)
        #expect(try first(2000, of: workload, seed: 4) == requests)
    }

    @Test func traceReplayYieldsTheTraceThenEnds() throws {
        let file = TraceFile(
            format: .mooncake,
            path: WorkloadFixture.trace("mooncake_fast25_synthetic_trace.jsonl.gz"),
            hashBlockTokens: 256
        )
        let records = try traces.records(file)
        var source = try RequestSource(
            workload: Workload(region: "eu", model: "llama", source: .trace(file)),
            seed: 1,
            traces: traces
        )
        var replayed: [GeneratedRequest] = []
        while let request = source.next() { replayed.append(request) }
        #expect(replayed.count == records.count)
        #expect(replayed.map(\.arrival) == records.map(\.arrival))
        #expect(replayed.map(\.prefixHashes) == records.map(\.hashIDs))
        #expect(replayed.allSatisfy { $0.hashBlockTokens == 256 })
        #expect(source.next() == nil)
        // The hashes are the cached arrays themselves, not copies.
        #expect(address(of: replayed[7].prefixHashes) == address(of: records[7].hashIDs))
    }

    @Test func traceCacheReadsAFileOnce() throws {
        let file = TraceFile(format: .azure, path: WorkloadFixture.trace("azure_llm_2023_code.csv"))
        #expect(try address(of: traces.records(file)) == address(of: traces.records(file)))
        let faster = TraceFile(format: .azure, path: file.path, timeScale: 0.25)
        #expect(try traces.records(faster).last!.arrival == traces.records(file).last!.arrival / 4)
    }

    @Test func missingTraceFailsTheSource() {
        let file = TraceFile(format: .azure, path: "/nonexistent.csv")
        let workload = Workload(region: "eu", model: "llama", source: .trace(file))
        #expect(throws: SimulatorError.self) { try RequestSource(workload: workload, seed: 1, traces: traces) }
    }

    func address<T>(of array: [T]) -> UnsafeRawPointer? {
        array.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
    }
}
