import IsobarModel

/// Encodes and decodes gossip packets (the plaintext inside the envelope).
///
/// Layout: format version, message kind, sender, the message's fields, then a count and the updates, each
/// tagged. Backends are named on the wire by a 32-bit FNV-1a hash of their name, and resolved against the
/// node's topology on receipt; entries for backends the node does not know (a peer already on a newer
/// topology) are skipped. Decoding checks every length and never traps: bad input throws `malformed`.
public struct GossipCodec: Sendable {
    static let formatVersion: UInt8 = 1
    /// Bytes every packet's header may take besides the message fields (version, kind, update count).
    static let fixedHeaderBytes = 4

    let backends: [UInt32: BackendID]

    public init(backends: [BackendID]) {
        var map: [UInt32: BackendID] = [:]
        for b in backends { map[Self.key(b)] = b }
        self.backends = map
    }

    /// The wire key of a backend (also a node's place on the probe ring): FNV-1a over its name's UTF-8.
    static func key(_ name: some StringIdentifier) -> UInt32 { FNV1a.hash32(name.rawValue) }

    // MARK: - Encoding

    /// A packet's header: everything before the updates.
    func header(_ sender: NodeID, _ message: GossipMessage) -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.u8(Self.formatVersion)
        switch message {
        case .ping(let sequence, let target):
            w.u8(1)
            w.string(sender.rawValue)
            w.u32(sequence)
            w.string(target.rawValue)
        case .ack(let sequence, let coordinate):
            w.u8(2)
            w.string(sender.rawValue)
            w.u32(sequence)
            w.u8(coordinate == nil ? 0 : 1)
            if let coordinate { Self.write(coordinate, &w) }
        case .pingRequest(let sequence, let target, let address):
            w.u8(3)
            w.string(sender.rawValue)
            w.u32(sequence)
            w.string(target.rawValue)
            w.address(address)
        case .nack(let sequence):
            w.u8(4)
            w.string(sender.rawValue)
            w.u32(sequence)
        case .gossip:
            w.u8(5)
            w.string(sender.rawValue)
        case .sync(let reply):
            w.u8(6)
            w.string(sender.rawValue)
            w.u8(reply ? 1 : 0)
        }
        return w.bytes
    }

    /// A whole packet: header, update count, updates (already encoded with `encode(_:)`).
    func packet(header: [UInt8], updates: [[UInt8]]) -> [UInt8] {
        var w = ByteWriter(capacity: header.count + 2 + updates.reduce(0) { $0 + $1.count })
        w.append(header)
        w.u16(UInt16(clamping: updates.count))
        for u in updates.prefix(Int(UInt16.max)) { w.append(u) }
        return w.bytes
    }

    /// Encodes a whole packet.
    public func encode(_ packet: GossipPacket) -> [UInt8] {
        self.packet(header: header(packet.sender, packet.message), updates: packet.updates.map(encode))
    }

    /// One update, as it is appended to a packet.
    func encode(_ update: GossipUpdate) -> [UInt8] {
        var w = ByteWriter(capacity: 48)
        switch update {
        case .member(let m):
            w.u8(1)
            w.string(m.node.rawValue)
            w.string(m.region.rawValue)
            w.address(m.address)
            w.varint(m.incarnation)
            w.u8(m.status.rawValue)
            w.string(m.from.rawValue)
        case .digest(let d):
            w.u8(2)
            w.string(d.origin.rawValue)
            Self.write(d.version, &w)
            w.varint(Self.milliseconds(d.age))
            switch d.payload {
            case .load(let load): Self.write(load, &w)
            case .health(let health): Self.write(health, &w)
            }
        case .refresh(let r):
            w.u8(3)
            w.string(r.origin.rawValue)
            Self.write(r.load, &w)
            Self.write(r.health, &w)
            w.varint(Self.milliseconds(r.age))
        case .coordinate(let node, let c):
            w.u8(4)
            w.string(node.rawValue)
            Self.write(c, &w)
        }
        return w.bytes
    }

    private static func milliseconds(_ d: Duration) -> UInt64 { UInt64(max(0, d.nanoseconds / 1_000_000)) }

    private static func write(_ v: DigestVersion, _ w: inout ByteWriter) {
        w.varint(v.incarnation)
        w.varint(v.counter)
    }

    private static func write(_ c: VivaldiCoordinate, _ w: inout ByteWriter) {
        for x in c.vector { w.f32(x) }
        w.f32(c.height)
        w.f32(c.error)
    }

    private static func write(_ load: LoadDigest, _ w: inout ByteWriter) {
        w.u8(NodeDigest.Kind.load.rawValue)
        w.varint(load.entries.count)
        for e in load.entries {
            w.u32(key(e.backend))
            let flags: UInt8 = (e.waiting == nil ? 0 : 1) | (e.running == nil ? 0 : 2) | (e.kvUsage == nil ? 0 : 4)
            w.u8(flags)
            if let waiting = e.waiting { w.varint(waiting) }
            if let running = e.running { w.varint(running) }
            if let kv = e.kvUsage { w.u8(quantise(kv)) }
            w.varint(e.inFlight)
            w.varint(e.pendingPrefillTokens)
        }
    }

    private static func write(_ health: HealthDigest, _ w: inout ByteWriter) {
        w.u8(NodeDigest.Kind.health.rawValue)
        w.varint(health.entries.count)
        for e in health.entries {
            w.u32(key(e.backend))
            w.u8(e.state.rawValue)
            w.u8(quantise(e.errorRate))
            w.varint(e.ttftP50Ms.map { $0 + 1 } ?? 0)
            w.varint(e.ttftP99Ms.map { $0 + 1 } ?? 0)
        }
    }

    /// A fraction 0–1 in 1/250 steps.
    private static func quantise(_ fraction: Double) -> UInt8 {
        guard fraction.isFinite else { return 0 }
        return UInt8(min(250, max(0, (fraction * 250).rounded())))
    }

    // MARK: - Decoding

    /// Decodes a packet; throws `malformed` for anything that is not one.
    public func decode(_ bytes: [UInt8]) throws(GossipError) -> GossipPacket {
        var r = ByteReader(bytes)
        let version = try r.u8("format version")
        guard version == Self.formatVersion else { throw GossipError(.malformed, "unknown format version \(version)") }
        let kind = try r.u8("message kind")
        let sender = NodeID(try r.string("sender"))
        let message: GossipMessage
        switch kind {
        case 1: message = .ping(sequence: try r.u32("sequence"), target: NodeID(try r.string("target")))
        case 2:
            let sequence = try r.u32("sequence")
            let has = try r.u8("coordinate flag")
            message = .ack(sequence: sequence, coordinate: has == 0 ? nil : try Self.coordinate(&r))
        case 3:
            let sequence = try r.u32("sequence")
            let target = NodeID(try r.string("target"))
            message = .pingRequest(sequence: sequence, target: target, address: try r.address())
        case 4: message = .nack(sequence: try r.u32("sequence"))
        case 5: message = .gossip
        case 6: message = .sync(reply: try r.u8("reply flag") != 0)
        default: throw GossipError(.malformed, "unknown message kind \(kind)")
        }
        let count = Int(try r.u16("update count"))
        var updates: [GossipUpdate] = []
        updates.reserveCapacity(min(count, r.remaining))
        for _ in 0..<count {
            if let update = try update(&r) { updates.append(update) }
        }
        guard r.remaining == 0 else { throw GossipError(.malformed, "\(r.remaining) bytes after the last update") }
        return GossipPacket(sender: sender, message: message, updates: updates)
    }

    private func update(_ r: inout ByteReader) throws(GossipError) -> GossipUpdate? {
        let tag = try r.u8("update tag")
        switch tag {
        case 1:
            let node = NodeID(try r.string("member"))
            let region = RegionID(try r.string("region"))
            let address = try r.address()
            let incarnation = try r.varint("incarnation")
            let raw = try r.u8("status")
            guard let status = Member.Status(rawValue: raw) else {
                throw GossipError(.malformed, "unknown status \(raw)")
            }
            let from = NodeID(try r.string("from"))
            return .member(
                MemberUpdate(
                    node: node,
                    region: region,
                    address: address,
                    incarnation: incarnation,
                    status: status,
                    from: from
                )
            )
        case 2:
            let origin = NodeID(try r.string("origin"))
            let version = try Self.version(&r)
            let age = Duration.milliseconds(Int64(try r.count("age", limit: 1 << 40)))
            let payload = try payload(&r)
            return .digest(NodeDigest(origin: origin, version: version, age: age, payload: payload))
        case 3:
            let origin = NodeID(try r.string("origin"))
            let load = try Self.version(&r)
            let health = try Self.version(&r)
            let age = Duration.milliseconds(Int64(try r.count("age", limit: 1 << 40)))
            return .refresh(DigestRefresh(origin: origin, load: load, health: health, age: age))
        case 4:
            let node = NodeID(try r.string("node"))
            return .coordinate(node, try Self.coordinate(&r))
        default:
            throw GossipError(.malformed, "unknown update tag \(tag)")
        }
    }

    private static func version(_ r: inout ByteReader) throws(GossipError) -> DigestVersion {
        DigestVersion(incarnation: try r.varint("incarnation"), counter: try r.varint("version"))
    }

    private static func coordinate(_ r: inout ByteReader) throws(GossipError) -> VivaldiCoordinate {
        var vector: [Double] = []
        vector.reserveCapacity(VivaldiCoordinate.dimensions)
        for _ in 0..<VivaldiCoordinate.dimensions { vector.append(try r.f32("coordinate")) }
        let height = try r.f32("height")
        let error = try r.f32("error")
        guard height >= 0, error >= 0 else { throw GossipError(.malformed, "negative coordinate height or error") }
        return VivaldiCoordinate(vector: vector, height: height, error: min(error, VivaldiCoordinate.maximumError))
    }

    private func payload(_ r: inout ByteReader) throws(GossipError) -> NodeDigest.Payload {
        let kind = try r.u8("digest kind")
        // Each entry takes at least 5 bytes, which bounds the count by what is left.
        let count = try r.count("entry count", limit: r.remaining / 5)
        switch kind {
        case NodeDigest.Kind.load.rawValue:
            var entries: [LoadDigest.Entry] = []
            for _ in 0..<count {
                let key = try r.u32("backend")
                let flags = try r.u8("flags")
                let waiting = flags & 1 == 0 ? nil : try r.count("waiting", limit: 1 << 31)
                let running = flags & 2 == 0 ? nil : try r.count("running", limit: 1 << 31)
                let kv = flags & 4 == 0 ? nil : Double(min(250, try r.u8("kv usage"))) / 250
                let inFlight = try r.count("in flight", limit: 1 << 31)
                let prefill = try r.count("prefill tokens", limit: 1 << 40)
                guard let backend = backends[key] else { continue }
                entries.append(
                    LoadDigest.Entry(
                        backend: backend,
                        waiting: waiting,
                        running: running,
                        kvUsage: kv,
                        inFlight: inFlight,
                        pendingPrefillTokens: prefill
                    )
                )
            }
            return .load(LoadDigest(entries: entries))
        case NodeDigest.Kind.health.rawValue:
            var entries: [HealthDigest.Entry] = []
            for _ in 0..<count {
                let key = try r.u32("backend")
                let raw = try r.u8("state")
                guard let state = HealthDigest.State(rawValue: raw) else {
                    throw GossipError(.malformed, "unknown backend state \(raw)")
                }
                let errorRate = Double(min(250, try r.u8("error rate"))) / 250
                let p50 = try r.count("ttft p50", limit: 1 << 31)
                let p99 = try r.count("ttft p99", limit: 1 << 31)
                guard let backend = backends[key] else { continue }
                entries.append(
                    HealthDigest.Entry(
                        backend: backend,
                        state: state,
                        errorRate: errorRate,
                        ttftP50Ms: p50 == 0 ? nil : p50 - 1,
                        ttftP99Ms: p99 == 0 ? nil : p99 - 1
                    )
                )
            }
            return .health(HealthDigest(entries: entries))
        default:
            throw GossipError(.malformed, "unknown digest kind \(kind)")
        }
    }
}
