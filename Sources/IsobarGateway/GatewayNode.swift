import IsobarModel
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// One gateway node as a `Service`: serves the node's HTTP surface until graceful shutdown.
public final class GatewayNode: Service, Sendable {
    public let topology: Topology
    public let node: Node
    let core: GatewayCore
    private let group: any EventLoopGroup
    private let listening: EventLoopPromise<SocketAddress>
    /// How long graceful shutdown waits for requests in flight after the node stops accepting.
    public let drainTimeout: Duration
    /// How the node scrapes its self-hosted backends' metrics (by default every
    /// `routing.balancing.scrape_interval_ms`).
    public let scraping: ScraperConfiguration
    /// The node's side of the mesh, when it has a gossip address.
    let gossip: GossipShell?

    /// A node of `topology`. Throws if `name` is not a node of it.
    public init(
        topology: Topology,
        node name: NodeID,
        group: any EventLoopGroup,
        logger: Logger,
        drainTimeout: Duration = .seconds(10),
        scraping: ScraperConfiguration? = nil,
        environment: [String: String] = [:]
    ) throws {
        guard let node = topology.node(name) else {
            throw GatewayError(.internal, "node '\(name)' is not in the topology")
        }
        self.topology = topology
        self.node = node
        self.group = group
        let core = try GatewayCore(topology: topology, node: node, group: group, logger: logger)
        self.core = core
        self.gossip = try node.gossip.map { _ in
            try GossipShell(core: core, environment: environment, loop: group.next())
        }
        self.listening = group.next().makePromise()
        self.drainTimeout = drainTimeout
        self.scraping =
            scraping ?? ScraperConfiguration(interval: .seconds(topology.routing.balancing.scrapeIntervalSeconds))
    }

    /// The address the node listens on, once bound (useful with port 0).
    public var localAddress: SocketAddress {
        get async throws { try await listening.futureResult.get() }
    }

    public func run() async throws {
        let server = HTTPServer(
            group: group,
            responder: GatewayResponder(core: core, mesh: gossip),
            maxBodyBytes: topology.limits.maxRequestBodyBytes
        )
        // The scraper and the provider probe run while the node serves; they stop when it stops accepting.
        let scraper = MetricsScraper(core: core, loop: group.next(), configuration: scraping) { [core] in
            core.scraped($0, $1)
        }
        let probe = ProviderProbe(
            core: core,
            loop: group.next(),
            interval: .milliseconds(topology.routing.idleProbeSeconds * 1000)
        )
        // A node that cannot gossip is not in the mesh: it refuses to start rather than serve alone.
        let gossipChannels: GossipShell.Channels?
        do {
            gossipChannels = try await gossip?.bind()
        } catch {
            listening.fail(error)
            throw error
        }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await scraper.run() }
            tasks.addTask { await probe.run() }
            if let gossip, let gossipChannels { tasks.addTask { await gossip.run(gossipChannels) } }
            try await server.serve(
                at: node.listen,
                what: "node \(node.name)",
                listening: listening,
                logger: core.logger,
                metadata: ["isobar.region": "\(node.region)"]
            )
            tasks.cancelAll()
        }
        // Stopped accepting: let the requests in flight finish (streams included) before the event loops
        // go away.
        let unfinished = await core.drain(timeout: drainTimeout)
        if unfinished > 0 {
            core.logger.warning("drain timeout: requests cut", metadata: ["isobar.requests": "\(unfinished)"])
        }
        core.pools.closeAll()
        core.governor?.store.shutdown()
        core.redis?.closeAll()
    }
}
