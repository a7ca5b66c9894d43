import IsobarModel
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// One gateway node as a `Service`: serves the node's HTTP surface until graceful shutdown, and reloads
/// its topology on SIGHUP when it was given where to read it.
public final class GatewayNode: Service, Sendable {
    public let node: Node
    let current: CurrentCore
    private let group: any EventLoopGroup
    private let logger: Logger
    private let listening: EventLoopPromise<SocketAddress>
    /// How long graceful shutdown waits for requests in flight after the node stops accepting.
    public let drainTimeout: Duration
    /// How the node scrapes its self-hosted backends' metrics, when not every
    /// `routing.balancing.scrape_interval_ms`.
    private let scrapingOverride: ScraperConfiguration?
    /// The node's side of the mesh, when it has a gossip address.
    let gossip: GossipShell?
    /// Reads the topology again (SIGHUP); nil: the node does not reload.
    private let source: (@Sendable () throws -> Topology)?
    /// Told of each reload, so that the scraper and the provider probe start over on the new backends.
    private let reloads: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)

    /// The topology the node serves now.
    public var topology: Topology { current.core.topology }
    /// What serves new requests now.
    var core: GatewayCore { current.core }
    public var scraping: ScraperConfiguration {
        scrapingOverride
            ?? ScraperConfiguration(interval: .seconds(topology.routing.balancing.scrapeIntervalSeconds))
    }

    /// A node of `topology`: a named node, or a member of a pool (`POOL/INSTANCE`). A pool member binds
    /// its ports on `bind` instead of the pool's host, and tells the mesh it is at `advertise` (by default
    /// the bound host, or when that is every interface, the address the machine's host name resolves to).
    /// Throws if `name` is not a node of it, or the addresses do not work out.
    public init(
        topology: Topology,
        node name: NodeID,
        group: any EventLoopGroup,
        logger: Logger,
        drainTimeout: Duration = .seconds(10),
        scraping: ScraperConfiguration? = nil,
        environment: [String: String] = [:],
        bind: String? = nil,
        advertise: String? = nil,
        source: (@Sendable () throws -> Topology)? = nil
    ) throws {
        guard var node = topology.node(name) else {
            throw GatewayError(.internal, "node '\(name)' is not in the topology")
        }
        let advertised = try Self.place(&node, bind: bind, advertise: advertise)
        self.node = node
        self.group = group
        self.logger = logger
        let current = CurrentCore(try GatewayCore(topology: topology, node: node, group: group, logger: logger))
        self.current = current
        self.gossip = try node.gossip.map { _ in
            try GossipShell(current: current, advertised: advertised, environment: environment, loop: group.next())
        }
        self.listening = group.next().makePromise()
        self.drainTimeout = drainTimeout
        self.scrapingOverride = scraping
        self.source = source
        self.reloads = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Binds a pool member's ports on `bind`, and returns the gossip address it announces (nil: its own).
    static func place(_ node: inout Node, bind: String?, advertise: String?) throws -> HostPort? {
        guard node.pool, var gossip = node.gossip else {
            if bind != nil || advertise != nil {
                throw GatewayError(
                    .invalidRequest,
                    "--bind and --advertise are for a pool's nodes: node '\(node.name)' binds and is reached at its topology addresses"
                )
            }
            return nil
        }
        if let bind {
            node.listen.host = try Self.host(bind, "--bind")
            gossip.host = node.listen.host
            node.gossip = gossip
        }
        if let advertise {
            let host = try Self.host(advertise, "--advertise")
            guard !HostPort(host: host, port: 0).isWildcard else {
                throw GatewayError(.invalidRequest, "--advertise: \(host) is not an address the other nodes can reach")
            }
            return HostPort(host: host, port: gossip.port)
        }
        guard gossip.isWildcard else { return nil }
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        let hostName = GossipShell.string(name)
        guard let host = GossipShell.addresses(of: hostName).first(where: { !HostPort(host: $0, port: 0).isLoopback })
        else {
            throw GatewayError(
                .invalidRequest,
                "cannot tell which address the other nodes reach this one at (host name '\(hostName)' resolves to no address beyond loopback): pass --advertise"
            )
        }
        return HostPort(host: host, port: gossip.port)
    }

    /// `text` as a host of an address, or a thrown error naming `option`.
    private static func host(_ text: String, _ option: String) throws -> String {
        let bracketed = text.contains(":") && !text.hasPrefix("[") ? "[\(text)]" : text
        switch HostPort.parse("\(bracketed):1") {
        case .success(let address): return address.host
        case .failure(let error): throw GatewayError(.invalidRequest, "\(option): \(error)")
        }
    }

    /// Serves `topology` from now on: new requests are routed on it, requests in flight finish on the
    /// previous one (a removed backend drains), and a backend that did not change keeps what the node
    /// learned of it. Throws, keeping the running topology, when it changes what only a restart can
    /// (`GatewayCore.reloadProblem`) or no longer names this node.
    public func reload(_ topology: Topology) throws {
        let old = current.core
        if let problem = old.reloadProblem(topology) { throw GatewayError(.invalidRequest, problem) }
        let core = try GatewayCore(topology: topology, node: node, group: group, logger: logger, previous: old)
        current.replace(with: core)
        gossip?.reloaded(topology)
        reloads.continuation.yield()
        let before = Set(old.topology.backends.map(\.name))
        let after = Set(topology.backends.map(\.name))
        core.logger.notice(
            "topology reloaded",
            metadata: [
                "isobar.backends.added": "\(after.subtracting(before).map(\.rawValue).sorted())",
                "isobar.backends.removed": "\(before.subtracting(after).map(\.rawValue).sorted())",
                "isobar.models": "\(topology.models.count)",
            ]
        )
    }

    /// Reads the topology again and reloads it; a file that cannot be read, is invalid or changes what
    /// only a restart can is logged and the running topology kept.
    func reloadFromSource() {
        guard let source else { return }
        do {
            try reload(try source())
        } catch {
            logger.error(
                "topology reload rejected: still serving the previous topology",
                metadata: ["isobar.node": "\(node.name)", "isobar.error": "\(error)"]
            )
        }
    }

    /// The address the node listens on, once bound (useful with port 0).
    public var localAddress: SocketAddress {
        get async throws { try await listening.futureResult.get() }
    }

    public func run() async throws {
        let server = HTTPServer(
            group: group,
            responder: GatewayResponder(current: current, mesh: gossip),
            maxBodyBytes: topology.limits.maxRequestBodyBytes
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
            // The scraper and the provider probe run while the node serves; they stop when it stops accepting.
            tasks.addTask { await self.scrapeAndProbe() }
            if source != nil {
                tasks.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) { self.reloadFromSource() }
                }
            }
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
        reloads.continuation.finish()
        var unfinished = 0
        let deadline = ContinuousClock.now + drainTimeout
        for core in current.all { unfinished += await core.drain(timeout: deadline - .now) }
        if unfinished > 0 {
            core.logger.warning("drain timeout: requests cut", metadata: ["isobar.requests": "\(unfinished)"])
        }
        core.pools.closeAll()
        core.governor?.store.shutdown()
        core.redis?.closeAll()
    }

    /// Scrapes the self-hosted backends and probes the idle providers of the topology served now, starting
    /// over on the new backends after each reload, until cancelled.
    private func scrapeAndProbe() async {
        var reloaded = reloads.stream.makeAsyncIterator()
        while !Task.isCancelled {
            let core = current.core
            let (scraping, loop) = (self.scraping, group.next())
            let running = Task {
                let scraper = MetricsScraper(core: core, loop: loop, configuration: scraping) { [core] in
                    core.scraped($0, $1)
                }
                let probe = ProviderProbe(
                    core: core,
                    loop: loop,
                    interval: .milliseconds(core.topology.routing.idleProbeSeconds * 1000)
                )
                async let scraped: Void = scraper.run()
                async let probed: Void = probe.run()
                _ = await (scraped, probed)
            }
            let next: Void? = await reloaded.next()
            running.cancel()
            await running.value
            if next == nil { return }
        }
    }
}

/// The core that serves new requests. A reload puts a new one in its place; the ones it replaced are kept
/// while requests they serve are open, so that shutdown waits for those too.
final class CurrentCore: Sendable {
    private let state: Mutex<(current: GatewayCore, retired: [GatewayCore])>

    init(_ core: GatewayCore) { state = Mutex((core, [])) }

    var core: GatewayCore { state.withLock { $0.current } }

    /// The core serving new requests, then the replaced ones still serving some.
    var all: [GatewayCore] { state.withLock { [$0.current] + $0.retired } }

    func replace(with core: GatewayCore) {
        state.withLock { state in
            state.retired = (state.retired + [state.current]).filter { $0.openExchanges.load(ordering: .relaxed) > 0 }
            state.current = core
        }
    }
}
