/// One problem found in a configuration file, located by line and key path.
///
/// `description` is the form `isobar check` prints: `file:line: key.path: message`, for example
/// `topology/demo.yaml:14: backends[1].engine: unknown engine 'vlm' (did you mean 'vllm'?)`.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// The file name as given to the loader.
    public var file: String
    /// The 1-based line the problem is on; 0 when it has no line (the file could not be read).
    public var line: Int
    /// Where in the document the problem is, such as `backends[2].capacity.max_concurrency`;
    /// `<document>` for the document as a whole (a syntax error, a top level that is not a mapping).
    public var keyPath: String
    /// What is wrong, and where it helps, what would be right.
    public var message: String

    public init(file: String, line: Int, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String { "\(file):\(line): \(keyPath): \(message)" }
}

/// The error of IsobarConfig: every problem found in a file, sorted by line.
///
/// Loading never stops at the first problem, so one run of `isobar check` shows all of them.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// The problems, sorted by line; never empty.
    public var diagnostics: [ConfigDiagnostic]

    public init(diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    /// One diagnostic per line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
