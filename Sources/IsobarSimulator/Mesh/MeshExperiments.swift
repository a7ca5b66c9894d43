import IsobarGossip
import IsobarModel

/// The issue-6 gossip measurements, run on `MeshSimulation`: how fast a membership change spreads, how fast
/// a crash is detected, whether a CPU-starved node causes false deaths, and what gossip costs in bytes.
/// The tests run them on small meshes; `make bench` runs them at 100 nodes with 1 % loss and prints them
/// against the targets.
public enum MeshExperiments {
    /// Three regions with the RTTs of us-east, eu-west and ap-south.
    public static let threeRegions = Network(
        rttSeconds: [
            RegionPair("us-east", "eu-west"): 0.075,
            RegionPair("us-east", "ap-south"): 0.190,
            RegionPair("eu-west", "ap-south"): 0.120,
        ],
        sameRegionRTTSeconds: 0.0008,
        defaultRTTSeconds: 0.15
    )

    /// `count` nodes spread evenly over the three regions.
    public static func threeRegionNodes(_ count: Int) -> [MeshSimulation.NodeSpec] {
        let regions: [RegionID] = ["us-east", "eu-west", "ap-south"]
        return (0..<count).map {
            MeshSimulation.NodeSpec(name: NodeID("\(regions[$0 % 3])-\($0 / 3)"), region: regions[$0 % 3])
        }
    }

    /// Records what the simulation reports.
    final class Recorder {
        var changes: [MeshSimulation.Change] = []
        var digests: [(time: Double, observer: Int, digest: NodeDigest)] = []
    }

    /// How a measured mesh starts: every node booting at once and joining through gossip (the 100-node
    /// targets are measured so), or settled (`MeshSimulation.startSettled`: everyone already knows everyone),
    /// which runs a 500-node mesh in seconds.
    public enum Start: Sendable {
        case cold
        case settled
    }

    /// Seconds a started mesh of `count` nodes is run before measuring: until everyone knows everyone, or,
    /// when settled, until probes have measured some RTTs.
    static func warmUp(_ count: Int, _ start: Start) -> Double {
        switch start {
        case .cold: 30 + Double(count) / 20
        case .settled: 10
        }
    }

    /// Starts nodes `0..<count` of `mesh` as `start` says and runs them for the warm-up.
    static func warm(_ mesh: inout MeshSimulation, count: Int, _ start: Start) {
        switch start {
        case .cold: for i in 0..<count { mesh.start(i) }
        case .settled: mesh.startSettled(0..<count)
        }
        mesh.run(until: warmUp(count, start))
    }

    /// A started mesh of `count` nodes, run for `warmUp(count, start)` seconds.
    static func warmMesh(
        count: Int,
        lossRate: Double,
        seed: UInt64,
        start: Start = .cold,
        backends: [BackendID] = [],
        recorder: Recorder
    ) -> MeshSimulation {
        var mesh = MeshSimulation(
            nodes: threeRegionNodes(count),
            network: threeRegions,
            lossRate: lossRate,
            backends: backends,
            seed: seed
        )
        mesh.onChange = { recorder.changes.append($0) }
        mesh.onDigest = { recorder.digests.append(($0, $1, $2)) }
        warm(&mesh, count: count, start)
        return mesh
    }

    // MARK: - Membership spread

    /// Seconds until a new node's arrival, and a node's graceful leave, are known to 99 % of the other
    /// live nodes; the worst of `trials` each.
    public struct Spread: Sendable {
        public var joinP99Seconds: Double
        public var leaveP99Seconds: Double
        /// Every node converged to the same membership after warm-up.
        public var converged: Bool
    }

    public static func spread(
        nodes count: Int,
        lossRate: Double,
        seed: UInt64,
        trials: Int = 3,
        start: Start = .cold
    ) -> Spread {
        let recorder = Recorder()
        // The last `trials` nodes join later, one at a time.
        var mesh = MeshSimulation(
            nodes: threeRegionNodes(count + trials),
            network: threeRegions,
            lossRate: lossRate,
            seed: seed
        )
        mesh.onChange = { recorder.changes.append($0) }
        warm(&mesh, count: count, start)
        let converged = (0..<count).allSatisfy { mesh.instances[$0]?.liveMembers.count == count - 1 }
        var join = 0.0
        var leave = 0.0
        // Seconds until `count` observers (every live node but the subject: one joins and one leaves per
        // trial) saw `subject` become `status` after `change`.
        func measure(
            _ subject: Int,
            becomes status: Member.Status,
            after change: (inout MeshSimulation) -> Void
        ) -> Double {
            recorder.changes.removeAll()
            change(&mesh)
            let since = mesh.now
            mesh.run(until: since + 15)
            return reach(recorder.changes, subject: mesh.specs[subject].name, status: status, since: since, of: count)
        }
        for trial in 0..<trials {
            let joiner = count + trial
            join = max(join, measure(joiner, becomes: .alive) { $0.start(joiner) })
            leave = max(leave, measure(trial, becomes: .left) { $0.leave(trial) })
        }
        return Spread(joinP99Seconds: join, leaveP99Seconds: leave, converged: converged)
    }

    /// Seconds from `since` until 99 % of `others` observers saw `subject` reach `status` (infinity if never).
    static func reach(
        _ changes: [MeshSimulation.Change],
        subject: NodeID,
        status: Member.Status,
        since: Double,
        of others: Int
    ) -> Double {
        var seen: [Int: Double] = [:]
        for c in changes where c.member.node == subject && c.member.status == status && seen[c.observer] == nil {
            seen[c.observer] = c.time - since
        }
        let needed = Int((Double(others) * 0.99).rounded(.up))
        guard seen.count >= needed else { return .infinity }
        return seen.values.sorted()[needed - 1]
    }

    // MARK: - Crash detection

    /// Crash detection over `trials` crashes: seconds from the crash to the first suspicion anywhere, and
    /// to the moment every live node holds the crashed node dead (the worst trial of each).
    public struct Detection: Sendable {
        public var firstSuspicionSeconds: [Double]
        public var deadEverywhereSeconds: [Double]
        public var worstSuspicion: Double { firstSuspicionSeconds.max() ?? .infinity }
        public var worstDeadEverywhere: Double { deadEverywhereSeconds.max() ?? .infinity }
    }

    public static func detection(
        nodes count: Int,
        lossRate: Double,
        seed: UInt64,
        trials: Int,
        start: Start = .cold
    ) -> Detection {
        let recorder = Recorder()
        var mesh = warmMesh(
            count: count,
            lossRate: lossRate,
            seed: seed,
            start: start,
            recorder: recorder
        )
        var result = Detection(firstSuspicionSeconds: [], deadEverywhereSeconds: [])
        var crashed = Set<Int>()
        for trial in 0..<trials {
            let victim = (trial * 7 + 1) % count
            guard crashed.insert(victim).inserted else { continue }
            recorder.changes.removeAll()
            let at = mesh.now + Double(trial % 5) * 0.173
            mesh.run(until: at)
            mesh.crash(victim)
            mesh.run(until: at + 25)
            let name = mesh.specs[victim].name
            let suspicion = recorder.changes.first { $0.member.node == name && $0.member.status == .suspect }
            result.firstSuspicionSeconds.append((suspicion?.time ?? .infinity) - at)
            let live = (0..<count).filter { !crashed.contains($0) }
            var last = 0.0
            for observer in live {
                let dead = recorder.changes.first {
                    $0.observer == observer && $0.member.node == name && $0.member.status == .dead
                }
                last = max(last, (dead?.time ?? .infinity) - at)
            }
            result.deadEverywhereSeconds.append(last)
        }
        return result
    }

    // MARK: - False positives

    /// Over `seconds` of simulated time with node 0 starved of CPU: how often a live node was declared
    /// dead by anyone (the target is none), and suspected.
    public struct FalsePositives: Sendable {
        public var simulatedSeconds: Double
        public var falseDeaths: Int
        public var falseSuspicions: Int
        public var refutations: Int
    }

    public static func falsePositives(
        nodes count: Int,
        lossRate: Double,
        seed: UInt64,
        seconds: Double
    ) -> FalsePositives {
        let recorder = Recorder()
        var mesh = warmMesh(
            count: count,
            lossRate: lossRate,
            seed: seed,
            recorder: recorder
        )
        recorder.changes.removeAll()
        mesh.starve(0)
        let start = mesh.now
        mesh.run(until: start + seconds)
        let deaths = recorder.changes.count { $0.member.status == .dead }
        let suspicions = recorder.changes.count { $0.member.status == .suspect }
        let refutations = mesh.instances.compactMap { $0?.counters.refutations }.reduce(0, +)
        return FalsePositives(
            simulatedSeconds: seconds,
            falseDeaths: deaths,
            falseSuspicions: suspicions,
            refutations: refutations
        )
    }

    // MARK: - Traffic and load freshness

    /// Gossip bytes per node per second (UDP with the envelope, plus TCP syncs), idle and while every node
    /// publishes changing load; and how far behind the publishers the load digests nodes hold are.
    public struct Traffic: Sendable {
        public var idleBytesPerNodePerSecond: Double
        public var loadedBytesPerNodePerSecond: Double
        /// How long a node's view of another's load lagged a newer published version, over every
        /// (node, origin) pair sampled each second: 99th percentile and worst.
        public var lagP99Seconds: Double
        public var lagMaxSeconds: Double
        public var digestsPerNodePerSecond: Double
    }

    public static func traffic(nodes count: Int, lossRate: Double, seed: UInt64, seconds: Double) -> Traffic {
        let recorder = Recorder()
        let regions: [RegionID] = ["us-east", "eu-west", "ap-south"]
        // Four engines per region; each node scrapes its region's and sends some traffic to each.
        let backendsOfRegion = Dictionary(
            uniqueKeysWithValues: regions.map { r in (r, (0..<4).map { BackendID("\(r)-engine-\($0)") }) }
        )
        let allBackends = regions.flatMap { backendsOfRegion[$0]! }
        var mesh = warmMesh(
            count: count,
            lossRate: lossRate,
            seed: seed,
            backends: allBackends,
            recorder: recorder
        )
        // Every engine's gauges move every 250 ms; a third of the nodes also spill requests to one engine of
        // the next region, whose in-flight count moves too. A node publishes the gauges of the engines it
        // reports for and its ledger for engines outside its region (its own region's nodes scrape those).
        var walk = Xoshiro256(seed: seed ^ 0x10AD)
        var gauges = Dictionary(uniqueKeysWithValues: allBackends.map { ($0, (waiting: 2, running: 16, kv: 0.4)) })
        var spill = Array(repeating: 3, count: count)
        func move() {
            for backend in allBackends {
                var g = gauges[backend]!
                g.waiting = max(0, g.waiting + Int.random(in: -2...2, using: &walk))
                g.running = min(64, max(0, g.running + Int.random(in: -3...3, using: &walk)))
                g.kv = min(1, max(0, g.kv + Double.random(in: -0.05...0.05, using: &walk)))
                gauges[backend] = g
            }
            for i in spill.indices { spill[i] = max(0, spill[i] + Int.random(in: -1...1, using: &walk)) }
        }
        func loads(_ i: Int) -> (LoadDigest, HealthDigest) {
            let region = mesh.specs[i].region
            var entries: [LoadDigest.Entry] = []
            for backend in backendsOfRegion[region]!
            where mesh.instances[i]?.reportsGauges(of: backend, in: region) == true {
                let g = gauges[backend]!
                entries.append(
                    LoadDigest.Entry(
                        backend: backend,
                        waiting: g.waiting,
                        running: g.running,
                        kvUsage: g.kv,
                        pendingPrefillTokens: g.waiting * 900
                    )
                )
            }
            if i % 3 == 0 {
                let next = regions[(regions.firstIndex(of: region)! + 1) % regions.count]
                entries.append(
                    LoadDigest.Entry(
                        backend: backendsOfRegion[next]![i % 4],
                        inFlight: spill[i],
                        pendingPrefillTokens: spill[i] * 700
                    )
                )
            }
            let health = HealthDigest(
                entries: allBackends.map { HealthDigest.Entry(backend: $0, ttftP50Ms: 180, ttftP99Ms: 900) }
            )
            return (LoadDigest(entries: entries), health)
        }
        func bytes() -> Int { zip(mesh.udpBytesSent, mesh.syncBytesSent).reduce(0) { $0 + $1.0 + $1.1 } }

        // Idle: every node publishes the same load each 250 ms (only heartbeats go out).
        var t = mesh.now
        for i in 0..<count {
            let (l, h) = loads(i)
            mesh.publish(i, load: l, health: h)
        }
        t += 15
        mesh.run(until: t)
        var before = bytes()
        let idleStart = t
        while t < idleStart + seconds {
            t += 0.25
            for i in 0..<count {
                let (l, h) = loads(i)
                mesh.publish(i, load: l, health: h)
            }
            mesh.run(until: t)
        }
        let idle = Double(bytes() - before) / seconds / Double(count)

        // Loaded: the gauges move every 250 ms.
        before = bytes()
        recorder.digests.removeAll()
        var published: [[(time: Double, version: DigestVersion)]] = Array(repeating: [], count: count)
        var lags: [Double] = []
        let loadStart = t
        var nextSample = loadStart + 2
        while t < loadStart + seconds {
            t += 0.25
            move()
            for i in 0..<count {
                let (l, h) = loads(i)
                mesh.publish(i, load: l, health: h)
                if let v = mesh.instances[i]?.digest(ofSelf: .load), published[i].last?.version != v {
                    published[i].append((t - 0.25, v))
                }
            }
            mesh.run(until: t)
            if t >= nextSample {
                nextSample += 1
                lags += sampleLags(mesh, published: published, now: t)
            }
        }
        let loaded = Double(bytes() - before) / seconds / Double(count)
        lags.sort()
        let digests = Double(recorder.digests.count) / seconds / Double(count)
        return Traffic(
            idleBytesPerNodePerSecond: idle,
            loadedBytesPerNodePerSecond: loaded,
            lagP99Seconds: lags.isEmpty ? .infinity : lags[min(lags.count - 1, Int(Double(lags.count) * 0.99))],
            lagMaxSeconds: lags.last ?? .infinity,
            digestsPerNodePerSecond: digests
        )
    }

    /// For each (observer, origin): zero if the observer holds the origin's newest load version, else how
    /// long ago the first version newer than the one it holds was published.
    static func sampleLags(
        _ mesh: MeshSimulation,
        published: [[(time: Double, version: DigestVersion)]],
        now: Double
    ) -> [Double] {
        var lags: [Double] = []
        let instant = MeshSimulation.instant(now)
        for observer in mesh.instances.indices {
            guard let instance = mesh.instances[observer] else { continue }
            for origin in published.indices where origin != observer {
                let history = published[origin]
                guard let newest = history.last else { continue }
                let held = instance.digest(of: mesh.specs[origin].name, .load, now: instant)?.version
                if held == newest.version {
                    lags.append(0)
                    continue
                }
                let missed = history.first { held == nil || $0.version > held! }
                lags.append(now - (missed?.time ?? now))
            }
        }
        return lags
    }
}
