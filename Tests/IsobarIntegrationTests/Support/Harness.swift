import Foundation
import IsobarConfig
import IsobarEmulator
import IsobarGateway
import IsobarModel
import Logging
import NIOCore
import NIOPosix

/// Runs gateway nodes and upstreams in-process on real loopback sockets (port 0) for one test.
enum Harness {
    static var group: any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

    static var logger: Logger {
        var logger = Logger(label: "isobar-test") { label -> any LogHandler in
            if ProcessInfo.processInfo.environment["ISOBAR_TEST_LOG"] != nil {
                return StreamLogHandler.standardError(label: label)
            }
            return SwiftLogNoOpLogHandler()
        }
        logger.logLevel = .trace
        return logger
    }

    /// Loads a topology from YAML text (through the real loader).
    static func topology(_ yaml: String) throws -> Topology {
        try TopologyLoader.load(text: yaml, file: "test.yaml", environment: ["TEST_KEY": "sk-test"]) { _ in nil }
    }

    /// A topology with one node on port 0 and the given backends and models sections.
    static func yaml(backends: String, models: String, routing: String = "") -> String {
        """
        mesh: {name: test}
        regions: [{name: local}]
        nodes: [{name: n1, region: local, listen: "127.0.0.1:0"}]
        backends:
        \(backends)
        models:
        \(models)
        \(routing)
        """
    }

    /// Starts the topology's first node, runs `body` with its port, then stops the node.
    static func withGateway<T: Sendable>(
        _ topology: Topology,
        scraping: ScraperConfiguration = ScraperConfiguration(),
        _ body: @Sendable (_ port: Int) async throws -> T
    ) async throws -> T {
        let node = try GatewayNode(
            topology: topology,
            node: topology.nodes[0].name,
            group: group,
            logger: logger,
            scraping: scraping
        )
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { tasks in
            tasks.addTask { try await node.run() }
            let port = try await node.localAddress.port!
            do {
                let result = try await body(port)
                tasks.cancelAll()
                return result
            } catch {
                tasks.cancelAll()
                throw error
            }
        }
    }

    /// Starts fault upstreams, runs `body` with their ports, then closes them.
    static func withUpstreams<T: Sendable>(
        _ upstreams: [FaultUpstream],
        _ body: @Sendable (_ ports: [Int]) async throws -> T
    ) async throws -> T {
        var started: [(channel: any Channel, port: Int)] = []
        for upstream in upstreams { started.append(try await upstream.start(group: group)) }
        defer { for s in started { s.channel.close(promise: nil) } }
        return try await body(started.map(\.port))
    }

    /// Starts an emulated engine, runs `body` with its port, then stops it.
    static func withEmulator<T: Sendable>(
        _ configuration: EmulatorConfiguration,
        _ body: @Sendable (_ port: Int) async throws -> T
    ) async throws -> T {
        let emulator = EmulatorServer(
            configuration: configuration,
            listen: HostPort(host: "127.0.0.1", port: 0),
            group: group,
            logger: logger
        )
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { tasks in
            tasks.addTask { try await emulator.run() }
            let port = try await emulator.localAddress.port!
            do {
                let result = try await body(port)
                tasks.cancelAll()
                return result
            } catch {
                tasks.cancelAll()
                throw error
            }
        }
    }

    /// A port nothing listens on.
    static func closedPort() async throws -> Int { refusingPort }

    /// A loopback port that refuses connections for the whole test run: a socket is bound to it and never
    /// listens, so a connect gets a reset and no other test's listener can be given the port (a port bound
    /// and closed again could be, and a "dead" backend would then answer).
    private static let refusingPort: Int = {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0, "socket() failed")
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        precondition(bound, "could not bind a loopback port")
        return Int(UInt16(bigEndian: address.sin_port))
    }()

    /// Polls `condition` every 20 ms until it holds or `timeout` passes.
    static func eventually(
        timeout: Duration = .seconds(2),
        _ condition: @Sendable () async throws -> Bool
    ) async rethrows
        -> Bool
    {
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while clock.now < end {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }
}

/// A chat request body.
func chatBody(model: String, stream: Bool = false, includeUsage: Bool? = nil, maxTokens: Int? = nil) -> String {
    var fields = [#""model": "\#(model)""#, #""messages": [{"role": "user", "content": "Say hi"}]"#]
    if stream { fields.append(#""stream": true"#) }
    if let includeUsage { fields.append(#""stream_options": {"include_usage": \#(includeUsage)}"#) }
    if let maxTokens { fields.append(#""max_tokens": \#(maxTokens)"#) }
    return "{" + fields.joined(separator: ", ") + "}"
}
