import IsobarModel
import Testing

@testable import IsobarGossip

@Suite struct GossipCodecTests {
    let codec = GossipCodec(backends: ["use-vllm-1", "euw-sglang-1"])

    var coordinate: VivaldiCoordinate {
        // Values Float32 holds exactly: coordinates travel as 32-bit floats.
        VivaldiCoordinate(
            vector: [0.0078125, -0.015625, 0.00390625, 0, 0, 0.25, -0.125, 0.5],
            height: 0.0009765625,
            error: 0.25
        )
    }

    var updates: [GossipUpdate] {
        [
            .member(
                MemberUpdate(
                    node: "use-1",
                    region: "us-east",
                    address: HostPort(host: "10.0.0.5", port: 7946),
                    incarnation: 1_790_000_000,
                    status: .suspect,
                    from: "euw-2"
                )
            ),
            .digest(
                NodeDigest(
                    origin: "use-1",
                    version: DigestVersion(incarnation: 7, counter: 300),
                    age: .milliseconds(1250),
                    payload: .load(
                        LoadDigest(entries: [
                            .init(
                                backend: "use-vllm-1",
                                waiting: 3,
                                running: 40,
                                kvUsage: 0.4,
                                inFlight: 5,
                                pendingPrefillTokens: 9000
                            ),
                            .init(backend: "euw-sglang-1", inFlight: 2),
                        ])
                    )
                )
            ),
            .digest(
                NodeDigest(
                    origin: "use-1",
                    version: DigestVersion(incarnation: 7, counter: 301),
                    age: .zero,
                    payload: .health(
                        HealthDigest(entries: [
                            .init(backend: "use-vllm-1", state: .open, errorRate: 0.5, ttftP50Ms: 180, ttftP99Ms: 2400),
                            .init(backend: "euw-sglang-1", state: .healthy, errorRate: 0, ttftP50Ms: 0),
                        ])
                    )
                )
            ),
            .refresh(
                DigestRefresh(
                    origin: "euw-2",
                    load: DigestVersion(incarnation: 1, counter: 2),
                    health: DigestVersion(incarnation: 1, counter: 1),
                    age: .seconds(3)
                )
            ),
            .coordinate("euw-2", coordinate),
        ]
    }

    @Test(arguments: [
        GossipMessage.ping(sequence: 9, target: "use-2"),
        .ack(sequence: 9, coordinate: nil),
        .ack(
            sequence: UInt32.max,
            coordinate: VivaldiCoordinate(vector: Array(repeating: 0.5, count: 8), height: 0.0009765625, error: 1)
        ),
        .pingRequest(sequence: 4, target: "aps-1", address: HostPort(host: "gw-aps-1.internal", port: 7946)),
        .nack(sequence: 4),
        .gossip,
        .sync(reply: true),
    ])
    func everyMessageRoundTripsWithEveryKindOfUpdate(_ message: GossipMessage) throws {
        let packet = GossipPacket(sender: "use-1", message: message, updates: updates)
        #expect(try codec.decode(codec.encode(packet)) == packet)
    }

    @Test func entriesForBackendsThisNodeDoesNotKnowAreSkippedNotRefused() throws {
        let newer = GossipCodec(backends: ["use-vllm-1", "euw-sglang-1", "aps-trt-1"])
        let packet = GossipPacket(
            sender: "aps-1",
            message: .gossip,
            updates: [
                .digest(
                    NodeDigest(
                        origin: "aps-1",
                        version: DigestVersion(incarnation: 1, counter: 1),
                        age: .zero,
                        payload: .load(
                            LoadDigest(entries: [
                                .init(backend: "aps-trt-1", waiting: 1), .init(backend: "use-vllm-1", waiting: 2),
                            ])
                        )
                    )
                )
            ]
        )
        let decoded = try codec.decode(newer.encode(packet))
        guard case .digest(let d) = decoded.updates.first, case .load(let load) = d.payload else {
            Issue.record("expected a load digest")
            return
        }
        #expect(load.entries.map(\.backend) == ["use-vllm-1"])
    }

    @Test func truncatedCorruptedAndRandomBytesAreRefusedWithoutTrapping() {
        let valid = codec.encode(GossipPacket(sender: "use-1", message: .gossip, updates: updates))
        var rng = Xoshiro256(seed: 6)
        var refused = 0
        for length in 0..<valid.count {
            do { _ = try codec.decode(Array(valid.prefix(length))) } catch { refused += 1 }
        }
        #expect(refused == valid.count, "every truncation is refused")
        for _ in 0..<20_000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? codec.decode(bytes)
            let noise = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? codec.decode(noise)
        }
        #expect(throws: GossipError.self) { try codec.decode([1, 99, 1, 65, 0, 0]) }
    }

    @Test func packetsStayUnderThe1400ByteLimitHoweverMuchIsQueued() {
        var instance = GossipInstance(
            node: "use-1",
            region: "us-east",
            address: HostPort(host: "10.0.0.1", port: 7946),
            now: .zero
        )
        var rng = Xoshiro256(seed: 1)
        let peers = (0..<400).map { i in
            GossipPacket(
                sender: NodeID("n\(i)"),
                message: .gossip,
                updates: [
                    .member(
                        MemberUpdate(
                            node: NodeID("a-rather-long-node-name-\(i)"),
                            region: "ap-southeast-2",
                            address: HostPort(host: "gateway-\(i).ap-southeast-2.example.internal", port: 7946),
                            incarnation: 1_790_000_000,
                            status: .alive,
                            from: NodeID("n\(i)")
                        )
                    )
                ]
            )
        }
        for p in peers { _ = instance.received(p, from: HostPort(host: "10.0.9.9", port: 7946), now: .zero, rng: &rng) }
        let actions = instance.tick(now: .zero + .seconds(1), rng: &rng)
        let sizes = actions.compactMap { if case .send(let b, _) = $0 { b.count } else { nil } }
        #expect(!sizes.isEmpty)
        #expect(sizes.allSatisfy { $0 + GossipEnvelope.overheadBytes <= 1400 })
        #expect(sizes.max()! > 1000, "packets are filled, not sent nearly empty")
    }
}
