import IsobarEngineModel
import IsobarModel
import IsobarRouting

/// One policy over one scenario: the discrete-event kernel that drives the real `Router` of every gateway
/// node and an `EngineModel` per backend replica.
///
/// Requests arrive per workload, go to a gateway node of their region, and are routed by that node's
/// `Router`; an attempt travels half the RTT to its backend, waits in the engine, and its first token and
/// completion travel half the RTT back. Failures (a backend down, a partition) are reported to the router,
/// which retries or fails over exactly as the gateway does. Memory grows with requests in flight, not
/// with requests served.
///
/// The nodes form a mesh as gateway nodes do: each scrapes the engines of its own region (and of regions
/// without a node) and learns the rest from its peers' load and health digests, published once a second
/// and arriving half an RTT later; a peer not heard from for `suspectAfter` is suspect (partitions).
struct SimulationRun {
    // MARK: Fleet and gateways
    let scenario: Scenario
    let backends: [Backend]
    var engines: [EngineModel]
    /// Events of each engine's step in progress; they take effect when the step ends.
    var stepEvents: [[EngineEvent]]
    var stepping: [Bool]
    /// Bumped when an engine crashes, so its pending step end is ignored.
    var epoch: [Int]
    var down: [Bool]
    var busySeconds: [Double]
    let backendIndex: [BackendID: Int]
    var routers: [Router]
    var routerRandom: [Xoshiro256]
    let nodeRegion: [RegionID]
    let nodesOfRegion: [RegionID: [Int]]
    var nodeCursor = 0
    /// Requests arrived so far, warm-up included: the next request's number in requests.csv.
    var arrivals: UInt64 = 0
    var partitions: [RegionPair: Int] = [:]

    // MARK: Requests
    var sources: [RequestSource]
    var upcoming: [GeneratedRequest?]
    var requests: [Request] = []
    var freeSlots: [Int] = []
    var offered = 0
    var queue = EventQueue<Event>(capacity: 4096)
    /// Requests a router holds (every endpoint full), by routing id.
    var heldSlots: [RequestID: Int] = [:]
    /// Engine counters as each node saw them at its last scrape, for rates.
    var lastScraped: [[EngineCounters]] = []
    /// The backends each node scrapes itself (`Topology.scrapes`); the rest it learns by gossip.
    let scrapedBy: [[Int]]
    /// The engines whose gauges each node's load digest carries: those of its own region.
    let reports: [Set<BackendID>]
    /// Each node's latest digests, and when it published them.
    var published: [(load: LoadDigest, health: HealthDigest, at: Double)?]
    /// When each node (row) last heard from each peer (column), and whether it holds the peer suspect.
    var heardFrom: [[Double]]
    var suspects: [[Bool]]

    // MARK: Results
    var result: PolicyResult
    var lastTokens: [Int]
    var lastMeasuredCompletion = 0.0
    var firstMeasuredArrival = Double.infinity
    let record: ((RequestRecord) -> Void)?
    var now = 0.0

    struct Request {
        var generation: UInt32 = 0
        var sequence: UInt64 = 0
        var workload = 0
        var node = 0
        var arrival = 0.0
        var promptTokens = 0
        var outputTokens = 0
        var prefixHashes: [UInt64] = []
        var hashBlockTokens = 512
        var attempt: AttemptPlan?
        var backend = -1
        var firstTokenAt: Double?
        var measured = false
        var pendingFailure: UpstreamFailure?
    }

    enum Event {
        case arrival(workload: Int)
        case deliver(slot: Int, generation: UInt32)
        /// The failure waits in the request (`pendingFailure`), so events stay plain values.
        case attemptFailed(slot: Int, generation: UInt32)
        case retry(slot: Int, generation: UInt32)
        case stepDone(backend: Int, epoch: Int)
        case fault(index: Int, starts: Bool)
        case sample
        /// Gateway node `node` scrapes the engines it watches.
        case scrape(node: Int)
        /// Gateway node `node` publishes its digests to its peers.
        case publish(node: Int)
        /// The digests `from` published reach `to`.
        case digestArrives(from: Int, to: Int)
        /// A held request's hold may have run out: ask the router of `node`.
        case holdExpiry(node: Int)
    }

    init(
        scenario: Scenario,
        policy: PolicyKind,
        traces: TraceCache,
        sampleInterval: Double,
        record: ((RequestRecord) -> Void)?
    ) throws(SimulatorError) {
        self.scenario = scenario
        var topology = scenario.topology
        topology.routing.policy = policy
        for i in topology.models.indices { topology.models[i].policy = nil }
        backends = topology.backends
        engines = backends.map { EngineModel(profile: scenario.profile(of: $0) ?? EngineProfile.fixed) }
        stepEvents = Array(repeating: [], count: backends.count)
        stepping = Array(repeating: false, count: backends.count)
        epoch = Array(repeating: 0, count: backends.count)
        down = Array(repeating: false, count: backends.count)
        busySeconds = Array(repeating: 0, count: backends.count)
        lastTokens = Array(repeating: 0, count: backends.count)
        backendIndex = Dictionary(uniqueKeysWithValues: backends.enumerated().map { ($1.name, $0) })
        for i in topology.backends.indices {
            guard let profile = scenario.profile(of: topology.backends[i]) else { continue }
            topology.backends[i].capacity.fillHints(from: profile)
        }
        routers = topology.nodes.map { node in
            var configuration = RoutingConfiguration(topology: topology)
            for region in topology.regions {
                configuration.regionRTT[region.name] = scenario.network.rtt(node.region, region.name)
            }
            return Router(topology: topology, node: node.name, configuration: configuration)
        }
        lastScraped = Array(
            repeating: Array(repeating: EngineCounters(), count: topology.backends.count),
            count: topology.nodes.count
        )
        var seeds = SplitMix64(seed: scenario.seed ^ 0x5EED_0F_6A7E_3A75)
        routerRandom = topology.nodes.map { _ in Xoshiro256(seed: seeds.next()) }
        nodeRegion = topology.nodes.map(\.region)
        nodesOfRegion = Dictionary(grouping: topology.nodes.indices, by: { topology.nodes[$0].region })
        scrapedBy = topology.nodes.map { node in
            topology.backends.indices.filter { topology.scrapes(topology.backends[$0], from: node) { _ in true } }
        }
        reports = topology.nodes.map { node in Set(topology.backends.filter { $0.region == node.region }.map(\.name)) }
        published = Array(repeating: nil, count: topology.nodes.count)
        heardFrom = Array(repeating: Array(repeating: 0, count: topology.nodes.count), count: topology.nodes.count)
        suspects = Array(repeating: Array(repeating: false, count: topology.nodes.count), count: topology.nodes.count)
        sources = []
        for index in scenario.workloads.indices {
            sources.append(try RequestSource(scenario: scenario, workloadIndex: index, traces: traces))
        }
        upcoming = Array(repeating: nil, count: sources.count)
        result = PolicyResult(policy: policy)
        result.timeSeries.intervalSeconds = sampleInterval
        result.timeSeries.backends = backends.map(\.name)
        result.timeSeries.waiting = Array(repeating: [], count: backends.count)
        result.timeSeries.running = Array(repeating: [], count: backends.count)
        result.timeSeries.tokensPerSecond = Array(repeating: [], count: backends.count)
        self.record = record
    }

    // MARK: - Running

    /// Runs until every request offered has finished; returns what the policy achieved.
    mutating func run(progress: ((_ simulatedSeconds: Double, _ completed: Int) -> Void)? = nil) -> PolicyResult {
        for workload in sources.indices { scheduleNextArrival(workload) }
        for (index, fault) in scenario.faults.enumerated() {
            queue.schedule(at: fault.atSeconds, .fault(index: index, starts: true))
            if let until = fault.untilSeconds { queue.schedule(at: until, .fault(index: index, starts: false)) }
        }
        queue.schedule(at: 0, .sample)
        let interval = scenario.scrapeIntervalSeconds
        for node in routers.indices {
            // Nodes scrape out of phase with each other, as independent processes do.
            queue.schedule(at: interval * Double(node + 1) / Double(routers.count), .scrape(node: node))
            if routers.count > 1 {
                queue.schedule(at: Self.gossipInterval * Double(node + 1) / Double(routers.count), .publish(node: node))
            }
        }
        var handled = 0
        while let (time, event) = queue.pop() {
            now = time
            handle(event)
            handled += 1
            if handled & 0xFFFF == 0 { progress?(now, result.completed) }
        }
        finishResult()
        return result
    }

    private mutating func handle(_ event: Event) {
        switch event {
        case .arrival(let workload): arrive(workload)
        case .deliver(let slot, let generation):
            if requests[slot].generation == generation { deliver(slot) }
        case .attemptFailed(let slot, let generation):
            if requests[slot].generation == generation, let failure = requests[slot].pendingFailure {
                requests[slot].pendingFailure = nil
                attemptFailed(slot, failure)
            }
        case .retry(let slot, let generation):
            if requests[slot].generation == generation, let plan = requests[slot].attempt { dispatch(slot, plan) }
        case .stepDone(let backend, let stepEpoch):
            if epoch[backend] == stepEpoch { stepDone(backend) }
        case .fault(let index, let starts): apply(scenario.faults[index], starts: starts)
        case .sample: sample()
        case .scrape(let node): scrape(node)
        case .publish(let node): publish(node)
        case .digestArrives(let from, let to): digestArrives(from: from, to: to)
        case .holdExpiry(let node): releaseHeld(node)
        }
    }

    // MARK: - Arrivals

    private mutating func scheduleNextArrival(_ workload: Int) {
        if case .requests(let limit) = scenario.stop, offered >= limit { return }
        guard let next = sources[workload].next() else { return }
        if case .duration(let seconds) = scenario.stop, next.arrival > seconds { return }
        offered += 1
        upcoming[workload] = next
        queue.schedule(at: next.arrival, .arrival(workload: workload))
    }

    private mutating func arrive(_ workload: Int) {
        guard let generated = upcoming[workload] else { return }
        upcoming[workload] = nil
        scheduleNextArrival(workload)
        let spec = scenario.workloads[workload]
        let slot = allocateSlot()
        let node = gatewayNode(for: spec.region)
        requests[slot].workload = workload
        requests[slot].node = node
        requests[slot].arrival = now
        requests[slot].promptTokens = generated.promptTokens
        requests[slot].outputTokens = generated.outputTokens
        requests[slot].prefixHashes = generated.prefixHashes
        requests[slot].hashBlockTokens = generated.hashBlockTokens
        requests[slot].sequence = arrivals
        arrivals += 1
        requests[slot].measured = now >= scenario.warmupSeconds
        if requests[slot].measured {
            result.arrived += 1
            firstMeasuredArrival = min(firstMeasuredArrival, now)
        }
        let profile = RequestProfile(
            id: RequestID(requestKey(slot)),
            model: spec.model,
            operation: .chatCompletions,
            stream: spec.stream,
            maxTokens: generated.outputTokens,
            promptTokens: generated.promptTokens,
            prefixHashes: generated.prefixHashes,
            hashBlockTokens: generated.hashBlockTokens
        )
        let action = routers[node].requestArrived(profile, now: instant, rng: &routerRandom[node])
        carryOut(action, slot)
    }

    /// A gateway node of the client's region (round-robin among several), else any node.
    private mutating func gatewayNode(for region: RegionID) -> Int {
        nodeCursor &+= 1
        if let local = nodesOfRegion[region], !local.isEmpty { return local[nodeCursor % local.count] }
        return nodeCursor % routers.count
    }

    // MARK: - Route actions

    private mutating func carryOut(_ action: RouteAction, _ slot: Int) {
        switch action {
        case .send(let plan): dispatch(slot, plan)
        case .retry(let plan, let delay):
            requests[slot].attempt = plan
            queue.schedule(at: now + delay.seconds, .retry(slot: slot, generation: requests[slot].generation))
        case .reject, .catchAll: finish(slot, outcome: .rejected)
        case .hold(let until):
            heldSlots[RequestID(requestKey(slot))] = slot
            queue.schedule(at: Double(until.nanoseconds) / 1e9, .holdExpiry(node: requests[slot].node))
        }
    }

    /// Sends an attempt towards its backend.
    private mutating func dispatch(_ slot: Int, _ plan: AttemptPlan) {
        requests[slot].attempt = plan
        let backend = backendIndex[plan.deployment.backend]!
        requests[slot].backend = backend
        let from = nodeRegion[requests[slot].node]
        let oneWay = scenario.network.rtt(from, backends[backend].region) / 2
        let generation = requests[slot].generation
        if isPartitioned(from, backends[backend].region) {
            let timeout = scenario.topology.routing.timeouts.connectMs / 1000
            requests[slot].pendingFailure = .timeout(.connect)
            queue.schedule(at: now + timeout, .attemptFailed(slot: slot, generation: generation))
        } else if down[backend] {
            requests[slot].pendingFailure = .connect("connection refused")
            queue.schedule(at: now + 2 * oneWay, .attemptFailed(slot: slot, generation: generation))
        } else {
            queue.schedule(at: now + oneWay, .deliver(slot: slot, generation: generation))
        }
    }

    /// An attempt reaches its backend.
    private mutating func deliver(_ slot: Int) {
        let backend = requests[slot].backend
        guard !down[backend] else {
            attemptFailed(slot, .connect("connection refused"))
            return
        }
        let request = EngineRequest(
            id: engineID(slot),
            promptTokens: requests[slot].promptTokens,
            outputTokens: requests[slot].outputTokens,
            prefixHashes: requests[slot].prefixHashes,
            hashBlockTokens: requests[slot].hashBlockTokens
        )
        guard engines[backend].add(request) else {
            let body = UpstreamFailure.ErrorSummary(
                message: "prompt does not fit the KV cache",
                code: "context_length_exceeded"
            )
            attemptFailed(slot, .status(400, retryAfter: nil, body: body))
            return
        }
        if !stepping[backend] { startStep(backend) }
    }

    private mutating func attemptFailed(_ slot: Int, _ failure: UpstreamFailure) {
        guard let plan = requests[slot].attempt else { return }
        let node = requests[slot].node
        let action = routers[node].failed(plan.attempt, failure, now: instant, rng: &routerRandom[node])
        carryOut(action, slot)
        releaseHeld(node)
    }

    // MARK: - Engines

    private mutating func startStep(_ backend: Int) {
        stepEvents[backend].removeAll(keepingCapacity: true)
        let seconds = engines[backend].step(events: &stepEvents[backend])
        stepping[backend] = true
        busySeconds[backend] += seconds
        queue.schedule(at: now + seconds, .stepDone(backend: backend, epoch: epoch[backend]))
    }

    private mutating func stepDone(_ backend: Int) {
        stepping[backend] = false
        let events = stepEvents[backend]
        for event in events {
            switch event {
            case .firstToken(let id):
                guard let slot = slot(of: id) else { continue }
                let back = scenario.network.rtt(backends[backend].region, nodeRegion[requests[slot].node]) / 2
                requests[slot].firstTokenAt = now + back
                if let plan = requests[slot].attempt {
                    routers[requests[slot].node].firstToken(plan.attempt, now: instant)
                    releaseHeld(requests[slot].node)
                }
            case .finished(let id):
                guard let slot = slot(of: id) else { continue }
                complete(slot, backend: backend)
            case .token, .preempted:
                break
            }
        }
        if engines[backend].hasWork { startStep(backend) }
    }

    private mutating func complete(_ slot: Int, backend: Int) {
        let back = scenario.network.rtt(backends[backend].region, nodeRegion[requests[slot].node]) / 2
        let done = now + back
        let usage = Usage(promptTokens: requests[slot].promptTokens, completionTokens: requests[slot].outputTokens)
        if let plan = requests[slot].attempt {
            routers[requests[slot].node].completed(plan.attempt, usage: usage, now: instant)
        }
        if requests[slot].measured {
            let ttft = (requests[slot].firstTokenAt ?? done) - requests[slot].arrival
            let e2e = done - requests[slot].arrival
            let tokens = requests[slot].outputTokens
            let tpot = tokens > 1 ? (e2e - ttft) / Double(tokens - 1) : 0
            result.ttft.record(ttft)
            result.e2e.record(e2e)
            if tokens > 1 { result.tpot.record(tpot) }
            result.completed += 1
            result.promptTokens += requests[slot].promptTokens
            result.outputTokens += tokens
            let region = scenario.workloads[requests[slot].workload].region
            if backends[backend].region != region { result.crossRegion += 1 }
            if meets(ttft: ttft, tpot: tpot, e2e: e2e, tokens: tokens) { result.metSLO += 1 }
            lastMeasuredCompletion = max(lastMeasuredCompletion, done)
            costTokens(backend: backend, prompt: requests[slot].promptTokens, output: tokens)
        }
        let node = requests[slot].node
        finish(slot, outcome: .completed, done: done)
        releaseHeld(node)
    }

    private func meets(ttft: Double, tpot: Double, e2e: Double, tokens: Int) -> Bool {
        let slo = scenario.slo
        if let limit = slo.ttftSeconds, ttft > limit { return false }
        if let limit = slo.tpotSeconds, tokens > 1, tpot > limit { return false }
        if let limit = slo.e2eSeconds, e2e > limit { return false }
        return true
    }

    private mutating func costTokens(backend: Int, prompt: Int, output: Int) {
        let price = backends[backend].price
        result.costUSD += (Double(prompt) * price.inputPerMTok + Double(output) * price.outputPerMTok) / 1e6
    }

    // MARK: - Slots

    private mutating func allocateSlot() -> Int {
        if let slot = freeSlots.popLast() { return slot }
        requests.append(Request())
        return requests.count - 1
    }

    /// Records the end of a request and frees its slot.
    private mutating func finish(_ slot: Int, outcome: RequestRecord.Outcome, done: Double? = nil) {
        let request = requests[slot]
        if request.measured {
            switch outcome {
            case .rejected: result.rejected += 1
            case .cut: result.failedAfterFirstToken += 1
            case .completed: break
            }
        }
        if let record {
            record(
                RequestRecord(
                    policy: result.policy,
                    id: request.sequence,
                    region: scenario.workloads[request.workload].region,
                    backend: request.backend >= 0 ? backends[request.backend].name : nil,
                    arrival: request.arrival,
                    promptTokens: request.promptTokens,
                    outputTokens: request.outputTokens,
                    ttft: request.firstTokenAt.map { $0 - request.arrival },
                    e2e: done.map { $0 - request.arrival },
                    outcome: outcome
                )
            )
        }
        requests[slot] = Request(generation: request.generation &+ 1)
        freeSlots.append(slot)
    }

    private func engineID(_ slot: Int) -> UInt64 { UInt64(slot) | UInt64(requests[slot].generation) << 32 }

    private func slot(of id: UInt64) -> Int? {
        let slot = Int(id & 0xFFFF_FFFF)
        return slot < requests.count && requests[slot].generation == UInt32(id >> 32) ? slot : nil
    }

    private var instant: Instant { Instant(nanoseconds: Int64(now * 1e9)) }

    // MARK: - Faults

    private mutating func apply(_ fault: Fault, starts: Bool) {
        switch fault.kind {
        case .down(let ids):
            for backend in ids.compactMap({ backendIndex[$0] }) {
                if starts {
                    crash(backend)
                } else {
                    down[backend] = false
                }
            }
        case .partition(let a, let b):
            partitions[RegionPair(a, b), default: 0] += starts ? 1 : -1
        case .slow(let ids, let factor):
            for backend in ids.compactMap({ backendIndex[$0] }) { engines[backend].slowdown = starts ? factor : 1 }
        }
    }

    /// A backend stops: its requests fail (streams already answering are cut) and new ones are refused.
    private mutating func crash(_ backend: Int) {
        down[backend] = true
        epoch[backend] += 1
        // Requests that finish in the step under way have left the engine already; their ends never
        // reach the gateway, so they are lost with the rest.
        var lost: [UInt64] = []
        if stepping[backend] {
            for case .finished(let id) in stepEvents[backend] { lost.append(id) }
        }
        stepping[backend] = false
        for id in lost + engines[backend].abortAll() {
            guard let slot = slot(of: id) else { continue }
            if requests[slot].firstTokenAt != nil {
                if let plan = requests[slot].attempt {
                    routers[requests[slot].node].abandoned(plan.attempt, now: instant)
                }
                finish(slot, outcome: .cut)
            } else {
                attemptFailed(slot, .reset(responseStarted: false))
            }
        }
    }

    // MARK: - Gateway signals

    /// Requests are still in flight or yet to arrive: periodic events (samples, scrapes) go on only
    /// while this holds, or they would keep each other alive forever.
    private var hasWork: Bool {
        requests.count > freeSlots.count || upcoming.contains { $0 != nil }
    }

    /// The routing id of the request in `slot` (unique among requests in flight).
    private func requestKey(_ slot: Int) -> String {
        String(slot) + ":" + String(requests[slot].generation)
    }

    /// Node `node` scrapes the engines it watches, as a gateway's scraper does: gauges as they are now,
    /// counters as rates since its previous scrape; a scrape that cannot reach its engine (down, or
    /// across a partition) tells the router so, and one that can tells it the engine is back.
    private mutating func scrape(_ node: Int) {
        let interval = scenario.scrapeIntervalSeconds
        for backend in scrapedBy[node] {
            let name = backends[backend].name
            guard !down[backend], !isPartitioned(nodeRegion[node], backends[backend].region) else {
                routers[node].probed(name, reachable: false, now: instant)
                continue
            }
            let engine = engines[backend]
            let counters = engine.counters
            let before = lastScraped[node][backend]
            lastScraped[node][backend] = counters
            let sample = LoadSample(
                takenAt: instant,
                waiting: engine.waitingCount,
                running: engine.runningCount,
                kvUsage: engine.kvUsage,
                promptTokensPerSecond: Double(counters.promptTokens - before.promptTokens) / interval,
                generationTokensPerSecond: Double(counters.generationTokens - before.generationTokens) / interval,
                preemptionsPerSecond: Double(counters.preemptions - before.preemptions) / interval,
                kvBlockSize: engine.profile.blockSize,
                kvBlocks: engine.profile.numBlocks
            )
            routers[node].scraped(name, sample, now: instant)
            routers[node].probed(name, reachable: true, now: instant)
        }
        if hasWork { queue.schedule(at: now + interval, .scrape(node: node)) }
    }

    // MARK: - Gossip

    /// How often a node publishes its digests, in seconds: the gossip instance publishes a change at most
    /// once a second.
    static let gossipInterval = 1.0
    /// A peer not heard from this long is suspect (its reports stop counting), as the gossip's failure
    /// detector would have it after a probe round and the suspicion timeout.
    static let suspectAfter = 5.0

    /// Node `node` publishes its load digest (gauges of its region's engines, its ledger) and health
    /// digest; each peer receives them half an RTT later, unless a partition lies between.
    private mutating func publish(_ node: Int) {
        published[node] = (
            routers[node].loadDigest(reporting: reports[node], now: instant),
            routers[node].healthDigest(now: instant),
            now
        )
        for peer in routers.indices where peer != node {
            if now - heardFrom[node][peer] > Self.suspectAfter, !suspects[node][peer] {
                suspects[node][peer] = true
                routers[node].peerSuspected(scenario.topology.nodes[peer].name, true)
            }
            guard !isPartitioned(nodeRegion[node], nodeRegion[peer]) else { continue }
            let delay = min(scenario.network.rtt(nodeRegion[node], nodeRegion[peer]) / 2, 0.9 * Self.gossipInterval)
            queue.schedule(at: now + delay, .digestArrives(from: node, to: peer))
        }
        if hasWork { queue.schedule(at: now + Self.gossipInterval, .publish(node: node)) }
    }

    private mutating func digestArrives(from: Int, to: Int) {
        guard let digests = published[from] else { return }
        let origin = scenario.topology.nodes[from].name
        heardFrom[to][from] = now
        if suspects[to][from] {
            suspects[to][from] = false
            routers[to].peerSuspected(origin, false)
        }
        let age = Duration.milliseconds((now - digests.at) * 1000)
        routers[to].gossiped(digests.load, from: origin, age: age, now: instant)
        routers[to].gossiped(digests.health, from: origin)
    }

    private func isPartitioned(_ a: RegionID, _ b: RegionID) -> Bool {
        a != b && partitions[RegionPair(a, b), default: 0] > 0
    }

    /// Lets the router of `node` plan (or refuse) the requests it holds, now that capacity may have freed.
    private mutating func releaseHeld(_ node: Int) {
        guard routers[node].heldCount > 0 else { return }
        for (id, action) in routers[node].releaseHeld(now: instant, rng: &routerRandom[node]) {
            guard let slot = heldSlots.removeValue(forKey: id) else { continue }
            carryOut(action, slot)
        }
    }

    // MARK: - Samples and totals

    private mutating func sample() {
        for backend in backends.indices {
            let tokens = engines[backend].counters.generationTokens
            result.timeSeries.waiting[backend].append(engines[backend].waitingCount)
            result.timeSeries.running[backend].append(engines[backend].runningCount)
            let produced = max(0, tokens - lastTokens[backend])
            result.timeSeries.tokensPerSecond[backend].append(Double(produced) / result.timeSeries.intervalSeconds)
            lastTokens[backend] = tokens
        }
        if hasWork { queue.schedule(at: now + result.timeSeries.intervalSeconds, .sample) }
    }

    private mutating func finishResult() {
        result.makespanSeconds = now
        if firstMeasuredArrival.isFinite {
            result.windowSeconds = max(0, lastMeasuredCompletion - firstMeasuredArrival)
        }
        for backend in backends.indices {
            let counters = engines[backend].counters
            result.preemptions += counters.preemptions
            result.prefixQueryTokens += counters.prefixQueryTokens
            result.prefixHitTokens += counters.prefixHitTokens
            result.steps += counters.steps
            result.utilisation[backends[backend].name] = now > 0 ? min(1, busySeconds[backend] / now) : 0
            result.costUSD += backends[backend].price.perHour * now / 3600
        }
    }
}
