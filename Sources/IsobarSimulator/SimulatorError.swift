/// The simulator's one error type: a problem with a file it reads (a trace, a length CDF, a calibration
/// run) or writes (reports), located by file and line.
///
/// `description` is the form a user sees: `file:line: message`, for example
/// `simulator/traces/x.csv:17: ContextTokens: expected a non-negative integer, got 'abc'`.
/// Problems that belong to no line (the file cannot be opened, its compression is corrupt, a report
/// cannot be written) print as `file: message`.
public struct SimulatorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem it is.
    public enum Kind: Sendable, Equatable {
        /// The file could not be opened or read.
        case unreadable
        /// The `.gz` compression is corrupt or truncated.
        case corrupt
        /// The content does not have the expected form (a row, a field, a JSON value).
        case malformed
        /// A report file or directory could not be written.
        case unwritable
    }

    public var kind: Kind
    /// The path as the trace file names it.
    public var file: String
    /// The 1-based line of the problem; 0 when it belongs to no line.
    public var line: Int
    /// What is wrong, naming the column or key when there is one.
    public var message: String

    public init(_ kind: Kind, file: String, line: Int = 0, message: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}

extension SimulatorError {
    static func malformed(_ file: String, line: Int, _ message: String) -> SimulatorError {
        SimulatorError(.malformed, file: file, line: line, message: message)
    }

    /// A file that could not be written, with the file system's reason.
    static func unwritable(_ path: String, _ message: String, cause: (any Error)? = nil) -> SimulatorError {
        SimulatorError(.unwritable, file: path, message: message + (cause.map { " (\($0))" } ?? ""))
    }

    /// An input fragment quoted for a message, cut to a readable length.
    static func quote(_ text: some StringProtocol) -> String {
        let limit = 40
        return "'" + text.prefix(limit) + (text.count > limit ? "…'" : "'")
    }

    /// An input fragment quoted for a message, cut to a readable length.
    static func quote(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        quote(String(decoding: bytes, as: UTF8.self))
    }
}
