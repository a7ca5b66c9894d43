import IsobarModel

extension Router {
    // MARK: - Queries

    /// Requests this node has in flight on `backend`.
    public func inFlight(on backend: BackendID) -> Int { backendIndex[backend].map { endpoints[$0].requests } ?? 0 }

    /// Requests the router is tracking (in flight, waiting for a retry, or held).
    public var activeRequests: Int { requests.count }

    /// False while `backend` is passed over: its last call could not reach it (connect failure, reset or
    /// timeout), no call succeeded since, and the cooldown since that failure has not run out.
    public func isUsable(_ backend: BackendID, now: Instant) -> Bool {
        backendIndex[backend].map { isUsable(index: $0, now: now) } ?? false
    }

    /// The model groups clients can ask for, sorted by name.
    public var modelNames: [ModelName] { knownModels }

    /// What the node knows of each endpoint, for `/metrics`.
    public func endpointStatus(now: Instant) -> [EndpointStatus] {
        let staleAfter = configuration.balancing.staleAfter
        return endpoints.indices.map { b in
            let e = endpoints[b]
            let usable = isUsable(index: b, now: now)
            return EndpointStatus(
                backend: e.backend.name,
                requests: e.requests,
                awaitingFirstToken: e.awaitingFirstToken,
                prefillTokens: e.prefillTokens,
                decodeStreams: e.decodeStreams,
                prefillRate: e.prefillRate,
                decodeRate: e.decodeRate,
                lastScore: e.lastScore,
                stale: e.backend.metricsURL != nil && e.freshSample(at: now, staleAfter: staleAfter) == nil,
                breaker: e.breaker.state,
                paused: (e.pausedUntil ?? now) > now,
                usable: usable,
                sample: e.sample,
                sampleFrom: e.sampleFrom,
                errorRate: e.breaker.recentErrorRate,
                ttftP50: e.ttfts.quantile(0.5),
                ttftP99: e.ttfts.quantile(0.99),
                peerRequests: e.peerRequests,
                reportedDown: e.reportedDown,
                state: e.healthState(usable: usable, now: now)
            )
        }
    }

    // MARK: - Candidates

    /// Whether endpoint `b` may be sent a request at all at `now`: its breaker admits an attempt and it
    /// asked for no pause still running.
    func isAdmitted(index b: Int, now: Instant) -> Bool {
        endpoints[b].breaker.admits(at: now) && (endpoints[b].pausedUntil ?? now) <= now
    }

    /// Whether endpoint `b` may be picked at `now` while another can serve: it is admitted, and it was not
    /// found unreachable within the cooldown (unless a call succeeded since).
    func isUsable(index b: Int, now: Instant) -> Bool {
        guard isAdmitted(index: b, now: now) else { return false }
        // Reached only from its region: through a live node there, or not at all.
        guard hasRoute(to: b, now: now) else { return false }
        // Another region's endpoint its own nodes cannot use is passed over unless this node reached it
        // since they said so.
        if endpoints[b].reportedDown, !endpoints[b].isLocal, endpoints[b].lastSuccess == nil { return false }
        guard let failure = endpoints[b].lastFailure else { return true }
        return (endpoints[b].lastSuccess ?? .zero) > failure || now - failure >= configuration.circuitBreaker.cooldown
    }

    /// Removes from `scratch` the deployments whose endpoint already has `maxQueuePerEndpoint` requests
    /// waiting for their first token (this node's, plus other clients' queue from a fresh scrape: an
    /// endpoint whose scrapes stopped is not held full forever by its last sample).
    mutating func dropFullEndpoints(group g: Int, now: Instant) {
        guard let cap = configuration.admission.maxQueuePerEndpoint else { return }
        let staleAfter = configuration.balancing.staleAfter
        scratch.removeAll { d in
            let b = groups[g].backendOf[d]
            let mine = endpoints[b].awaitingFirstToken
            let waiting = endpoints[b].freshSample(at: now, staleAfter: staleAfter)?.waiting ?? 0
            return max(mine, waiting) >= cap
        }
    }

    /// What the estimates of one request on every candidate share, worked out once per decision.
    struct EstimateContext {
        var balancing: BalancingSettings
        var staleAfter: Duration
        var meanPrompt: Double
        var meanOutput: Double
    }

    func estimateContext(group g: Int) -> EstimateContext {
        EstimateContext(
            balancing: configuration.balancing,
            staleAfter: configuration.balancing.staleAfter,
            meanPrompt: max(1, groups[g].promptLengths.mean),
            meanOutput: groups[g].outputLengths.count > 0 ? max(1, groups[g].outputLengths.mean) : 256
        )
    }

    /// The expected time to first token of `request` on the endpoint at `e`, in seconds, with the prompt tokens
    /// the endpoint probably has cached and the token work ahead of the request.
    ///
    ///     TTFT ≈ admission wait
    ///          + (this node's unprefilled tokens there + other clients' queued prompt tokens
    ///             + the request's uncached tokens) / prefill rate
    ///          + kvPressure × u² / (1 − u)      (u: scraped KV usage)
    ///          + RTT to the endpoint's region
    ///          + stale penalty (when the endpoint is scraped and its last sample is old)
    ///
    /// Other clients' queue is the scraped waiting count beyond this node's own requests awaiting their
    /// first token, at the model's mean prompt length. A stale sample keeps counting (never read as idle).
    /// The admission wait is the time until the engine has a free sequence slot and KV room for the
    /// prompt (see `admissionWait`): on a saturated engine it, not prefill, decides the wait.
    ///
    /// Static and through a pointer, so that a decision copies neither the router nor the endpoint (a copy
    /// retains every reference it holds): this runs for every candidate of every decision.
    static func expectedTTFT(
        _ e: UnsafePointer<Endpoint>,
        request: RequestProfile,
        context c: EstimateContext,
        now: Instant
    )
        -> (ttft: Double, cached: Int, outstanding: Double, kvTokens: Double)
    {
        let balancing = c.balancing
        let sample = e.pointee.sample
        let stale = e.pointee.isStale(at: now, staleAfter: c.staleAfter)
        var othersQueued = 0.0
        if let waiting = sample?.waiting {
            if waiting > e.pointee.awaitingFirstToken {
                othersQueued = Double(waiting - e.pointee.awaitingFirstToken) * c.meanPrompt
            }
        } else {
            // Without a queue gauge, other nodes' prompts not yet prefilled there (from gossip) are ahead.
            othersQueued = Double(e.pointee.peerPrefillTokens)
        }
        var cached = 0
        if !request.prefixHashes.isEmpty {
            cached = min(
                request.promptTokens - 1,
                e.pointee.prefixes.matchedPrefix(request.prefixHashes) * request.hashBlockTokens
            )
            cached = max(0, cached)
        }
        let uncached = Double(max(1, request.promptTokens - cached))
        let queue = Double(e.pointee.prefillTokens) + othersQueued
        var kv = Double(e.pointee.kvTokens)
        if let usage = sample?.kvUsage { kv = max(kv, usage * Double(e.pointee.kvCapacityTokens)) }
        let wait = admissionWait(e, kvTokens: kv, queuedTokens: queue, prompt: request.promptTokens, context: c)
        var ttft = wait + (queue + uncached) / e.pointee.prefillRate
        if let u = sample?.kvUsage {
            let usage = min(max(u, 0), 0.98)
            ttft += balancing.kvPressureSeconds * usage * usage / (1 - usage)
        }
        ttft += e.pointee.rtt
        if stale { ttft += balancing.stalePenaltySeconds }
        let outstanding = queue + Double(e.pointee.decodeTokens)
        return (ttft, cached, outstanding, kv)
    }

    /// Seconds until endpoint `e` can start a new request of `prompt` tokens: zero while it has a free
    /// sequence slot and KV room; else the departures it must wait for, at the rate requests leave a full
    /// engine (decode rate ÷ mean output length). Requests in the engine are the larger of this node's
    /// ledger and the scraped running + waiting (other clients' too). KV room is short by what is in use
    /// (`kvTokens`) plus the prompts queued ahead (`queuedTokens`, admitted first) plus this prompt, beyond
    /// the capacity: on a KV-bound engine the queue, not the slot count, sets the wait.
    static func admissionWait(
        _ e: UnsafePointer<Endpoint>,
        kvTokens: Double,
        queuedTokens: Double,
        prompt: Int,
        context c: EstimateContext
    ) -> Double {
        let departures = e.pointee.decodeRate / c.meanOutput
        var wait = 0.0
        if let slots = e.pointee.slots {
            let sample = e.pointee.sample
            let scraped = (sample?.running ?? 0) + (sample?.waiting ?? 0)
            let inEngine = max(e.pointee.requests, scraped)
            if inEngine >= slots { wait = Double(inEngine - slots + 1) / departures }
        }
        let short = kvTokens + queuedTokens + Double(prompt) - Double(e.pointee.kvCapacityTokens)
        if short > 0 { wait = max(wait, short / (departures * (c.meanPrompt + c.meanOutput))) }
        return wait
    }

    /// Output tokens a request is expected to generate: its `max_tokens` capped at the model's learned
    /// output-length quantile (256 before enough completions were seen, when it sets none).
    func expectedOutput(_ request: RequestProfile, group g: Int) -> Int {
        let learned = groups[g].outputLengths.quantile(configuration.balancing.outputQuantile)
        switch (request.maxTokens, learned) {
        case (let limit?, let q?): return max(1, min(limit, q))
        case (let limit?, nil): return max(1, limit)
        case (nil, let q?): return q
        case (nil, nil): return 256
        }
    }

    // MARK: - Picking

    /// Picks one of the deployments in `scratch` with the group's policy and credits the ledger
    /// (`estimate`, then `pick`).
    mutating func plan(
        _ id: RequestID,
        group g: Int,
        reason: String,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> AttemptPlan {
        estimate(requests[id]!.profile, group: g, estimates: policies[g].readsEstimates, now: now)
        return pick(id, group: g, reason: reason, now: now, rng: &rng)
    }

    /// Fills `views` with the deployments in `scratch` as candidates for `request`: requests in flight,
    /// and with `estimates` the expected time to first token and the rest of the estimate.
    mutating func estimate(_ request: RequestProfile, group g: Int, estimates: Bool, now: Instant) {
        let context = estimateContext(group: g)
        views.removeAll(keepingCapacity: true)
        let backendOf = groups[g].backendOf
        // Remote candidates competing with local ones must beat them by the hysteresis.
        let mixed = estimates && scratch.contains { endpoints[backendOf[$0]].isLocal } && spillsOver(group: g)
        let hysteresis = mixed ? hysteresisSeconds : 0
        // Through a buffer pointer: endpoints are read in place, never copied, once per candidate.
        endpoints.withUnsafeBufferPointer { endpoints in
            for d in scratch where !estimates {
                views.append(PolicyCandidate(index: backendOf[d], inFlight: endpoints[backendOf[d]].requests))
            }
            for d in scratch where estimates {
                let b = backendOf[d]
                let endpoint = endpoints.baseAddress! + b
                let estimate = Self.expectedTTFT(endpoint, request: request, context: context, now: now)
                let remote = !endpoint.pointee.isLocal
                views.append(
                    PolicyCandidate(
                        index: b,
                        inFlight: endpoint.pointee.requests,
                        outstandingTokens: estimate.outstanding,
                        expectedTTFT: estimate.ttft + (remote ? hysteresis : 0),
                        cachedTokens: estimate.cached,
                        latency: Self.peakLatency(endpoint, now: now),
                        kvTokens: estimate.kvTokens,
                        remote: remote
                    )
                )
            }
        }
        if estimates {
            for view in views { endpoints[view.index].lastScore = view.expectedTTFT }
        }
    }

    /// Picks one of the candidates in `views` (filled by `estimate`) with the group's policy and credits
    /// the ledger.
    mutating func pick(
        _ id: RequestID,
        group g: Int,
        reason: String,
        now: Instant,
        rng: inout some RandomNumberGenerator
    ) -> AttemptPlan {
        let request = requests[id]!.profile
        let (pick, why): (Int, PickReason)
        if scratch.count == 1 {
            (pick, why) = (0, reason == "initial" || reason == "released" ? .only : .retry)
        } else {
            (pick, why) = policies[g].pick(
                from: views,
                affinityBudget: configuration.balancing.affinityBudgetSeconds,
                rng: &rng
            )
        }
        let deployment = scratch[pick]
        let chosen = views[pick]
        let b = chosen.index
        let output = expectedOutput(request, group: g)
        let uncached = max(1, request.promptTokens - chosen.cachedTokens)
        let uncontended = endpoints[b].awaitingFirstToken == 0 && (endpoints[b].sample?.waiting ?? 0) == 0
        let attempt = AttemptID(nextAttempt)
        nextAttempt &+= 1
        attempts[attempt] = AttemptState(
            request: id,
            deployment: deployment,
            backend: b,
            promptTokens: request.promptTokens,
            uncachedTokens: uncached,
            expectedOutput: output,
            uncontended: uncontended,
            pickedAt: now
        )
        endpoints[b].breaker.attemptStarted(at: now)
        endpoints[b].lastPicked = now
        endpoints[b].requests += 1
        endpoints[b].awaitingFirstToken += 1
        endpoints[b].prefillTokens += uncached
        endpoints[b].decodeTokens += output
        endpoints[b].kvTokens += request.promptTokens + output / 2
        pin(request.session, to: b, now: now)
        if !request.prefixHashes.isEmpty {
            endpoints[b].prefixes.insert(request.prefixHashes, blockTokens: request.hashBlockTokens)
        }
        let state = requests[id]!
        var via: NodeID?
        if endpoints[b].needsHop {
            let peers = Array(hopTargets(in: endpoints[b].backend.region, now: now))
            if !peers.isEmpty {
                via = peers[Int(rng.next() % UInt64(peers.count))]
                attempts[attempt]!.via = via
            }
        }
        requests[id]!.attemptsMade += 1
        if !state.tried.contains(deployment) { requests[id]!.tried.append(deployment) }
        let explained: [CandidateView] =
            configuration.explainsDecisions
            ? views.map {
                CandidateView(
                    backend: endpoints[$0.index].backend.name,
                    inFlight: $0.inFlight,
                    expectedTTFT: $0.expectedTTFT,
                    cachedTokens: $0.cachedTokens
                )
            } : []
        return AttemptPlan(
            attempt: attempt,
            request: id,
            deployment: groups[g].model.deployments[deployment],
            region: endpoints[b].backend.region,
            attemptNumber: state.attemptsMade + 1,
            deadline: state.deadline,
            timeouts: groups[g].timeouts[deployment],
            attemptLimit: endpoints[b].backend.timeouts.totalMs.map { .milliseconds($0) },
            via: via,
            decision: RouteDecision(
                policy: policies[g].kind,
                candidates: explained,
                picked: endpoints[b].backend.name,
                reason: reason,
                pick: why
            )
        )
    }

    /// Takes an ended attempt off its endpoint's ledger.
    mutating func release(_ state: AttemptState) {
        let b = state.backend
        precondition(endpoints[b].requests > 0, "in-flight ledger of \(endpoints[b].backend.name) would go negative")
        endpoints[b].requests -= 1
        if state.firstTokenSeen {
            endpoints[b].decodeStreams -= 1
        } else {
            endpoints[b].awaitingFirstToken -= 1
            endpoints[b].prefillTokens -= state.uncachedTokens
        }
        endpoints[b].decodeTokens -= state.expectedOutput
        endpoints[b].kvTokens -= state.promptTokens + state.expectedOutput / 2
    }

    /// Learns from an observed time to first token: the endpoint's peak-EWMA latency, and, when the
    /// attempt found the endpoint uncontended and had enough prompt to outweigh per-step overheads, its
    /// prefill rate. Only uncontended attempts teach the rate: a queue's wait depends on where the other
    /// requests were sent, and learning from it would make endpoints shun each other in turn.
    mutating func observeTTFT(_ state: AttemptState, now: Instant) {
        let observed = (now - state.pickedAt).seconds
        let b = state.backend
        endpoints[b].ttfts.add(observed)
        let prefill = observed - endpoints[b].rtt
        if state.uncontended, state.uncachedTokens >= Self.rateLearningTokens, prefill > 0 {
            let rate = Double(state.uncachedTokens) / prefill
            endpoints[b].prefillRate = Self.refined(endpoints[b].prefillRate, toward: rate, weight: 0.1)
        }
        let current = endpoints.withUnsafeBufferPointer { Self.peakLatency($0.baseAddress! + b, now: now) }
        endpoints[b].peakLatency = observed > current ? observed : 0.8 * current + 0.2 * observed
        endpoints[b].peakLatencyAt = now
    }

    /// Uncached prompt tokens an uncontended attempt needs before its TTFT teaches the prefill rate.
    static let rateLearningTokens = 1024

    /// An exponentially weighted step of a learned rate toward an observation, which is first bounded to
    /// half to twice the current value (one odd reading cannot swing it).
    static func refined(_ current: Double, toward observed: Double, weight: Double) -> Double {
        let bounded = min(2 * current, max(current / 2, observed))
        return (1 - weight) * current + weight * bounded
    }

    /// Seconds from this node to another region and back when the configuration does not say.
    static let defaultRTT = 0.05

    /// The endpoint's peak-EWMA latency decayed to `now` (10-second time constant, linear approximation
    /// of the exponential, floored at zero weight).
    static func peakLatency(_ endpoint: UnsafePointer<Endpoint>, now: Instant) -> Double {
        let peak = endpoint.pointee.peakLatency
        guard peak > 0 else { return 0 }
        let elapsed = max(0, (now - endpoint.pointee.peakLatencyAt).seconds)
        return peak * max(0.1, 1 - elapsed / 10)
    }
}

/// What a node knows of one endpoint, for `/metrics`: its ledger, its learned token rates and its last
/// score. (Scraped load is exposed by the scraper; picks by reason are counted where attempts are sent.)
public struct EndpointStatus: Sendable, Equatable {
    public var backend: BackendID
    /// The in-flight ledger: requests, those still waiting for their first token, uncached prompt
    /// tokens not yet prefilled, and streams decoding.
    public var requests: Int
    public var awaitingFirstToken: Int
    public var prefillTokens: Int
    public var decodeStreams: Int
    /// Prompt tokens per second it prefills and output tokens per second it decodes with a full batch.
    public var prefillRate: Double
    public var decodeRate: Double
    /// Expected time to first token, in seconds, when a request last considered it (0 before).
    public var lastScore: Double
    /// It has a metrics URL but no fresh sample.
    public var stale: Bool
    /// Its circuit breaker.
    public var breaker: CircuitBreaker.State
    /// It asked (`retry-after`) not to be sent requests for a while yet.
    public var paused: Bool
    /// It may be picked now while another endpoint can serve (breaker admits, not paused, not found
    /// unreachable within the cooldown).
    public var usable: Bool
    /// Its latest scraped load, fresh or not.
    public var sample: LoadSample?
    /// The peer whose gossip brought `sample`; nil when this node scraped it.
    public var sampleFrom: NodeID?
    /// Failed share of its recent attempts from this node, 0–1.
    public var errorRate: Double
    /// Observed time to first token over recent attempts from this node, in seconds.
    public var ttftP50: Double?
    public var ttftP99: Double?
    /// Requests other nodes have in flight there (from gossip).
    public var peerRequests: Int
    /// The nodes of its region all report it unusable.
    public var reportedDown: Bool
    /// Its state as health digests name it.
    public var state: HealthDigest.State
}
