import ArgumentParser
import Foundation
import IsobarConfig
import IsobarEmulator
import IsobarGateway
import IsobarModel
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a whole topology on this machine: every node, plus an emulated engine per emulated backend."
    )

    @Argument(help: "The topology file.")
    var file: String

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let topology = try loadTopology(file)
        // The banner says what is up; start-up log lines would only repeat it.
        let logger = try logging.makeLogger(label: "isobar", defaultLevel: .notice)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let local = LocalMesh(topology: topology, group: group, logger: logger, source: file)
        try await runUntilSignalled(local, group: group, logger: logger) {}
    }
}

/// Every node of a topology and its emulated engines, in one process. Emulated engines start first so
/// that backends without a fixed port get one before the nodes read the topology.
struct LocalMesh: Service {
    let topology: Topology
    let group: any EventLoopGroup
    let logger: Logger
    let source: String

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { tasks in
            var topology = self.topology
            for (index, backend) in topology.backends.enumerated() where backend.engine == .emulated {
                let listen = HostPort(host: backend.url.host, port: backend.url.port)
                let configuration = EmulatorConfiguration(backend: backend)
                // The router's rate hints come from the profile that times the engine, unless set.
                topology.backends[index].capacity.fillHints(from: configuration.profile)
                let emulator = EmulatorServer(
                    configuration: configuration,
                    listen: listen,
                    group: group,
                    logger: logger
                )
                tasks.addTask { try await emulator.run() }
                let port = try await emulator.localAddress.port ?? listen.port
                topology.backends[index].url.port = port
                topology.backends[index].metricsURL = UpstreamURL(
                    tls: false,
                    host: backend.url.host,
                    port: port,
                    basePath: backend.url.basePath + "/metrics"
                )
                say(
                    "isobar: emulated engine \(backend.name) (\(backend.emulate?.profile ?? "instant")) on \(topology.backends[index].url)"
                )
            }
            var first: String?
            for node in topology.nodes {
                // One member of each pool, on loopback.
                let gateway = try GatewayNode(
                    topology: topology,
                    node: node.pool ? node.member("1").name : node.name,
                    group: group,
                    logger: logger,
                    environment: ProcessInfo.processInfo.environment,
                    bind: node.pool ? "127.0.0.1" : nil
                )
                tasks.addTask { try await gateway.run() }
                let port = try await gateway.localAddress.port ?? node.listen.port
                let url = "http://\(HostPort(host: gateway.node.listen.host, port: port))"
                first = first ?? url
                say("isobar: node \(gateway.node.name) (\(node.region)) listening on \(url)/v1")
            }
            if let first { banner(base: first, topology: topology) }
        }
    }

    private func banner(base: String, topology: Topology) {
        let model = topology.models.first?.name.rawValue ?? "chat"
        say(
            """

            Isobar is up: \(topology.nodes.count) nodes, \(topology.backends.count) backends, models: \
            \(topology.models.map(\.name.rawValue).joined(separator: ", ")).

            Try it:
              curl -s \(base)/v1/chat/completions -H 'content-type: application/json' \\
                -d '{"model": "\(model)", "messages": [{"role": "user", "content": "Hello"}]}'

            Or from Python (pip install openai):
              from openai import OpenAI
              client = OpenAI(base_url="\(base)/v1", api_key="unused")
              for chunk in client.chat.completions.create(model="\(model)", stream=True,
                      messages=[{"role": "user", "content": "Hello"}]):
                  if chunk.choices:
                      print(chunk.choices[0].delta.content or "", end="", flush=True)

            Metrics: \(base)/metrics   Health: \(base)/health   Stop: Ctrl-C
            """
        )
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run one gateway node of a topology.")

    @Option(help: "The topology file.")
    var topology: String

    @Option(help: "The node to run (a name under nodes:), or the pool it is a member of.")
    var node: String

    @Option(help: "A pool member's name within its pool (default: the host name, a Kubernetes pod's name).")
    var instance: String?

    @Option(help: "A pool member binds its ports on this address instead of the pool's host.")
    var bind: String?

    @Option(help: "The address a pool member tells the mesh it is at (default: the bound address, or the host name's).")
    var advertise: String?

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let topology = try loadTopology(self.topology)
        let name = try nodeName(in: topology)
        let logger = try logging.makeLogger(label: "isobar")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let gateway: GatewayNode
        do {
            gateway = try GatewayNode(
                topology: topology,
                node: name,
                group: group,
                logger: logger,
                environment: ProcessInfo.processInfo.environment,
                bind: bind,
                advertise: advertise,
                // SIGHUP reads the file again (with the environment the process started with).
                source: { [path = self.topology] in
                    try TopologyLoader.load(path: path, environment: ProcessInfo.processInfo.environment)
                }
            )
        } catch let error as GatewayError {
            throw ValidationError(error.message)
        }
        try await runUntilSignalled(gateway, group: group, logger: logger) {
            let port = try await gateway.localAddress.port ?? 0
            say("isobar: node \(name) listening on http://\(HostPort(host: gateway.node.listen.host, port: port))/v1")
        }
    }

    /// The node `--node` names: a named node, or a member of the pool it names (`--instance`, else the
    /// host name).
    private func nodeName(in topology: Topology) throws -> NodeID {
        let entries = topology.nodes.map { $0.pool ? "\($0.name) (pool)" : $0.name.rawValue }
        guard let entry = topology.nodes.first(where: { $0.name.rawValue == node }) else {
            throw ValidationError(
                "node '\(node)' is not in \(self.topology); nodes: \(entries.joined(separator: ", "))"
            )
        }
        guard entry.pool else {
            if instance != nil { throw ValidationError("--instance is for a pool's nodes: '\(node)' is a named node") }
            return entry.name
        }
        let instance = self.instance ?? ProcessInfo.processInfo.hostName
        guard Node.isValidInstance(instance) else {
            throw ValidationError(
                "--instance: '\(instance)' cannot name a node: use at most 63 letters, digits, '.', '_' and '-'"
            )
        }
        return entry.member(instance).name
    }
}

struct Emulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one emulated engine (OpenAI and Anthropic APIs, vLLM metrics)."
    )

    @Option(help: "Engine profile: \(EngineProfile.presets.map(\.name).joined(separator: ", ")).")
    var profile: String = "llama-3.1-8b-h100"

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).")
    var listen: String = "127.0.0.1:8000"

    @Option(help: "A model name to serve (repeatable); none serves any name.")
    var model: [String] = []

    @Option(help: "Make every step take 1/N seconds: N tokens per second per sequence (replaces the profile's timing).")
    var tokensPerSecond: Double?

    @Option(help: "Sequences batched at once, vLLM's max_num_seqs (overrides the profile).")
    var maxConcurrency: Int?

    @Option(help: "Output tokens when a request sets no max_tokens (default 64; 16 for instant).")
    var outputTokens: Int?

    @Option(help: "Answer every request with this HTTP status (400-599), for drills.")
    var faultStatus: Int?

    @Option(help: "Environment variable holding the API key clients must send.")
    var apiKeyEnv: String?

    @Option(help: "Name shown in replies and logs.")
    var name: String = "emulator"

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard EngineProfile.named(profile) != nil else {
            throw ValidationError(
                "unknown profile '\(profile)'; profiles: \(EngineProfile.presets.map(\.name).joined(separator: ", "))"
            )
        }
        if case .failure(let error) = HostPort.parse(listen) { throw ValidationError("--listen: \(error)") }
        if let faultStatus, !(400...599).contains(faultStatus) {
            throw ValidationError("--fault-status must be from 400 to 599")
        }
        if let tokensPerSecond, !(tokensPerSecond > 0) { throw ValidationError("--tokens-per-second must be > 0") }
        if let maxConcurrency, maxConcurrency < 1 { throw ValidationError("--max-concurrency must be >= 1") }
    }

    func run() async throws {
        var profile = EngineProfile.named(self.profile)!
        if let tokensPerSecond { profile.stepTime = .fixed(seconds: 1 / tokensPerSecond) }
        if let maxConcurrency { profile.maxNumSeqs = maxConcurrency }
        var apiKey: String?
        if let apiKeyEnv {
            guard let value = ProcessInfo.processInfo.environment[apiKeyEnv], !value.isEmpty else {
                throw ValidationError("environment variable \(apiKeyEnv) is not set")
            }
            apiKey = value
        }
        let configuration = EmulatorConfiguration(
            profile: profile,
            defaultOutputTokens: outputTokens ?? (profile == .instant ? 16 : 64),
            models: model,
            apiKey: apiKey,
            fault: faultStatus.map { EmulatedFault(status: $0) },
            name: name
        )
        let logger = try logging.makeLogger(label: "isobar")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let address = try HostPort.parse(listen).get()
        let emulator = EmulatorServer(configuration: configuration, listen: address, group: group, logger: logger)
        try await runUntilSignalled(emulator, group: group, logger: logger) { [name, profile] in
            let port = try await emulator.localAddress.port ?? address.port
            say(
                "isobar: emulated engine \(name) (\(profile.name)) listening on http://\(HostPort(host: address.host, port: port))"
            )
        }
    }
}
