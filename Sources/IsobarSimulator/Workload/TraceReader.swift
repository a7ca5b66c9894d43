import IsobarModel

/// One request of a trace.
public struct TraceRecord: Sendable, Equatable {
    /// When it arrives, in seconds from the trace's first request, already multiplied by the trace
    /// file's `timeScale`. Every record of a length-only trace arrives at 0.
    public var arrival: Double
    /// Prompt tokens, at least 1.
    public var promptTokens: Int
    /// Output tokens, at least 1: a row with 0 output tokens (a request that was cut off or only
    /// prefilled) is replayed as one that generates 1 token, since every simulated request produces a
    /// first token.
    public var outputTokens: Int
    /// Hashes of the prompt's prefix blocks (Mooncake `hash_ids`); empty for the other formats.
    public var hashIDs: [UInt64]

    public init(arrival: Double, promptTokens: Int, outputTokens: Int, hashIDs: [UInt64] = []) {
        self.arrival = arrival
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.hashIDs = hashIDs
    }
}

/// Reads trace files into records in arrival order.
///
/// Formats (see `simulator/traces/README.md`):
/// - `azure`: CSV `TIMESTAMP,ContextTokens,GeneratedTokens`, timestamps like `2023-11-16 18:17:03.9799600`.
/// - `mooncake`: JSON lines `{"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}`.
/// - `lengths`: CSV `num_prefill_tokens,num_decode_tokens,...` without arrival times.
///
/// A header row is skipped; when there is one, CSV columns are found by name, otherwise by position.
/// Files ending in `.gz` are decompressed while they are read. Records come out sorted by arrival
/// (stably, should a file be out of order). Prompt and output lengths below 1 are raised to 1.
public enum TraceReader {
    /// The largest prompt or output length a trace may give: a longer one is surely a broken row.
    static let maximumTokens: UInt64 = 1_000_000_000

    /// Reads every record of `file`.
    public static func load(_ file: TraceFile) throws(SimulatorError) -> [TraceRecord] {
        if let problem = file.problem { throw .malformed(file.path, line: 0, problem) }
        var records: [TraceRecord]
        switch file.format {
        case .azure: records = try readAzure(path: file.path)
        case .mooncake: records = try readMooncake(path: file.path)
        case .lengths: records = try readLengths(path: file.path)
        }
        guard !records.isEmpty else { throw .malformed(file.path, line: 0, "the trace has no records") }
        normalize(&records, timeScale: file.timeScale)
        return records
    }

    /// Sorts by arrival if needed, measures arrivals from the first one and scales them.
    private static func normalize(_ records: inout [TraceRecord], timeScale: Double) {
        if !zip(records, records.dropFirst()).allSatisfy({ $0.arrival <= $1.arrival }) {
            records = records.enumerated().sorted { ($0.element.arrival, $0.offset) < ($1.element.arrival, $1.offset) }
                .map(\.element)
        }
        let start = records[0].arrival
        guard start != 0 || timeScale != 1 else { return }
        for index in records.indices {
            records[index].arrival = (records[index].arrival - start) * timeScale
        }
    }

    /// A token count checked against `maximumTokens`; `column` names the field in an error.
    static func tokens(_ value: UInt64, column: String, file: String, line: Int) throws(SimulatorError) -> UInt64 {
        guard value <= maximumTokens else {
            throw .malformed(file, line: line, "\(column): \(value) is too large (at most \(maximumTokens))")
        }
        return value
    }

    /// A record with lengths below 1 raised to 1.
    static func record(arrival: Double, prompt: UInt64, output: UInt64, hashIDs: [UInt64] = []) -> TraceRecord {
        TraceRecord(
            arrival: arrival,
            promptTokens: Swift.max(1, Int(prompt)),
            outputTokens: Swift.max(1, Int(output)),
            hashIDs: hashIDs
        )
    }
}

extension TraceFile {
    /// Why the file's settings cannot be used (a time scale or block size out of range), or nil when they can.
    public var problem: String? {
        guard timeScale > 0, timeScale.isFinite else { return "the time scale must be a positive number" }
        return hashBlockTokens > 0 ? nil : "the hash block size must be a positive number of tokens"
    }
}
