import IsobarModel
import Testing

@testable import IsobarGossip

/// A few instances on a hand-run network: 5 ms one way, a fixed 10 ms step, packets encoded and decoded as
/// on the wire; `cut` silences a node (a crash or a pause).
struct TestMesh {
    var nodes: [GossipInstance]
    var cut: Set<Int> = []
    var now = Instant.zero
    var rng = Xoshiro256(seed: 3)
    var changes: [(time: Instant, observer: Int, member: Member)] = []
    var learned: [(observer: Int, digest: NodeDigest)] = []
    private var wire: [(at: Instant, to: Int, bytes: [UInt8], from: Int, sync: Bool?)] = []

    static func address(_ i: Int) -> HostPort { HostPort(host: "10.0.0.\(i + 1)", port: 7946) }

    /// Nodes not in `starting` (every node when nil) are started later with `start(_:)`.
    init(regions: [RegionID], configuration: GossipConfiguration = GossipConfiguration(), starting: Set<Int>? = nil) {
        let addresses = regions.indices.map(Self.address)
        nodes = regions.enumerated().map { i, region in
            GossipInstance(
                node: NodeID("n\(i)"),
                region: region,
                address: addresses[i],
                incarnation: 1,
                seeds: addresses,
                backends: ["b0", "b1"],
                configuration: configuration,
                now: .zero
            )
        }
        for i in nodes.indices where starting?.contains(i) ?? true { start(i) }
    }

    mutating func start(_ i: Int) { carryOut(nodes[i].start(now: now, rng: &rng), from: i) }

    mutating func carryOut(_ actions: [GossipAction], from i: Int) {
        for action in actions {
            switch action {
            case .send(let bytes, let to): post(bytes, to: to, from: i, sync: nil)
            case .sync(let bytes, let to): post(bytes, to: to, from: i, sync: false)
            case .memberChanged(let m): changes.append((now, i, m))
            case .digestLearned(let d): learned.append((i, d))
            }
        }
    }

    private mutating func post(_ bytes: [UInt8], to address: HostPort, from i: Int, sync: Bool?) {
        guard let to = nodes.indices.first(where: { Self.address($0) == address }), !cut.contains(i) else { return }
        wire.append((now + .milliseconds(5), to, bytes, i, sync))
    }

    mutating func run(for duration: Duration) {
        let end = now + duration
        while now < end {
            now = now + .milliseconds(10)
            let due = wire.filter { $0.at <= now }
            wire.removeAll { $0.at <= now }
            for m in due where !cut.contains(m.to) {
                guard let packet = try? nodes[m.to].codec.decode(m.bytes) else { continue }
                switch m.sync {
                case nil:
                    carryOut(nodes[m.to].received(packet, from: Self.address(m.from), now: now, rng: &rng), from: m.to)
                case false?:
                    let (reply, actions) = nodes[m.to].receivedSync(packet, now: now, rng: &rng)
                    carryOut(actions, from: m.to)
                    post(reply, to: Self.address(m.from), from: m.to, sync: true)
                case true?: carryOut(nodes[m.to].syncReplied(packet, now: now, rng: &rng), from: m.to)
                }
            }
            for i in nodes.indices where !cut.contains(i) && nodes[i].nextWakeup <= now {
                carryOut(nodes[i].tick(now: now, rng: &rng), from: i)
            }
        }
    }

    func status(of subject: Int, at observer: Int) -> Member.Status? {
        nodes[observer].members[NodeID("n\(subject)")]?.status
    }
}

@Suite struct GossipInstanceTests {
    @Test("a node alone (its join went to seeds not up yet) looks for the mesh every probe interval")
    func aLoneNodeKeepsLookingForTheMesh() {
        var rng = Xoshiro256(seed: 1)
        var node = GossipInstance(
            node: "n0",
            region: "a",
            address: TestMesh.address(0),
            incarnation: 1,
            seeds: (0..<5).map(TestMesh.address),
            backends: [],
            configuration: GossipConfiguration(),
            now: .zero
        )
        #expect(node.start(now: .zero, rng: &rng).count == 3, "the join: three of the four seeds")
        var seeks: [HostPort] = []
        var now = Instant.zero
        while now < Instant.zero + .seconds(10) {
            now = now + .milliseconds(200)
            for case .sync(_, let seed) in node.tick(now: now, rng: &rng) { seeks.append(seed) }
        }
        // Every second instead of at the next full sync 30 s on, each time a random seed.
        #expect(seeks.count == 10)
        #expect(Set(seeks).count == 4 && !seeks.contains(TestMesh.address(0)))
    }

    @Test("two nodes of a nine-node topology started seconds apart find each other within seconds")
    func nodesStartingApartMeet() {
        // Only n0 and, three seconds later, n5 run: a join or sync to any other node is lost. n5's join
        // goes to three of its eight seeds and (with this seed) misses n0; the next full sync is 30 s on.
        var mesh = TestMesh(regions: Array(repeating: "a", count: 9), starting: [0])
        mesh.cut = Set(1..<9)
        mesh.run(for: .seconds(3))
        mesh.cut.remove(5)
        mesh.start(5)
        mesh.run(for: .seconds(4))
        #expect(mesh.status(of: 5, at: 0) == .alive && mesh.status(of: 0, at: 5) == .alive)
    }

    @Test func nodesJoinThroughTheirSeedsAndProbeEachOther() {
        var mesh = TestMesh(regions: ["a", "a", "b", "b"])
        mesh.run(for: .seconds(5))
        for i in 0..<4 {
            #expect(mesh.nodes[i].liveMembers.count == 3, "node \(i) knows the three others")
            #expect(mesh.nodes[i].members.values.allSatisfy { $0.status == .alive })
        }
        #expect(mesh.nodes[0].counters.probes >= 3)
        let measured = mesh.nodes[0].members.keys.compactMap { mesh.nodes[0].measuredRTT(to: $0) }
        #expect(!measured.isEmpty && measured.allSatisfy { $0 < 0.05 }, "acks measure the ~10 ms RTT")
    }

    @Test func aSilentNodeIsSuspectedThenDeclaredDeadEverywhere() throws {
        var mesh = TestMesh(regions: ["a", "a", "b", "b", "b"])
        mesh.run(for: .seconds(5))
        let crashedAt = mesh.now
        mesh.cut = [4]
        mesh.run(for: .seconds(20))
        let suspected = try #require(mesh.changes.first { $0.member.node == "n4" && $0.member.status == .suspect })
        #expect(suspected.time - crashedAt <= .seconds(3), "the ring successor probes it within two intervals")
        for observer in 0..<4 { #expect(mesh.status(of: 4, at: observer) == .dead) }
        let lastDead = mesh.changes.filter { $0.member.node == "n4" && $0.member.status == .dead }.map(\.time).max()!
        // Lifeguard bounds for 5 nodes: 2–4 s, shrinking with confirmations.
        #expect(lastDead - suspected.time <= .seconds(5))
        #expect(
            mesh.changes.allSatisfy { $0.member.node == "n4" || $0.member.status == .alive },
            "nobody else is suspected"
        )
    }

    @Test func aPausedNodeRefutesItsSuspicionWithAHigherIncarnation() {
        // A longer suspicion window than a 4-node mesh gets by default, so the pause ends inside it.
        var configuration = GossipConfiguration()
        configuration.suspicionMinMultiple = 5
        var mesh = TestMesh(regions: ["a", "a", "a", "b"], configuration: configuration)
        mesh.run(for: .seconds(5))
        let before = mesh.nodes[3].incarnation
        mesh.cut = [3]
        mesh.run(for: .milliseconds(2500))
        #expect((0..<3).contains { mesh.status(of: 3, at: $0) == .suspect })
        mesh.cut = []
        mesh.run(for: .seconds(3))
        #expect(mesh.nodes[3].incarnation > before)
        #expect(mesh.nodes[3].counters.refutations >= 1)
        for observer in 0..<3 { #expect(mesh.status(of: 3, at: observer) == .alive) }
        #expect(!mesh.changes.contains { $0.member.status == .dead }, "resumed within the suspicion timeout: no death")
    }

    @Test func aNodeCutOffFromEveryoneRaisesItsLocalHealthMultiplier() {
        var mesh = TestMesh(regions: ["a", "a", "a", "a"])
        mesh.run(for: .seconds(5))
        #expect(mesh.nodes[0].healthMultiplier == 1)
        let floor = mesh.nodes[0].probeTimeout("n1")
        // Node 0 still runs, but nothing it sends arrives: no acks, no nacks.
        mesh.cut = [0]
        for _ in 0..<600 {
            mesh.now = mesh.now + .milliseconds(10)
            if mesh.nodes[0].nextWakeup <= mesh.now { _ = mesh.nodes[0].tick(now: mesh.now, rng: &mesh.rng) }
        }
        #expect(mesh.nodes[0].healthMultiplier > 1)
        #expect(mesh.nodes[0].probeTimeout("n1") > floor, "Lifeguard stretches its probe timeouts")
        #expect(mesh.nodes[0].healthMultiplier <= 8)
    }

    @Test func aLeavingNodeIsMarkedLeftNotDead() {
        var mesh = TestMesh(regions: ["a", "b", "c"])
        mesh.run(for: .seconds(4))
        mesh.carryOut(mesh.nodes[2].leave(now: mesh.now, rng: &mesh.rng), from: 2)
        mesh.cut = [2]
        mesh.run(for: .seconds(10))
        #expect(mesh.status(of: 2, at: 0) == .left)
        #expect(mesh.status(of: 2, at: 1) == .left)
    }

    @Test func suspicionTimeoutShrinksWithIndependentConfirmations() {
        var s = Suspicion(
            incarnation: 1,
            startedAt: .zero,
            minimum: .seconds(4),
            maximum: .seconds(10),
            expected: 3,
            suspecters: ["a"]
        )
        #expect(s.deadline == .zero + .seconds(10))
        s.suspecters.insert("b")
        let one = s.deadline
        s.suspecters.insert("c")
        let two = s.deadline
        s.suspecters.insert("d")
        #expect(one < .zero + .seconds(10) && two < one)
        #expect(s.deadline == .zero + .seconds(4))
        s.suspecters.insert("e")
        #expect(s.deadline == .zero + .seconds(4), "never below the minimum")
    }

    @Test func digestsArePublishedOnMeaningfulChangeAndLearnedByPeers() {
        var mesh = TestMesh(regions: ["a", "b", "b"])
        mesh.run(for: .seconds(3))
        let load = LoadDigest(entries: [.init(backend: "b0", waiting: 2, running: 10, kvUsage: 0.3)])
        mesh.nodes[0].publish(load: load, health: HealthDigest(), now: mesh.now)
        mesh.run(for: .seconds(2))
        let first = mesh.nodes[0].digest(ofSelf: .load)
        #expect(mesh.nodes[2].digest(of: "n0", .load, now: mesh.now)?.payload == .load(load))
        // Within the change thresholds: no new version.
        mesh.nodes[0].publish(
            load: LoadDigest(entries: [.init(backend: "b0", waiting: 2, running: 10, kvUsage: 0.32)]),
            health: HealthDigest(),
            now: mesh.now
        )
        #expect(mesh.nodes[0].digest(ofSelf: .load) == first)
        let busier = LoadDigest(entries: [.init(backend: "b0", waiting: 9, running: 64, kvUsage: 0.9)])
        mesh.nodes[0].publish(load: busier, health: HealthDigest(), now: mesh.now)
        #expect(mesh.nodes[0].digest(ofSelf: .load)! > first!)
        mesh.run(for: .seconds(2))
        #expect(mesh.nodes[1].digest(of: "n0", .load, now: mesh.now)?.payload == .load(busier))
        #expect(mesh.nodes[1].digest(of: "n0", .load, now: mesh.now)!.age < .seconds(2))
        // Held data past the staleness bound is no longer offered to routing.
        #expect(mesh.nodes[1].digest(of: "n0", .load, now: mesh.now + .seconds(120)) == nil)
    }

    @Test func aDigestOlderThanTheStalenessBoundIsIgnored() {
        var node = GossipInstance(node: "n0", region: "a", address: TestMesh.address(0), backends: ["b0"], now: .zero)
        var rng = Xoshiro256(seed: 1)
        let old = NodeDigest(
            origin: "n1",
            version: DigestVersion(incarnation: 1, counter: 1),
            age: .seconds(600),
            payload: .load(LoadDigest(entries: [.init(backend: "b0", waiting: 1)]))
        )
        let actions = node.received(
            GossipPacket(sender: "n1", message: .gossip, updates: [.digest(old)]),
            from: TestMesh.address(1),
            now: .zero,
            rng: &rng
        )
        #expect(!actions.contains { if case .digestLearned = $0 { true } else { false } })
        #expect(node.counters.staleDigestsIgnored == 1)
    }

    @Test func exactlyOneLiveNodeOfARegionReportsEachBackendsGauges() {
        var mesh = TestMesh(regions: ["a", "a", "a", "a", "b"])
        mesh.run(for: .seconds(5))
        for backend in (0..<20).map({ BackendID("engine-\($0)") }) {
            let reporters = (0..<4).filter { mesh.nodes[$0].reportsGauges(of: backend, in: "a") }
            #expect(reporters.count == 1)
            #expect(!mesh.nodes[4].reportsGauges(of: backend, in: "a"))
        }
    }

    @Test func theRTTToARegionIsEstimatedFromProbes() {
        var mesh = TestMesh(regions: ["a", "a", "b"])
        mesh.run(for: .seconds(30))
        let estimate = mesh.nodes[0].estimatedRTT(to: "b")
        #expect(estimate.map { $0 > 0.005 && $0 < 0.05 } == true, "about the 10 ms the test network takes")
    }
}
