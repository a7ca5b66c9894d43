import IsobarGossip
import IsobarModel

/// The gossip instances of a whole mesh on the simulator's kernel: an in-memory network with per-region
/// latency, jitter, packet loss and partitions, and nodes that crash, restart or are starved of CPU.
///
/// Every node runs the real `GossipInstance`; packets are encoded and decoded as on the wire, and their
/// sizes include the sealed envelope. Full-state syncs travel reliably (TCP) unless a partition or a
/// crash is in the way. Deterministic for a seed.
public struct MeshSimulation {
    public struct NodeSpec: Sendable {
        public var name: NodeID
        public var region: RegionID
        public init(name: NodeID, region: RegionID) {
            self.name = name
            self.region = region
        }
    }

    /// One node's view changing: `observer` now holds `member`.
    public struct Change: Sendable {
        public var time: Double
        public var observer: Int
        public var member: Member
    }

    public let specs: [NodeSpec]
    public let network: Network
    public var lossRate: Double
    public var configuration: GossipConfiguration
    public private(set) var now = 0.0
    public private(set) var instances: [GossipInstance?]
    /// Bytes each node sent over UDP (envelope included) and over TCP syncs.
    public private(set) var udpBytesSent: [Int]
    public private(set) var syncBytesSent: [Int]
    /// Called for every membership change any node sees.
    public var onChange: ((Change) -> Void)?
    /// Called for every digest a node learns: (time, observer, digest).
    public var onDigest: ((Double, Int, NodeDigest) -> Void)?

    let addresses: [HostPort]
    let indexOfAddress: [HostPort: Int]
    let backends: [BackendID]
    var queue = EventQueue<Event>(capacity: 1 << 14)
    var rng: Xoshiro256
    var nodeRandom: [Xoshiro256]
    var pendingWake: [Double]
    var partitioned: Set<RegionPair> = []
    /// CPU-starved nodes: when their current stall ends (events wait until then).
    var starved: [Int: (stalledUntil: Double, runsUntil: Double)] = [:]
    var boots: [Int]

    enum Event {
        case wake(node: Int, boot: Int)
        case packet(to: Int, boot: Int, bytes: [UInt8], from: Int)
        case sync(to: Int, boot: Int, bytes: [UInt8], from: Int, reply: Bool)
    }

    /// A mesh of `nodes`, none started yet; `backends` are the names load digests may mention.
    public init(
        nodes: [NodeSpec],
        network: Network,
        lossRate: Double = 0,
        backends: [BackendID] = [],
        configuration: GossipConfiguration = GossipConfiguration(),
        seed: UInt64
    ) {
        specs = nodes
        self.network = network
        self.lossRate = lossRate
        self.backends = backends
        self.configuration = configuration
        addresses = nodes.indices.map {
            HostPort(host: "10.\($0 >> 16 & 255).\($0 >> 8 & 255).\($0 & 255)", port: 7946)
        }
        indexOfAddress = Dictionary(uniqueKeysWithValues: addresses.enumerated().map { ($1, $0) })
        instances = Array(repeating: nil, count: nodes.count)
        udpBytesSent = Array(repeating: 0, count: nodes.count)
        syncBytesSent = Array(repeating: 0, count: nodes.count)
        pendingWake = Array(repeating: .infinity, count: nodes.count)
        boots = Array(repeating: 0, count: nodes.count)
        rng = Xoshiro256(seed: seed)
        var seeds = SplitMix64(seed: seed ^ 0x6055_1900)
        nodeRandom = nodes.map { _ in Xoshiro256(seed: seeds.next()) }
    }

    /// `count` nodes per region, named `<region>-<i>`.
    public static func nodes(_ perRegion: [(RegionID, Int)]) -> [NodeSpec] {
        perRegion.flatMap { region, count in
            (0..<count).map { NodeSpec(name: NodeID("\(region)-\($0)"), region: region) }
        }
    }

    /// Simulated seconds as an instant, rounded up: a wake-up scheduled from an instant converted to seconds
    /// must not land a nanosecond before it.
    static func instant(_ seconds: Double) -> Instant { Instant(nanoseconds: Int64((seconds * 1e9).rounded(.up))) }

    // MARK: - Control

    /// Starts (or restarts) node `i` now; like a gateway node, it knows every other node's address from
    /// the topology, and joins through three of them. A restarted node comes back with the incarnation a
    /// real one would: its boot time in seconds.
    public mutating func start(_ i: Int) {
        var instance = newInstance(i)
        let actions = instance.start(now: Self.instant(now), rng: &nodeRandom[i])
        instances[i] = instance
        carryOut(actions, from: i)
    }

    /// Starts nodes `indices` now, each already holding the others alive: a mesh whose start-up has
    /// settled, without the start-up's gossip (which grows as N² log N), so that large meshes run in
    /// seconds. Probing, RTTs and coordinates start from nothing.
    public mutating func startSettled(_ indices: Range<Int>) {
        let members = indices.map {
            Member(
                node: specs[$0].name,
                region: specs[$0].region,
                address: addresses[$0],
                incarnation: UInt64(now),
                status: .alive,
                since: Self.instant(now)
            )
        }
        for i in indices {
            var instance = newInstance(i)
            instance.assumeAlive(members, rng: &nodeRandom[i])
            instances[i] = instance
            scheduleWake(i)
        }
    }

    /// Node `i`'s instance for a new boot.
    private mutating func newInstance(_ i: Int) -> GossipInstance {
        boots[i] += 1
        pendingWake[i] = .infinity
        return GossipInstance(
            node: specs[i].name,
            region: specs[i].region,
            address: addresses[i],
            incarnation: UInt64(now),
            seeds: addresses,
            backends: backends,
            configuration: configuration,
            now: Self.instant(now)
        )
    }

    /// Starts every node.
    public mutating func startAll() {
        for i in specs.indices { start(i) }
    }

    /// Node `i` stops at once, without a word (a crash or a SIGKILL).
    public mutating func crash(_ i: Int) {
        instances[i] = nil
        boots[i] += 1
    }

    /// Node `i` leaves gracefully.
    public mutating func leave(_ i: Int) {
        guard var instance = instances[i] else { return }
        let actions = instance.leave(now: Self.instant(now), rng: &nodeRandom[i])
        instances[i] = instance
        carryOut(actions, from: i)
    }

    /// Cuts (or heals) the network between two regions, both directions.
    public mutating func partition(_ a: RegionID, _ b: RegionID, cut: Bool) {
        if cut { partitioned.insert(RegionPair(a, b)) } else { partitioned.remove(RegionPair(a, b)) }
    }

    /// Starves node `i` of CPU: it runs for 0.1–0.4 s, then stalls for 0.3–`maxStall` s, over and over;
    /// packets and timers wait for the stall to end, as in a descheduled process.
    public mutating func starve(_ i: Int, maxStall: Double = 1.5) {
        starved[i] = (now, now)
        maxStallSeconds = maxStall
    }

    var maxStallSeconds = 1.5

    /// Hands node `i` its current load and health, as its scraper would after a scrape round.
    public mutating func publish(_ i: Int, load: LoadDigest, health: HealthDigest) {
        guard instances[i] != nil else { return }
        instances[i]!.publish(load: load, health: health, now: Self.instant(now))
        scheduleWake(i)
    }

    /// Runs the network until `time` (seconds).
    public mutating func run(until time: Double) {
        while let next = queue.peekTime(), next <= time {
            guard let (t, event) = queue.pop() else { break }
            now = t
            handle(event)
        }
        now = max(now, time)
    }

    // MARK: - Events

    private mutating func handle(_ event: Event) {
        let target: Int
        let boot: Int
        switch event {
        case .wake(let node, let b): (target, boot) = (node, b)
        case .packet(let to, let b, _, _): (target, boot) = (to, b)
        case .sync(let to, let b, _, _, _): (target, boot) = (to, b)
        }
        guard boots[target] == boot, instances[target] != nil else { return }
        if let delay = stallDelay(target) {
            queue.schedule(at: now + delay, event)
            return
        }
        let t = Self.instant(now)
        var actions: [GossipAction] = []
        switch event {
        case .wake(let node, _):
            if pendingWake[node] <= now { pendingWake[node] = .infinity }
            actions = instances[node]!.tick(now: t, rng: &nodeRandom[node])
        case .packet(let to, _, let bytes, let from):
            guard let packet = try? instances[to]!.codec.decode(bytes) else { break }
            actions = instances[to]!.received(packet, from: addresses[from], now: t, rng: &nodeRandom[to])
        case .sync(let to, _, let bytes, let from, let reply):
            guard let packet = try? instances[to]!.codec.decode(bytes) else { break }
            if reply {
                actions = instances[to]!.syncReplied(packet, now: t, rng: &nodeRandom[to])
            } else {
                let (answer, more) = instances[to]!.receivedSync(packet, now: t, rng: &nodeRandom[to])
                actions = more
                transmitSync(answer, from: to, to: from, reply: true)
            }
        }
        carryOut(actions, from: target)
    }

    /// How long a starved node's event must wait, or nil if the node is running.
    private mutating func stallDelay(_ i: Int) -> Double? {
        guard var s = starved[i] else { return nil }
        while now >= s.runsUntil {
            // The run ended: stall, then run again.
            let stall = Double.random(in: 0.3...max(0.3, maxStallSeconds), using: &rng)
            s.stalledUntil = s.runsUntil + stall
            s.runsUntil = s.stalledUntil + Double.random(in: 0.1...0.4, using: &rng)
        }
        starved[i] = s
        return now < s.stalledUntil ? s.stalledUntil - now : nil
    }

    private mutating func carryOut(_ actions: [GossipAction], from i: Int) {
        for action in actions {
            switch action {
            case .send(let bytes, let address):
                udpBytesSent[i] += bytes.count + GossipEnvelope.overheadBytes
                guard let to = indexOfAddress[address], reachable(i, to) else { continue }
                if lossRate > 0, Double.random(in: 0..<1, using: &rng) < lossRate { continue }
                queue.schedule(at: now + latency(i, to), .packet(to: to, boot: boots[to], bytes: bytes, from: i))
            case .sync(let bytes, let address):
                guard let to = indexOfAddress[address] else { continue }
                transmitSync(bytes, from: i, to: to, reply: false)
            case .memberChanged(let member):
                onChange?(Change(time: now, observer: i, member: member))
            case .digestLearned(let digest):
                onDigest?(now, i, digest)
            }
        }
        scheduleWake(i)
    }

    private mutating func transmitSync(_ bytes: [UInt8], from i: Int, to: Int, reply: Bool) {
        syncBytesSent[i] += bytes.count + GossipEnvelope.overheadBytes
        guard reachable(i, to) else { return }
        // A TCP exchange: a handshake's round trip before the data arrives.
        let delay = latency(i, to) * 3
        queue.schedule(at: now + delay, .sync(to: to, boot: boots[to], bytes: bytes, from: i, reply: reply))
    }

    private mutating func scheduleWake(_ i: Int) {
        guard let instance = instances[i] else { return }
        let wake = max(now, Double(instance.nextWakeup.nanoseconds) / 1e9)
        guard wake < pendingWake[i], wake.isFinite, wake < 1e15 else { return }
        pendingWake[i] = wake
        queue.schedule(at: wake, .wake(node: i, boot: boots[i]))
    }

    private func reachable(_ a: Int, _ b: Int) -> Bool {
        partitioned.isEmpty || !partitioned.contains(RegionPair(specs[a].region, specs[b].region))
    }

    /// One-way delay: half the regions' RTT, plus up to 10 % jitter.
    private mutating func latency(_ a: Int, _ b: Int) -> Double {
        network.rtt(specs[a].region, specs[b].region) / 2 * (1 + Double.random(in: 0..<0.1, using: &rng))
    }
}
