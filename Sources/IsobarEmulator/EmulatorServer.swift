import IsobarGateway
import IsobarModel
import Logging
import NIOCore
import ServiceLifecycle

/// An emulated engine as a `Service`: an OpenAI- and Anthropic-compatible server whose timing follows an
/// `EngineProfile` through the engine model and whose `/metrics` use vLLM's names.
public final class EmulatorServer: Service, Sendable {
    public let configuration: EmulatorConfiguration
    public let listen: HostPort
    private let group: any EventLoopGroup
    private let logger: Logger
    private let engine: EmulatedEngine
    private let listening: EventLoopPromise<SocketAddress>

    public init(configuration: EmulatorConfiguration, listen: HostPort, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.listen = listen
        self.group = group
        self.logger = logger
        self.engine = EmulatedEngine(configuration: configuration, eventLoop: group.next())
        self.listening = group.next().makePromise()
    }

    /// The bound address, once listening (useful with port 0).
    public var localAddress: SocketAddress {
        get async throws { try await listening.futureResult.get() }
    }

    public func run() async throws {
        let server = HTTPServer(group: group, responder: EmulatorResponder(engine: engine), maxBodyBytes: 64 << 20)
        try await server.serve(
            at: listen,
            what: "emulated engine \(configuration.name)",
            listening: listening,
            logger: logger,
            metadata: ["isobar.profile": "\(configuration.profile.name)"]
        )
    }
}
