import IsobarModel
import IsobarRouting
import IsobarWire
import Logging
import NIOCore
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What every request of one node shares: the topology, the router behind a lock, the upstream pools
/// of each event loop, metrics and the logger.
final class GatewayCore: Sendable {
    let topology: Topology
    let node: Node
    let backends: [BackendID: Backend]
    let metrics: GatewayMetrics
    let logger: Logger
    let pools: EventLoopPools
    /// The `GET /v1/models` body, built once.
    let modelsBody: [UInt8]
    /// Each model's whole budget per request (its `timeouts.total_ms`, else routing's).
    private let budgets: [ModelName: Duration]
    /// Last good answers, for `catch_all.mode: cache`.
    let answers: AnswerCache?
    /// The response caches of the models with `cache.enabled`, in one memory budget.
    let responses: AnswerCache?
    /// Connections to the `redis:` store, for shared limits and shared response caches.
    let redis: RedisClient?
    /// The response caches kept in the `redis:` store (`cache.store: redis`).
    let sharedAnswers: SharedAnswers?
    /// Virtual keys, limits and budgets, when the topology has `keys:`.
    let governor: Governor?
    /// Other nodes of the mesh the gossip holds up (alive or suspect).
    let livePeers: LivePeers
    private let routing: Mutex<RoutingState>
    private let requestCounter = Atomic<UInt64>(0)
    /// Exchanges whose requests the router may hold, by routing id.
    private let held = Mutex<[RequestID: NIOLoopBound<Exchange>]>([:])
    /// Client requests whose response has not ended yet.
    let openExchanges = Atomic<Int>(0)
    private let requestPrefix: String

    struct RoutingState: ~Copyable {
        var router: Router
        var rng: Xoshiro256
    }

    /// The core of `node` serving `topology`. With `previous` (the core of the topology before a reload,
    /// which `reloadProblem` accepted), it shares the previous core's metrics, connection pools, caches,
    /// Redis connections, limit store and view of the mesh, and its router takes over what the previous
    /// one learned of the backends that did not change (`Router.adopt`).
    init(
        topology: Topology,
        node: Node,
        group: any EventLoopGroup,
        logger: Logger,
        previous: GatewayCore? = nil
    )
        throws
    {
        self.topology = topology
        self.node = node
        self.backends = Dictionary(topology.backends.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.metrics = previous?.metrics ?? GatewayMetrics()
        var logger = logger
        logger[metadataKey: "isobar.node"] = "\(node.name)"
        self.logger = logger
        if let previous {
            self.pools = previous.pools
        } else {
            self.pools = EventLoopPools(
                group: group,
                tlsContext: try NIOSSLContext(configuration: .makeClientConfiguration())
            )
        }
        self.livePeers = previous?.livePeers ?? LivePeers()
        var seed = SystemRandomNumberGenerator()
        var router = Router(
            topology: topology,
            node: node.name,
            configuration: RoutingConfiguration(topology: topology, explainsDecisions: logger.logLevel <= .trace)
        )
        // Outside a mesh no gossip says who is up: every node of the topology is taken to be, so a request
        // for a backend only its region reaches can still be forwarded there (a failed hop fails over).
        if node.gossip == nil {
            for peer in topology.nodes where peer.name != node.name { router.peerSuspected(peer.name, false) }
        }
        previous?.withRouter { old, _ in router.adopt(old) }
        self.routing = Mutex(RoutingState(router: router, rng: Xoshiro256(seed: seed.next())))
        self.requestPrefix = String(seed.next() & 0xFFFF_FFFF, radix: 16)
        self.modelsBody = Self.modelsBody(topology.models.map(\.name))
        self.budgets = Dictionary(
            topology.models.map { ($0.name, Duration.milliseconds(topology.routing.timeouts.budgetMs(for: $0))) },
            uniquingKeysWith: { a, _ in a }
        )
        self.answers =
            topology.catchAll.mode == .cache
            ? Self.cache(previous?.answers, maxBytes: topology.catchAll.cacheMaxBytes) : nil
        self.responses =
            topology.models.contains { $0.cache != nil }
            ? Self.cache(previous?.responses, maxBytes: topology.limits.responseCacheMaxBytes) : nil
        let redis = previous?.redis ?? topology.redis.map { RedisClient(settings: $0, meshName: topology.mesh.name) }
        self.redis = redis
        self.sharedAnswers =
            topology.models.contains { $0.cache?.store == .redis } ? redis.map(SharedAnswers.init) : nil
        let (livePeers, metrics) = (self.livePeers, self.metrics)
        self.governor = topology.keys.map { keys in
            Governor(
                settings: keys,
                meshName: topology.mesh.name,
                store: previous?.governor?.store
                    ?? Self.limitStore(topology, node, redis, group, livePeers, metrics, logger),
                now: WallClock.seconds(),
                previous: previous?.governor
            )
        }
    }

    /// The previous core's cache when it has the size asked for (a reload keeps its answers), else a new one.
    private static func cache(_ previous: AnswerCache?, maxBytes: Int) -> AnswerCache {
        if let previous, previous.maxBytes == maxBytes { return previous }
        return AnswerCache(maxBytes: maxBytes)
    }

    /// The node `id` as this node reaches it: a pool member at the address it gossips while it is up (nil
    /// once it is not); a named node as the topology has it.
    func peer(_ id: NodeID) -> Node? {
        guard var peer = topology.node(id) else { return nil }
        if peer.pool {
            guard let address = livePeers.address(of: id) else { return nil }
            peer.listen.host = address.host
            peer.gossip = address
        }
        return peer
    }

    /// Why `new` cannot replace this core's topology while the node runs (what only a restart changes:
    /// the mesh, its regions and nodes, the Redis store, the request size limit), or nil.
    func reloadProblem(_ new: Topology) -> String? {
        let fixed: [(String, Bool)] = [
            ("mesh", new.mesh == topology.mesh), ("regions", new.regions == topology.regions),
            ("nodes", new.nodes == topology.nodes), ("redis", new.redis == topology.redis),
            ("limits.max_request_body_bytes", new.limits.maxRequestBodyBytes == topology.limits.maxRequestBodyBytes),
        ]
        let changed = fixed.filter { !$0.1 }.map(\.0)
        return changed.isEmpty ? nil : "\(changed.joined(separator: ", ")) changed: only a restart applies that"
    }

    /// The store `redis:` names, else the node's own memory.
    private static func limitStore(
        _ topology: Topology,
        _ node: Node,
        _ client: RedisClient?,
        _ group: any EventLoopGroup,
        _ livePeers: LivePeers,
        _ metrics: GatewayMetrics,
        _ logger: Logger
    ) -> any LimitStore {
        guard let client, let redis = topology.redis else { return MemoryLimitStore() }
        metrics.limitStoreUp(true)
        let nodes = topology.nodes.count
        let leased = metrics.limitLeasedDecisions()
        return RedisLimitStore(
            redis: client,
            node: node.name.rawValue,
            probeLoop: group.next(),
            // Outside a mesh every node of the topology is taken to be up (as for forwarding).
            liveNodes: { node.gossip == nil ? nodes : livePeers.count + 1 },
            observer: RedisLimitStore.Observer(
                changed: { up, reason in
                    metrics.limitStoreUp(up)
                    let metadata: Logger.Metadata = [
                        "isobar.redis": "\(redis.host):\(redis.port)", "isobar.reason": "\(reason)",
                        "isobar.on_failure": "\(redis.onFailure.rawValue)",
                    ]
                    if up {
                        logger.notice("limit store back: limits are shared again", metadata: metadata)
                    } else {
                        logger.error("limit store unreachable: counting limits on this node", metadata: metadata)
                    }
                },
                decidedLocally: { metrics.limitDecidedLocally(onFailure: redis.onFailure.rawValue) },
                leased: { leased.increment() },
                scriptFailed: { message in
                    logger.error("limit store script failed", metadata: ["isobar.reason": "\(message)"])
                }
            )
        )
    }

    /// The `GET /v1/models` body listing `models`.
    private static func modelsBody(_ models: [ModelName]) -> [UInt8] {
        let created = Int(time(nil))
        let data: [JSON] = models.map { name in
            ["id": .string(name.rawValue), "object": "model", "created": .int(created), "owned_by": "isobar"]
        }
        return JSON.object(["object": "list", "data": .array(data)]).bytes
    }

    /// The `GET /v1/models` body for a key: the models it may use.
    func modelsBody(allowedBy principal: Principal) -> [UInt8] {
        Self.modelsBody(topology.models.map(\.name).filter(principal.allows))
    }

    /// The `model` label of a request's metrics: the model's name if the topology has it, else
    /// `unknown`, so clients cannot grow the metrics without bound by inventing names.
    func metricLabel(for model: ModelName) -> String {
        budgets[model] != nil ? model.rawValue : "unknown"
    }

    /// The whole budget of a request for `model`.
    func budget(for model: ModelName) -> Duration {
        budgets[model] ?? .milliseconds(topology.routing.timeouts.totalMs)
    }

    /// Runs `body` with the router and the routing generator, under the routing lock. Whatever `body`
    /// did may have freed an endpoint: requests the router held are released (or refused, when held too
    /// long) and handed back to their exchanges, each on its own event loop.
    func withRouter<T>(_ body: (inout Router, inout Xoshiro256) -> T) -> T {
        let (result, released) = routing.withLock { state in
            let result = body(&state.router, &state.rng)
            guard state.router.heldCount > 0 else { return (result, [(RequestID, RouteAction)]()) }
            return (result, state.router.releaseHeld(now: MonotonicClock.now(), rng: &state.rng))
        }
        for (id, action) in released {
            guard let exchange = held.withLock({ $0.removeValue(forKey: id) }) else { continue }
            exchange.eventLoop.execute { exchange.value.resume(action) }
        }
        return result
    }

    /// Whether the router may hold requests (admission control with an endpoint queue cap is on).
    var mayHold: Bool { topology.routing.admission.maxQueuePerEndpoint != nil }

    /// Registers an exchange that may be held, before its request reaches the router (so a release that
    /// races the registration finds it).
    func registerHeld(_ id: RequestID, _ exchange: NIOLoopBound<Exchange>) {
        held.withLock { $0[id] = exchange }
    }

    func unregisterHeld(_ id: RequestID) {
        _ = held.withLock { $0.removeValue(forKey: id) }
    }

    /// A scrape round of `backend`'s metrics ended (the metrics scraper's sink): the router reads the
    /// sample and learns whether the backend could be reached.
    func scraped(_ backend: BackendID, _ report: ScrapeReport) {
        withRouter { router, _ in
            let now = MonotonicClock.now()
            if let sample = report.sample { router.scraped(backend, sample, now: now) }
            router.probed(backend, reachable: report.reachable, now: now)
        }
    }

    /// Whether this node scrapes `backend`'s metrics (`Topology.scrapes`).
    func scrapes(_ backend: Backend) -> Bool { topology.scrapes(backend, from: node) { $0.gossip != nil } }

    /// A health probe of `backend` reached it or not.
    func probed(_ backend: BackendID, reachable: Bool) {
        withRouter { router, _ in router.probed(backend, reachable: reachable, now: MonotonicClock.now()) }
    }

    /// A new request id, unique within the mesh with overwhelming probability.
    func mintRequestID() -> String {
        let n = requestCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return "req-\(requestPrefix)-\(String(n, radix: 16))"
    }

    /// Waits until every open exchange has ended or `timeout` has passed (or the task is cancelled).
    /// Returns the number still open.
    func drain(timeout: Duration) async -> Int {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while openExchanges.load(ordering: .relaxed) > 0, clock.now < deadline {
            do { try await Task.sleep(for: .milliseconds(20)) } catch { break }
        }
        return openExchanges.load(ordering: .relaxed)
    }

    /// True if some model has a deployment on a backend the node last reached.
    var isReady: Bool {
        withRouter { router, _ in
            let now = MonotonicClock.now()
            return topology.models.contains { group in
                group.deployments.contains { router.isUsable($0.backend, now: now) }
            }
        }
    }
}

/// The other nodes the gossip holds up, kept as members change.
final class LivePeers: Sendable {
    /// The gossip address of every peer up, as it announces it.
    private let peers = Mutex<[NodeID: HostPort]>([:])

    var count: Int { peers.withLock { $0.count } }

    func set(_ node: NodeID, up: Bool, address: HostPort) {
        peers.withLock { $0[node] = up ? address : nil }
    }

    /// Where the peer `node` gossips, while it is up.
    func address(of node: NodeID) -> HostPort? { peers.withLock { $0[node] } }
}

/// One `UpstreamPool` per event loop of a group. Each pool is used only on its own event loop.
final class EventLoopPools: @unchecked Sendable {
    private let pools: [ObjectIdentifier: UpstreamPool]

    init(group: any EventLoopGroup, tlsContext: NIOSSLContext?) {
        var pools: [ObjectIdentifier: UpstreamPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = UpstreamPool(eventLoop: loop, tlsContext: tlsContext)
        }
        self.pools = pools
    }

    /// The pool of `eventLoop`; call on that event loop only.
    func pool(for eventLoop: any EventLoop) -> UpstreamPool {
        eventLoop.preconditionInEventLoop()
        guard let pool = pools[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop \(eventLoop) is not in the gateway's group")
        }
        return pool
    }

    /// Closes every idle connection of every pool, each on its own event loop.
    func closeAll() {
        for pool in pools.values {
            let loop = pool.eventLoop
            loop.execute { self.pool(for: loop).closeAll() }
        }
    }
}
