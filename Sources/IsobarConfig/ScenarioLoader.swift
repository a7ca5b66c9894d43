import Foundation
import IsobarModel

/// Loads scenario files (simulator/README.md, "Scenario files") into validated `Scenario` values.
///
/// A scenario names a fleet (a topology file, or the topology inline), the engine profile files it loads,
/// the load offered per client region, the network between regions, faults, the policies to compare and
/// the SLOs. Loading validates all of it, the files it names included: the topology with the rules of
/// `TopologyLoader` (every backend must be an emulated engine), each profile with those of
/// `EngineProfileFile`, and every trace and CDF file must exist. Empirical CDFs are read at load time.
public enum ScenarioLoader {
    /// Reads and validates the scenario file at `path`.
    ///
    /// - Parameters:
    ///   - path: The file; diagnostics name it as given, and the paths it names resolve against its
    ///     directory.
    ///   - environment: Where `*_env` keys of the topology are looked up; callers pass
    ///     `ProcessInfo.processInfo.environment`.
    /// - Throws: `ConfigError` with every problem found: the scenario's own sorted by line, then those of
    ///   the topology and profile files it names.
    public static func load(path: String, environment: [String: String]) throws(ConfigError) -> Scenario {
        guard let text = TopologyLoader.readText(path) else { throw ConfigLoader.unreadable(path) }
        return try load(text: text, file: path, environment: environment)
    }

    /// Validates scenario text.
    ///
    /// - Parameters:
    ///   - text: The YAML.
    ///   - file: The file name used in diagnostics; the default scenario name is its last component
    ///     without extension, and relative paths resolve against its directory.
    ///   - environment: Where `*_env` keys of the topology are looked up.
    ///   - readFile: Reads a topology, profile, CDF or API key file (already resolved); `nil` if it cannot
    ///     be read as text.
    ///   - fileExists: Whether a file exists (already resolved); trace files are only checked with it.
    /// - Throws: `ConfigError` with every problem found.
    public static func load(
        text: String,
        file: String,
        environment: [String: String],
        readFile: (String) -> String? = textOfFile,
        fileExists: (String) -> Bool = isFile
    ) throws(ConfigError) -> Scenario {
        let log = DiagnosticLog(file: file)
        let result = withoutActuallyEscaping(readFile) { readFile in
            withoutActuallyEscaping(fileExists) { fileExists -> (scenario: Scenario?, otherFiles: [ConfigDiagnostic]) in
                guard let root = YAMLDocument.compose(text, log: log),
                    let schema = ScenarioFile(YAMLValue(root, at: .document(line: root.mark?.line ?? 1), log: log))
                else { return (nil, []) }
                let validator = ScenarioValidator(
                    file: schema,
                    log: log,
                    environment: environment,
                    readFile: readFile,
                    fileExists: fileExists,
                    directory: TopologyLoader.directory(of: file),
                    defaultName: ConfigLoader.baseName(file)
                )
                return validator.validate()
            }
        }
        guard let scenario = result.scenario, log.count == 0, result.otherFiles.isEmpty else {
            throw ConfigError(diagnostics: log.sorted + result.otherFiles)
        }
        return scenario
    }

    /// The contents of the file at `path` as UTF-8 text, or `nil` if it cannot be read.
    public static func textOfFile(_ path: String) -> String? {
        TopologyLoader.readText(path)
    }

    /// Whether `path` is a regular file (not a directory).
    public static func isFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}
