import Crypto
import IsobarGossip
import IsobarModel
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The gateway's shell around the node's `GossipInstance` (DESIGN §7): UDP for probes and gossip, TCP on
/// the same port for full-state sync, every packet sealed by `GossipSeal` and checked by `ReplayGuard`.
/// It ticks the instance at its `nextWakeup`, publishes the router's load and health digests, and feeds
/// what it learns (digests, member changes, RTT to each region) back to the router.
///
/// Packets that fail to open, decode or pass the replay check are dropped and counted by reason; they
/// change nothing else.
final class GossipShell: Sendable {
    let topology: Topology
    let node: Node
    /// Where the other nodes reach this one: its gossip address, or for a pool member the address it
    /// announces (`GatewayNode.advertised`).
    let address: HostPort
    /// Where the sockets bind: the node's gossip address (a pool's is usually every interface).
    let bindAddress: HostPort
    private let seal: GossipSeal
    private let current: CurrentCore
    /// What serves requests now: gossip feeds its router.
    private var core: GatewayCore { current.core }
    private let loop: any EventLoop
    private let state: Mutex<State>
    private let sequence: Atomic<UInt64>
    private let channels = Mutex<Channels?>(nil)
    /// When the process's gossip started, for `/v1/mesh`.
    let bootIncarnation: UInt64

    /// Datagrams larger than this are dropped as oversized (the instance keeps its packets under it).
    let maxDatagramBytes: Int
    /// Full-state sync frames are bounded too (a whole membership of thousands of nodes fits).
    static let maxSyncBytes = 4 << 20
    static let syncTimeout = TimeAmount.seconds(5)
    /// How often the router's digests are offered to the instance (it publishes only meaningful changes,
    /// at most once a second) and the measured RTTs handed to the router.
    static let publishInterval = Duration.milliseconds(250)
    /// The longest the tick loop sleeps, whatever `nextWakeup` says (packets may move it earlier).
    static let maxSleep = Duration.milliseconds(20)
    /// How often the seeds' DNS names are resolved again (pods of a headless Service come and go).
    static let seedRefreshInterval = Duration.seconds(30)

    struct State: ~Copyable {
        var instance: GossipInstance
        var rng: Xoshiro256
        var replay = ReplayGuard()
        var dropped: [GossipError.Code: Int] = [:]
        var resolved: [HostPort: SocketAddress] = [:]
        var syncsFailed = 0
    }

    struct Channels: Sendable {
        let udp: any Channel
        let tcp: any Channel
    }

    /// The shell of `node` (which must have a gossip address), known to the mesh at `advertised` (by
    /// default its gossip address). Throws when the mesh has a key variable that is unset or malformed and
    /// some node is not on loopback; a mesh without key travels in the clear, which the topology validator
    /// allows only on loopback.
    init(current: CurrentCore, advertised: HostPort? = nil, environment: [String: String], loop: any EventLoop) throws {
        let core = current.core
        guard let bindAddress = core.node.gossip else {
            throw GatewayError(.internal, "node '\(core.node.name)' has no gossip address")
        }
        let address = advertised ?? bindAddress
        let topology = core.topology
        var keys: [SymmetricKey] = []
        if let variable = topology.mesh.gossipKeyEnv {
            let everyLoopback = topology.nodes.allSatisfy { ($0.gossip?.isLoopback ?? true) && $0.listen.isLoopback }
            let set = !(environment[variable]?.trimmingCharacters(in: .whitespaces).isEmpty ?? true)
            if set || !everyLoopback { keys = try GossipSeal.keys(fromEnvironment: variable, environment) }
        } else if topology.nodes.contains(where: { !($0.gossip?.isLoopback ?? true) }) {
            throw GatewayError(.internal, "mesh.gossip_key_env is required when a node gossips beyond loopback")
        }
        self.topology = topology
        self.node = core.node
        self.address = address
        self.bindAddress = bindAddress
        self.current = current
        self.loop = loop
        var random = SystemRandomNumberGenerator()
        let salt = (0..<4).map { _ in UInt8.random(in: 0...255, using: &random) }
        seal = GossipSeal(keys: keys, meshName: topology.mesh.name, salt: salt)
        let bootMs = Self.wallClockMilliseconds()
        sequence = Atomic(bootMs << 20)
        bootIncarnation = bootMs / 1000
        let configuration = GossipConfiguration()
        maxDatagramBytes = configuration.maxPacketBytes
        let instance = GossipInstance(
            node: core.node.name,
            region: core.node.region,
            address: address,
            incarnation: bootIncarnation,
            seeds: topology.seeds,
            backends: topology.backends.map(\.name),
            configuration: configuration,
            now: MonotonicClock.now()
        )
        state = Mutex(State(instance: instance, rng: Xoshiro256(seed: random.next())))
    }

    /// The node reloaded its topology: gossip reads the load and health of its backends from now on.
    func reloaded(_ topology: Topology) {
        state.withLock { $0.instance.knowBackends(topology.backends.map(\.name)) }
    }

    // MARK: - Running

    /// Joins through the other nodes on the sockets `bind` opened, and runs until cancelled; then
    /// announces that the node leaves and closes its sockets.
    func run(_ channels: Channels) async {
        self.channels.withLock { $0 = channels }
        core.logger.info(
            "gossip listening",
            metadata: [
                "isobar.address": "\(address)", "isobar.encrypted": "\(seal.isEncrypted)",
                "isobar.incarnation": "\(bootIncarnation)",
            ]
        )
        await refreshSeeds()
        perform(state.withLock { $0.instance.start(now: MonotonicClock.now(), rng: &$0.rng) })
        var nextPublish = MonotonicClock.now()
        let refreshing = Task {
            while (try? await Task.sleep(for: Self.seedRefreshInterval)) != nil { await refreshSeeds() }
        }
        defer { refreshing.cancel() }
        while !Task.isCancelled {
            let wake = state.withLock { $0.instance.nextWakeup }
            let now = MonotonicClock.now()
            let sleep = min(max(wake - now, .zero), Self.maxSleep)
            do { try await Task.sleep(for: sleep) } catch { break }
            let tickAt = MonotonicClock.now()
            perform(state.withLock { $0.instance.tick(now: tickAt, rng: &$0.rng) })
            if tickAt >= nextPublish {
                nextPublish = tickAt + Self.publishInterval
                publish(now: tickAt)
            }
        }
        perform(state.withLock { $0.instance.leave(now: MonotonicClock.now(), rng: &$0.rng) })
        // Let the leave datagrams out before the sockets close.
        try? await channels.udp.eventLoop.submit {}.get()
        channels.udp.close(promise: nil)
        channels.tcp.close(promise: nil)
        self.channels.withLock { $0 = nil }
    }

    /// Opens the UDP socket and the TCP listener of the node's gossip address, or throws saying why not.
    func bind() async throws -> Channels {
        let udp: any Channel
        let tcp: any Channel
        do {
            udp = try await DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
                .channelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatagramHandler(shell: self))
                    }
                }
                .bind(host: bindAddress.host, port: bindAddress.port).get()
        } catch {
            throw GatewayError(.internal, "gossip cannot listen on udp \(bindAddress): \(HTTPServer.describe(error))")
        }
        do {
            tcp = try await ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(SyncFrameDecoder()),
                            SyncServerHandler(shell: self)
                        )
                    }
                }
                .bind(host: bindAddress.host, port: bindAddress.port).get()
        } catch {
            udp.close(promise: nil)
            throw GatewayError(.internal, "gossip cannot listen on tcp \(bindAddress): \(HTTPServer.describe(error))")
        }
        return Channels(udp: udp, tcp: tcp)
    }

    /// Offers the router's digests to the instance and hands the measured RTTs to the router.
    private func publish(now: Instant) {
        let (reporting, rtts) = state.withLock { state -> (Set<BackendID>, [(RegionID, Double)]) in
            let instance = state.instance
            let reporting = Set(
                topology.backends.filter {
                    $0.region == node.region && instance.reportsGauges(of: $0.name, in: $0.region)
                }
                .map(\.name)
            )
            let rtts = topology.regions.compactMap { region in
                instance.estimatedRTT(to: region.name).map { (region.name, $0) }
            }
            return (reporting, rtts)
        }
        let (load, health) = core.withRouter { router, _ in
            for (region, seconds) in rtts { router.measuredRTT(to: region, seconds: seconds) }
            return (router.loadDigest(reporting: reporting, now: now), router.healthDigest(now: now))
        }
        state.withLock { $0.instance.publish(load: load, health: health, now: now) }
    }

    // MARK: - Carrying out actions

    private func perform(_ actions: [GossipAction]) {
        for action in actions {
            switch action {
            case .send(let bytes, let peer): sendDatagram(bytes, to: peer)
            case .sync(let bytes, let peer): startSync(bytes, with: peer)
            case .memberChanged(let member): memberChanged(member)
            case .digestLearned(let digest): learned(digest)
            }
        }
    }

    private func memberChanged(_ member: Member) {
        // A peer up is known by address before the router may forward through it, and forgotten after.
        if member.status.isUp { core.livePeers.set(member.node, up: true, address: member.address) }
        core.withRouter { router, _ in
            switch member.status {
            case .alive: router.peerSuspected(member.node, false)
            case .suspect: router.peerSuspected(member.node, true)
            case .dead, .left: router.peerGone(member.node)
            }
        }
        if !member.status.isUp { core.livePeers.set(member.node, up: false, address: member.address) }
        let level: Logger.Level = member.status == .alive ? .info : .notice
        core.logger.log(
            level: level,
            "mesh member \(member.status)",
            metadata: [
                "isobar.member": "\(member.node)", "isobar.member_region": "\(member.region)",
                "isobar.incarnation": "\(member.incarnation)",
            ]
        )
    }

    private func learned(_ digest: NodeDigest) {
        core.withRouter { router, _ in
            switch digest.payload {
            case .load(let load): router.gossiped(load, from: digest.origin, age: digest.age, now: MonotonicClock.now())
            case .health(let health): router.gossiped(health, from: digest.origin)
            }
        }
    }

    private func sealed(_ bytes: [UInt8]) -> [UInt8] {
        let n = sequence.wrappingAdd(1, ordering: .relaxed).newValue
        return seal.seal(bytes, sequence: n, sentAtMilliseconds: Self.wallClockMilliseconds())
    }

    /// Resolves the seeds' DNS names (off the event loops) and gives the instance every address they stand
    /// for; a name that does not resolve now stays as it is, to be resolved when used.
    private func refreshSeeds() async {
        let seeds = topology.seeds
        guard seeds.contains(where: { !HostPort.isIPAddress($0.host) }) else { return }
        guard let expanded = try? await NIOThreadPool.singleton.runIfActive({ Self.expand(seeds) }) else { return }
        state.withLock { $0.instance.knowSeeds(expanded) }
    }

    /// Every address of each seed, numeric ones as they are; in the seeds' order, without repeats.
    static func expand(_ seeds: [HostPort]) -> [HostPort] {
        var seen = Set<HostPort>()
        var expanded: [HostPort] = []
        for seed in seeds {
            let addresses = HostPort.isIPAddress(seed.host) ? [seed.host] : addresses(of: seed.host)
            for host in addresses.isEmpty ? [seed.host] : addresses {
                let address = HostPort(host: host, port: seed.port)
                if seen.insert(address).inserted { expanded.append(address) }
            }
        }
        return expanded
    }

    /// The addresses `host` resolves to (A and AAAA, as getaddrinfo orders them); empty when it does not.
    static func addresses(of host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var found: [String] = []
        var entry = list
        while let info = entry?.pointee {
            entry = info.ai_next
            guard let address = info.ai_addr else { continue }
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let status = getnameinfo(
                address,
                info.ai_addrlen,
                &text,
                socklen_t(text.count),
                nil,
                0,
                NI_NUMERICHOST
            )
            guard status == 0 else { continue }
            let host = Self.string(text)
            if !found.contains(host) { found.append(host) }
        }
        return found
    }

    /// The text of a C string buffer, up to its terminating zero.
    static func string(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func resolve(_ peer: HostPort) -> SocketAddress? {
        if let known = state.withLock({ $0.resolved[peer] }) { return known }
        guard let address = try? SocketAddress.makeAddressResolvingHost(peer.host, port: peer.port) else {
            return nil
        }
        state.withLock { $0.resolved[peer] = address }
        return address
    }

    private func sendDatagram(_ bytes: [UInt8], to peer: HostPort) {
        guard let udp = channels.withLock({ $0?.udp }), let remote = resolve(peer) else { return }
        let buffer = ByteBuffer(bytes: sealed(bytes))
        udp.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: buffer), promise: nil)
    }

    /// Opens a TCP connection to `peer`, sends the opening of a full-state exchange and hands the reply
    /// to the instance. A peer that cannot be reached is only counted: the next sync tries another.
    private func startSync(_ bytes: [UInt8], with peer: HostPort) {
        guard let remote = resolve(peer) else { return }
        let frame = sealed(bytes)
        let reply = loop.makePromise(of: [UInt8].self)
        ClientBootstrap(group: loop)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(SyncFrameDecoder()),
                        SyncClientHandler(reply: reply)
                    )
                }
            }
            .connect(to: remote)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    channel.writeAndFlush(SyncFrameDecoder.frame(frame), promise: nil)
                    let timeout = channel.eventLoop.scheduleTask(in: Self.syncTimeout) {
                        reply.fail(GatewayError(.upstreamTimeout, "sync timed out"))
                        channel.close(promise: nil)
                    }
                    reply.futureResult.whenComplete { _ in
                        timeout.cancel()
                        channel.close(promise: nil)
                    }
                case .failure(let error):
                    reply.fail(error)
                }
            }
        reply.futureResult.whenComplete { [self] result in
            switch result {
            case .success(let bytes):
                perform(
                    state.withLock { state in
                        guard let packet = opened(bytes, state: &state) else { return [] }
                        return state.instance.syncReplied(packet, now: MonotonicClock.now(), rng: &state.rng)
                    }
                )
            case .failure:
                state.withLock { $0.syncsFailed += 1 }
            }
        }
    }

    // MARK: - Receiving

    /// A datagram arrived from `source`.
    fileprivate func received(_ bytes: [UInt8], from source: HostPort) {
        perform(
            state.withLock { state in
                guard bytes.count <= maxDatagramBytes else {
                    state.dropped[.oversized, default: 0] += 1
                    return []
                }
                guard let packet = opened(bytes, state: &state) else { return [] }
                return state.instance.received(packet, from: source, now: MonotonicClock.now(), rng: &state.rng)
            }
        )
    }

    /// The opening of a full-state exchange arrived over TCP: the sealed reply, or nil to hang up.
    fileprivate func receivedSync(_ bytes: [UInt8]) -> [UInt8]? {
        let (reply, actions) = state.withLock { state -> ([UInt8]?, [GossipAction]) in
            guard let packet = opened(bytes, state: &state) else { return (nil, []) }
            let (reply, actions) = state.instance.receivedSync(packet, now: MonotonicClock.now(), rng: &state.rng)
            return (reply, actions)
        }
        perform(actions)
        return reply.map(sealed)
    }

    /// Opens, decodes and replay-checks a packet; counts and drops it when any of that fails.
    private func opened(_ bytes: [UInt8], state: inout State) -> GossipPacket? {
        do throws(GossipError) {
            let (sequence, sentAt, body) = try seal.open(bytes)
            let packet = try state.instance.codec.decode(Array(body))
            try state.replay.admit(
                sender: packet.sender,
                sequence: sequence,
                sentAtMilliseconds: sentAt,
                nowMilliseconds: Self.wallClockMilliseconds()
            )
            return packet
        } catch {
            state.dropped[error.code, default: 0] += 1
            return nil
        }
    }

    fileprivate func countDrop(_ code: GossipError.Code) {
        state.withLock { $0.dropped[code, default: 0] += 1 }
    }

    // MARK: - Views

    /// What `/v1/mesh` and the health views show.
    func snapshot() -> MeshSnapshot {
        state.withLock { state in
            let instance = state.instance
            return MeshSnapshot(
                node: node.name,
                region: node.region,
                incarnation: instance.incarnation,
                healthMultiplier: instance.healthMultiplier,
                members: instance.members.values.sorted { $0.node < $1.node },
                measuredRTT: Dictionary(
                    instance.members.keys.compactMap { id in instance.measuredRTT(to: id).map { (id, $0) } },
                    uniquingKeysWith: { a, _ in a }
                ),
                regionRTT: Dictionary(
                    topology.regions.compactMap { r in instance.estimatedRTT(to: r.name).map { (r.name, $0) } },
                    uniquingKeysWith: { a, _ in a }
                ),
                coordinate: instance.coordinate,
                counters: instance.counters,
                dropped: state.dropped,
                syncsFailed: state.syncsFailed,
                encrypted: seal.isEncrypted
            )
        }
    }

    static func wallClockMilliseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }
}

/// One node's view of the mesh at a moment.
struct MeshSnapshot: Sendable {
    var node: NodeID
    var region: RegionID
    var incarnation: UInt64
    var healthMultiplier: Int
    var members: [Member]
    /// Smoothed RTT of direct probes, in seconds, by member.
    var measuredRTT: [NodeID: Double]
    /// Estimated RTT to each region, in seconds.
    var regionRTT: [RegionID: Double]
    var coordinate: VivaldiCoordinate
    var counters: GossipCounters
    var dropped: [GossipError.Code: Int]
    var syncsFailed: Int
    var encrypted: Bool
}

// MARK: - Channel handlers

/// Hands every datagram to the shell.
private final class DatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let shell: GossipShell

    init(shell: GossipShell) { self.shell = shell }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let host = envelope.remoteAddress.ipAddress, let port = envelope.remoteAddress.port else { return }
        shell.received(Array(buffer: envelope.data), from: HostPort(host: host, port: port))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram socket reports ICMP errors (a peer's port closed) here; the probe protocol copes.
    }
}

/// Full-state sync frames: a 4-byte big-endian length, then that many bytes (a sealed packet).
struct SyncFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length <= GossipShell.maxSyncBytes else {
            throw GossipError(.oversized, "sync frame of \(length) bytes")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    static func frame(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeBytes(bytes)
        return buffer
    }
}

/// Answers one sync opening per connection, then hangs up.
private final class SyncServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let shell: GossipShell
    private var answered = false

    init(shell: GossipShell) { self.shell = shell }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.eventLoop.scheduleTask(in: GossipShell.syncTimeout) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        guard let reply = shell.receivedSync(Array(buffer: unwrapInboundIn(data))) else {
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(SyncFrameDecoder.frame(reply))).whenComplete {
            [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? GossipError { shell.countDrop(error.code) }
        context.close(promise: nil)
    }
}

/// Completes `reply` with the first frame the peer sends back.
private final class SyncClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let reply: EventLoopPromise<[UInt8]>

    init(reply: EventLoopPromise<[UInt8]>) { self.reply = reply }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reply.succeed(Array(buffer: unwrapInboundIn(data)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        reply.fail(GatewayError(.upstreamUnreachable, "sync peer hung up"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        reply.fail(error)
        context.close(promise: nil)
    }
}
