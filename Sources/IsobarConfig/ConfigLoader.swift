import Foundation
import IsobarModel

/// A configuration file of either kind, validated.
public enum CheckedFile: Sendable, Equatable {
    case topology(Topology)
    case scenario(Scenario)
}

/// Loads a file that may be a topology or a scenario, for `isobar check`.
///
/// The rule: a file whose top level is a mapping with a `workload` or a `topology` key is a scenario; every
/// other file is a topology. (A topology file has neither key, and a scenario needs both; either one is
/// enough, so that a scenario with one of them misspelt is still checked as a scenario.)
public enum ConfigLoader {
    /// Reads and validates the topology or scenario file at `path`.
    ///
    /// - Parameters:
    ///   - path: The file; diagnostics name it as given.
    ///   - environment: Where `*_env` keys are looked up.
    /// - Throws: `ConfigError` with every problem found.
    public static func check(path: String, environment: [String: String]) throws(ConfigError) -> CheckedFile {
        guard let text = TopologyLoader.readText(path) else { throw unreadable(path) }
        return try check(text: text, file: path, environment: environment)
    }

    /// Validates topology or scenario text; `file` names it and is where relative paths resolve from.
    ///
    /// - Throws: `ConfigError` with every problem found.
    public static func check(
        text: String,
        file: String,
        environment: [String: String]
    ) throws(ConfigError) -> CheckedFile {
        if isScenario(text) {
            return .scenario(try ScenarioLoader.load(text: text, file: file, environment: environment))
        }
        let topology = try TopologyLoader.load(
            text: text,
            file: file,
            environment: environment,
            readFile: TopologyLoader.readText
        )
        return .topology(topology)
    }

    /// Whether `text` is a scenario: its top level is a mapping with a `workload` or a `topology` key.
    public static func isScenario(_ text: String) -> Bool {
        let log = DiagnosticLog(file: "")
        guard case .mapping(let mapping) = YAMLDocument.compose(text, log: log) else { return false }
        return mapping.contains { ["workload", "topology"].contains($0.key.scalar?.string) }
    }

    // MARK: - Files

    /// The error for a file that cannot be read.
    static func unreadable(_ path: String) -> ConfigError {
        let reason = FileManager.default.fileExists(atPath: path) ? "is not readable UTF-8 text" : "does not exist"
        return ConfigError(diagnostics: [
            ConfigDiagnostic(file: path, line: 0, keyPath: "<document>", message: "the file \(reason)")
        ])
    }

    /// The last component of `path` without its extension.
    static func baseName(_ path: String) -> String {
        let last = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = last.lastIndex(of: "."), dot != last.startIndex else { return last }
        return String(last[..<dot])
    }
}
