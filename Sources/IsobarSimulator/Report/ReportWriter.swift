import Foundation

/// Turns a `ScenarioResult` into what people and tools read: the stdout table, summary.json (the public
/// contract of DESIGN.md §8), summary.md and SVG charts.
///
/// Every output is a pure function of the result, so identical runs give identical bytes; the wall
/// time is the one exception, and each output that shows it can leave it out (`includeWallTime`).
/// Only `write(_:to:includeWallTime:)` touches the file system.
public enum ReportWriter {
    /// One output file of a report: its name inside the report directory and its text.
    public struct File: Sendable, Equatable {
        public var name: String
        public var contents: String

        public init(name: String, contents: String) {
            self.name = name
            self.contents = contents
        }
    }

    /// Every file of the report for `result`, in a fixed order: summary.json (pretty-printed),
    /// summary.md, ttft-cdf.svg, then queue-<policy>.svg and throughput-<policy>.svg per policy.
    public static func files(_ result: ScenarioResult, includeWallTime: Bool = true) -> [File] {
        var files = [
            File(name: "summary.json", contents: prettyJSON(summaryJSON(result, includeWallTime: includeWallTime))),
            File(name: "summary.md", contents: markdown(result, includeWallTime: includeWallTime)),
            File(name: ChartNames.ttftCDF, contents: ttftCDFChart(result)),
        ]
        let names = ChartNames(result)
        for (index, policy) in result.policies.enumerated() {
            files.append(File(name: names.queue[index], contents: queueChart(policy, of: result)))
            files.append(File(name: names.throughput[index], contents: throughputChart(policy, of: result)))
        }
        return files
    }

    /// Writes `files(result)` into `directory`, creating it (and its parents) if needed, and returns
    /// the paths written. Existing files of the same names are replaced.
    ///
    /// - Throws: `SimulatorError` naming the directory or file that could not be written.
    @discardableResult
    public static func write(
        _ result: ScenarioResult,
        to directory: String,
        includeWallTime: Bool = true
    ) throws(SimulatorError) -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SimulatorError.unwritable(directory, "cannot create the report directory", cause: error)
        }
        var written: [String] = []
        let base = URL(fileURLWithPath: directory, isDirectory: true)
        for file in files(result, includeWallTime: includeWallTime) {
            let url = base.appendingPathComponent(file.name)
            do {
                try Data(file.contents.utf8).write(to: url, options: .atomic)
            } catch {
                throw SimulatorError.unwritable(url.path, "cannot write the report file", cause: error)
            }
            written.append(url.path)
        }
        return written
    }
}

/// File names of the charts, unique per policy (a policy compared twice gets a `-2` suffix).
struct ChartNames {
    static let ttftCDF = "ttft-cdf.svg"
    var queue: [String] = []
    var throughput: [String] = []

    init(_ result: ScenarioResult) {
        var seen: [String: Int] = [:]
        for policy in result.policies {
            let name = policy.policy.rawValue
            let n = (seen[name] ?? 0) + 1
            seen[name] = n
            let slug = n == 1 ? name : "\(name)-\(n)"
            queue.append("queue-\(slug).svg")
            throughput.append("throughput-\(slug).svg")
        }
    }
}
