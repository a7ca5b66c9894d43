import Foundation
import IsobarModel
import IsobarWire

/// A real engine run with per-request timestamps, in the LLMServingSim vLLM ground-truth format: a
/// JSONL file of requests (`input_toks`, `output_toks`, `queued_ts`, `scheduled_ts`, `first_token_ts`,
/// `last_token_ts`, monotonic seconds) and a meta JSON file with the engine's settings
/// (`engine_kwargs.max_num_seqs`, `max_num_batched_tokens`, `kv_cache.num_gpu_blocks`, `block_size`,
/// `enable_prefix_caching`).
public struct GroundTruth: Sendable, Equatable {
    /// One measured request; times in seconds from the first request's arrival at the engine.
    public struct Request: Sendable, Equatable {
        public var arrival: Double
        public var promptTokens: Int
        public var outputTokens: Int
        public var ttft: Double
        public var e2e: Double

        /// Time per output token after the first, if there is more than one.
        public var tpot: Double? { outputTokens > 1 ? (e2e - ttft) / Double(outputTokens - 1) : nil }
    }

    public var requests: [Request]
    public var model: String
    public var device: String
    public var maxNumSeqs: Int
    public var maxNumBatchedTokens: Int
    public var blockSize: Int
    public var numBlocks: Int
    public var prefixCaching: Bool

    /// Reads a run; errors name the file and line.
    public static func load(
        requests requestsPath: String,
        meta metaPath: String
    ) throws(SimulatorError) -> GroundTruth {
        let meta = try document(metaPath)
        let engine = meta["engine_kwargs"]
        let cache = meta["kv_cache"]
        func setting(_ value: JSON?, _ key: String) throws(SimulatorError) -> Int {
            guard let number = value?.intValue, number > 0 else {
                throw SimulatorError(.malformed, file: metaPath, message: "\(key): expected a positive integer")
            }
            return number
        }
        var run = GroundTruth(
            requests: [],
            model: meta["model"]?.stringValue ?? "unknown",
            device: meta["hardware"]?["device_name"]?.stringValue ?? "unknown",
            maxNumSeqs: try setting(engine?["max_num_seqs"], "engine_kwargs.max_num_seqs"),
            maxNumBatchedTokens: try setting(engine?["max_num_batched_tokens"], "engine_kwargs.max_num_batched_tokens"),
            blockSize: try setting(cache?["block_size"], "kv_cache.block_size"),
            numBlocks: try setting(cache?["num_gpu_blocks"], "kv_cache.num_gpu_blocks"),
            prefixCaching: cache?["enable_prefix_caching"]?.boolValue ?? false
        )
        run.requests = try records(requestsPath)
        guard run.requests.count >= 20 else {
            throw SimulatorError(
                .malformed,
                file: requestsPath,
                message: "\(run.requests.count) requests; calibration needs at least 20"
            )
        }
        return run
    }

    private static func document(_ path: String) throws(SimulatorError) -> JSON {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SimulatorError(.unreadable, file: path, message: "cannot read the file")
        }
        do {
            return try JSON(parsing: data)
        } catch {
            throw SimulatorError(.malformed, file: path, message: "not valid JSON: \(error)")
        }
    }

    private static func records(_ path: String) throws(SimulatorError) -> [Request] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SimulatorError(.unreadable, file: path, message: "cannot read the file")
        }
        var raw: [(queued: Double, prompt: Int, output: Int, first: Double, last: Double)] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            let number = index + 1
            guard let json = try? JSON(parsing: line) else {
                throw SimulatorError.malformed(path, line: number, "not a JSON object")
            }
            func field(_ key: String) throws(SimulatorError) -> Double {
                guard let value = json[key]?.doubleValue, value.isFinite else {
                    throw SimulatorError.malformed(path, line: number, "\(key): expected a number")
                }
                return value
            }
            let prompt = Int(try field("input_toks"))
            let output = Int(try field("output_toks"))
            let queued = try field("queued_ts")
            let first = try field("first_token_ts")
            let last = try field("last_token_ts")
            guard prompt > 0, output > 0, queued <= first, first <= last else {
                throw SimulatorError.malformed(path, line: number, "timestamps or token counts are inconsistent")
            }
            raw.append((queued, prompt, output, first, last))
        }
        let start = raw.map(\.queued).min() ?? 0
        return raw.sorted { $0.queued < $1.queued }.map {
            Request(
                arrival: $0.queued - start,
                promptTokens: $0.prompt,
                outputTokens: $0.output,
                ttft: $0.first - $0.queued,
                e2e: $0.last - $0.queued
            )
        }
    }
}
