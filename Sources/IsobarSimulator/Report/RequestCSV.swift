import Foundation

/// The per-request CSV, one row per request as it ends, so a run of millions of requests can stream
/// it to disk without holding it in memory.
///
/// Columns: `policy,id,region,backend,arrival_s,prompt_tokens,output_tokens,ttft_ms,e2e_ms,outcome`.
/// Times are in seconds (6 decimals) or milliseconds (3 decimals); `backend`, `ttft_ms` and `e2e_ms`
/// are empty when the request never reached a backend or got no token. Fields holding a comma, quote
/// or line break are quoted as RFC 4180 says. Neither the header nor a row ends in a newline.
public enum RequestCSV {
    /// The header line.
    public static let header = "policy,id,region,backend,arrival_s,prompt_tokens,output_tokens,ttft_ms,e2e_ms,outcome"

    /// The line of one request.
    public static func row(_ record: RequestRecord) -> String {
        let backend: String = record.backend.map { field($0.rawValue) } ?? ""
        let ttft: String = record.ttft.map { ReportFormat.fixed($0 * 1000, decimals: 3) } ?? ""
        let e2e: String = record.e2e.map { ReportFormat.fixed($0 * 1000, decimals: 3) } ?? ""
        let fields: [String] = [
            field(record.policy.rawValue), String(record.id), field(record.region.rawValue), backend,
            ReportFormat.fixed(record.arrival, decimals: 6), String(record.promptTokens), String(record.outputTokens),
            ttft, e2e, record.outcome.rawValue,
        ]
        return fields.joined(separator: ",")
    }

    /// `text` as a CSV field: quoted, with inner quotes doubled, when it holds a comma, quote or line break.
    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else {
            return text
        }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// A per-request CSV file being written: the header first, then rows appended one at a time through a
/// buffer, so memory stays constant however many requests a run has.
///
/// Not thread-safe; use it from the one place that receives records.
public final class RequestCSVFile {
    /// The file's path.
    public let path: String
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private static let flushThreshold = 1 << 16

    /// Creates (or truncates) the file at `path`, creating its directory if needed, and writes the header.
    ///
    /// - Throws: `SimulatorError` naming the path.
    public init(path: String) throws(SimulatorError) {
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SimulatorError.unwritable(directory, "cannot create the directory of the request CSV", cause: error)
        }
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw SimulatorError.unwritable(path, "cannot create the request CSV")
        }
        self.handle = handle
        buffer.append(contentsOf: RequestCSV.header.utf8)
        buffer.append(0x0A)
    }

    /// Appends the row of `record`.
    ///
    /// - Throws: `SimulatorError` when the buffered rows cannot be written.
    public func append(_ record: RequestRecord) throws(SimulatorError) {
        buffer.append(contentsOf: RequestCSV.row(record).utf8)
        buffer.append(0x0A)
        if buffer.count >= Self.flushThreshold { try flush() }
    }

    /// Writes the buffered rows and closes the file. Call once, after the last `append`.
    ///
    /// - Throws: `SimulatorError` when the rest cannot be written or the file cannot be closed.
    public func close() throws(SimulatorError) {
        try flush()
        do {
            try handle.close()
        } catch {
            throw SimulatorError.unwritable(path, "cannot close the request CSV", cause: error)
        }
    }

    private func flush() throws(SimulatorError) {
        guard !buffer.isEmpty else { return }
        do {
            try handle.write(contentsOf: buffer)
        } catch {
            throw SimulatorError.unwritable(path, "cannot write the request CSV", cause: error)
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
