import ArgumentParser
import Foundation
import IsobarConfig
import IsobarModel
import Logging
import NIOPosix
import ServiceLifecycle

@main
struct Isobar: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "isobar",
        abstract: "A multi-region LLM gateway mesh.",
        subcommands: [
            Up.self, Serve.self, Emulate.self, Simulate.self, Plan.self, Calibrate.self, Check.self, Status.self,
        ]
    )
}

/// Options every long-running command shares.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (or ISOBAR_LOG_LEVEL).")
    var logLevel: String?

    func makeLogger(label: String, defaultLevel: Logger.Level = .info) throws -> Logger {
        let text = logLevel ?? ProcessInfo.processInfo.environment["ISOBAR_LOG_LEVEL"] ?? defaultLevel.rawValue
        guard let level = Logger.Level(rawValue: text) else {
            throw ValidationError("unknown log level '\(text)'")
        }
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = level
        return logger
    }
}

/// Loads a topology file, or prints every problem in it and exits 1.
func loadTopology(_ path: String) throws -> Topology {
    do {
        return try TopologyLoader.load(path: path, environment: ProcessInfo.processInfo.environment)
    } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw ExitCode(1)
    }
}

/// Runs `service` until SIGTERM or SIGINT, calls `announce` once it is up, then stops the event loops.
func runUntilSignalled(
    _ service: some Service,
    group: MultiThreadedEventLoopGroup,
    logger: Logger,
    announce: @escaping @Sendable () async throws -> Void
) async throws {
    let services = ServiceGroup(
        configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    )
    try await withThrowingTaskGroup { tasks in
        tasks.addTask { try await services.run() }
        try await announce()
        try await tasks.waitForAll()
    }
    try await group.shutdownGracefully()
}

/// Prints a line to stdout at once (tests and scripts read it while the process runs).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate topology and scenario files; prints file:line: key.path: message for every problem."
    )

    @Argument(help: "Topology or scenario files (a file with a workload or topology key is a scenario).")
    var files: [String]

    func run() async throws {
        var failed = false
        for file in files {
            do {
                switch try ConfigLoader.check(path: file, environment: ProcessInfo.processInfo.environment) {
                case .topology(let topology):
                    let pools = topology.nodes.count(where: \.pool)
                    say(
                        "\(file): ok (\(topology.regions.count) regions, \(topology.nodes.count - pools) nodes, "
                            + (pools > 0 ? "\(pools) pools, " : "")
                            + "\(topology.backends.count) backends, \(topology.models.count) models)"
                    )
                case .scenario(let scenario):
                    say(
                        "\(file): ok (scenario \(scenario.name): \(scenario.topology.backends.count) replicas, "
                            + "\(scenario.workloads.count) workloads, policies \(scenario.policies.map(\.rawValue).joined(separator: ", ")))"
                    )
                }
            } catch {
                failed = true
                FileHandle.standardError.write(Data((error.description + "\n").utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }
}
