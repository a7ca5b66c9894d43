import IsobarGateway
import IsobarModel
import Logging
import NIOCore
import ServiceLifecycle

/// An emulated engine as a `Service`: an OpenAI- and Anthropic-compatible server whose timing follows an
/// `EmulatorProfile` and whose `/metrics` use vLLM's names.
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
        self.engine = EmulatedEngine(configuration: configuration)
        self.listening = group.next().makePromise()
    }

    /// The bound address, once listening (useful with port 0).
    public var localAddress: SocketAddress {
        get async throws { try await listening.futureResult.get() }
    }

    public func run() async throws {
        let server = HTTPServer(group: group, responder: EmulatorResponder(engine: engine), maxBodyBytes: 64 << 20)
        let channel: any Channel
        do {
            channel = try await server.bind(host: listen.host, port: listen.port)
        } catch {
            let failure = GatewayError(
                .internal,
                "emulated engine \(configuration.name) cannot listen on \(listen): \(HTTPServer.describe(error))"
            )
            listening.fail(failure)
            throw failure
        }
        listening.succeed(channel.localAddress!)
        logger.info(
            "emulated engine listening",
            metadata: [
                "isobar.backend": "\(configuration.name)", "isobar.profile": "\(configuration.profile.name)",
                "isobar.address": "\(channel.localAddress!)",
            ]
        )
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}
