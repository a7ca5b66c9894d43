import Foundation
import IsobarModel

/// Loads topology files (DESIGN §3, `topology/README.md`) into validated `Topology` values.
///
/// Loading reads the YAML into a schema that mirrors the file, then validates it into IsobarModel values:
/// every reference resolves, every name is unique, every number is in range, API keys are read. It does not
/// stop at the first problem: a `ConfigError` carries all of them, each as `file:line: key.path: message`.
public enum TopologyLoader {
    /// Reads and validates the topology file at `path`.
    ///
    /// - Parameters:
    ///   - path: The file; diagnostics name it as given.
    ///   - environment: Where `*_env` keys (`api_key_env`, `gossip_key_env`) are looked up; callers pass
    ///     `ProcessInfo.processInfo.environment`.
    /// - Throws: `ConfigError` with every problem found, sorted by line.
    public static func load(path: String, environment: [String: String]) throws(ConfigError) -> Topology {
        guard let text = readText(path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "is not readable UTF-8 text" : "does not exist"
            let diagnostic = ConfigDiagnostic(file: path, line: 0, keyPath: "<document>", message: "the file \(reason)")
            throw ConfigError(diagnostics: [diagnostic])
        }
        return try load(text: text, file: path, environment: environment, readFile: readText)
    }

    /// Validates topology text.
    ///
    /// - Parameters:
    ///   - text: The YAML.
    ///   - file: The file name used in diagnostics; relative `api_key_file` paths resolve against its directory.
    ///   - environment: Where `*_env` keys are looked up.
    ///   - readFile: Reads an `api_key_file` (already resolved); `nil` if it cannot be read.
    /// - Throws: `ConfigError` with every problem found, sorted by line.
    public static func load(
        text: String,
        file: String,
        environment: [String: String],
        readFile: (String) -> String?
    ) throws(ConfigError) -> Topology {
        let log = DiagnosticLog(file: file)
        let topology = YAMLDocument.compose(text, log: log).flatMap { root in
            validate(
                YAMLValue(root, at: .document(line: root.mark?.line ?? 1), log: log),
                environment: environment,
                readFile: readFile,
                directory: directory(of: file),
                purpose: .mesh
            )
        }
        guard let topology, log.count == 0 else { throw ConfigError(diagnostics: log.sorted) }
        return topology.topology
    }

    /// Validates a topology document, logging to the log of `root`: a topology file's root, or the
    /// `topology:` mapping of a scenario (whose key paths then start with `topology.`).
    ///
    /// - Returns: The topology with replicas expanded and the replica names of each replicated backend, or
    ///   `nil` if a problem was logged while validating it.
    static func validate(
        _ root: YAMLValue,
        environment: [String: String],
        readFile: (String) -> String?,
        directory: String?,
        purpose: TopologyValidator.Purpose
    ) -> (topology: Topology, replicaGroups: [String: [BackendID]])? {
        withoutActuallyEscaping(readFile) { readFile in
            guard let schema = TopologyFile(root) else { return nil }
            let validator = TopologyValidator(
                file: schema,
                log: root.log,
                environment: environment,
                readFile: readFile,
                directory: directory,
                purpose: purpose
            )
            return validator.validate().map { ($0, validator.replicaGroups()) }
        }
    }

    /// The directory part of `path`, or `nil` if it has none.
    static func directory(of path: String) -> String? {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func readText(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).flatMap { String(data: $0, encoding: .utf8) }
    }
}
