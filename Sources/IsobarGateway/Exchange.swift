import IsobarModel
import IsobarRouting
import IsobarWire
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// One client request from arrival to the end of its response (DESIGN §5): asks the router for a plan,
/// carries out each attempt on a pooled upstream connection, relays the answer and reports every outcome
/// back to the router. Event-loop bound: all of it runs on the client connection's event loop.
final class Exchange {
    let core: GatewayCore
    var reply: Reply
    let eventLoop: any EventLoop
    let pool: UpstreamPool
    let operation: Operation
    let clientBody: ByteBuffer
    let clientHeaders: HTTPHeaders
    let fields: RequestFields
    let profile: RequestProfile
    let arrivedAt: Instant
    /// Unix seconds at arrival (the `created` of translated responses).
    let created: Int

    /// The attempt in progress, if any.
    var attempt: Attempt?
    /// An attempt waiting for its backoff to end.
    var pendingRetry: (plan: AttemptPlan, task: Scheduled<Void>, since: Instant)?
    var totalTimer: Scheduled<Void>?
    /// While the router holds the request: wakes the router when the hold runs out.
    var holdTimer: Scheduled<Void>?
    var finished = false
    var firstTokenAt: Instant?
    /// Time spent waiting on upstreams and in backoff; the rest is gateway overhead.
    var upstreamTime: Duration = .zero
    var lastBackend: BackendID?
    /// The client bytes of a committed stream, kept for the catch-all's answer cache (`nil` when the
    /// cache is off or the stream outgrew an entry).
    var captured: [UInt8]?
    /// The virtual key the request came with (its own, or the one a forwarding node vouched for).
    let principal: Principal?
    /// What the request reserved of its key's limits here, settled when it ends.
    var quota: (charge: QuotaCharge, admittedAt: Double, leased: Bool)?
    /// Where the model's response cache keeps this request's answer, and for how long; nil when the model
    /// has no cache or the request may not be cached.
    let responseKey: (key: AnswerCache.Key, ttl: Duration, shared: Bool)?

    init(
        core: GatewayCore,
        request: HTTPRequest,
        operation: Operation,
        fields: RequestFields,
        reply: Reply,
        principal: Principal? = nil
    ) {
        self.core = core
        self.principal = principal
        self.reply = reply
        self.eventLoop = reply.writer.eventLoop
        self.pool = core.pools.pool(for: reply.writer.eventLoop)
        self.operation = operation
        self.clientBody = request.body
        self.clientHeaders = request.head.headers
        self.fields = fields
        self.arrivedAt = request.receivedAt
        self.created = Int(time(nil))
        self.profile = RequestProfile(
            id: reply.routingID,
            model: ModelName(fields.model),
            operation: operation,
            stream: fields.stream && operation.generates,
            maxTokens: fields.maxTokens,
            promptTokens: fields.promptTokensEstimate,
            session: request.head.headers.first(name: "x-isobar-session") ?? fields.user,
            forwarded: request.head.headers.contains(name: Self.hopHeader),
            prefixHashes: request.body.withUnsafeReadableBytes { fields.prefixHashes(in: $0) },
            hashBlockTokens: RequestFields.prefixBlockBytes / 4
        )
        self.responseKey = Self.responseKey(
            core: core,
            operation: operation,
            body: request.body,
            model: ModelName(fields.model),
            tenant: principal?.key.id ?? ""
        )
    }

    /// The response cache's key of a request: its key's id, the operation and the body's JSON with keys
    /// sorted. Only for a model with `cache.enabled`, and only a request with `temperature: 0` unless the
    /// cache is forced (absent, the temperature is 1, OpenAI's and Anthropic's default).
    static func responseKey(
        core: GatewayCore,
        operation: Operation,
        body: ByteBuffer,
        model: ModelName,
        tenant: String
    ) -> (key: AnswerCache.Key, ttl: Duration, shared: Bool)? {
        guard core.responses != nil, let settings = core.topology.model(model)?.cache,
            case .success(let json) = body.withUnsafeReadableBytes({ JSON.parse($0) })
        else { return nil }
        guard settings.force || operation == .embeddings || json["temperature"]?.doubleValue ?? 1 == 0 else {
            return nil
        }
        let key = AnswerCache.Key(tenant: tenant, operation: operation, body: json.canonical.bytes)
        return (key, .milliseconds(settings.ttlSeconds * 1000), settings.store == .redis)
    }

    /// The most a stream's bytes are kept for the caches that would take them.
    var captureLimit: Int {
        max(core.answers?.maxEntryBytes ?? 0, responseKey == nil ? 0 : core.responses?.maxEntryBytes ?? 0)
    }

    /// Keeps a good answer for the catch-all's cache and the model's response cache.
    func remember(_ answer: AnswerCache.Answer) {
        core.answers?.store(cacheKey, answer)
        if let responseKey {
            var kept = answer
            kept.expiresAt = MonotonicClock.now() + responseKey.ttl
            core.responses?.store(responseKey.key, kept)
            if responseKey.shared {
                core.sharedAnswers?.store(responseKey.key, answer, ttl: responseKey.ttl, on: eventLoop)
            }
        }
    }

    /// Reads the routing fields of a request, checks its key's limits and starts its exchange; or answers
    /// 400 (unreadable), 403 (a model the key may not use) or 429 (over a limit).
    static func start(core: GatewayCore, request: HTTPRequest, operation: Operation, reply: Reply, caller: Caller?) {
        let scanned: Result<RequestFields, WireError> = request.body.withUnsafeReadableBytes { bytes in
            Result { () throws(WireError) in try RequestFields.scan(bytes) }
        }
        switch scanned {
        case .failure(let error):
            reply.error(GatewayError(.invalidRequest, error.message, param: error.param))
        case .success(let fields):
            let principal = caller?.principal
            if let principal, !principal.allows(ModelName(fields.model)) {
                let allowed = core.topology.models.map(\.name).filter(principal.allows)
                reply.error(
                    GatewayError(
                        .forbidden,
                        "Key '\(principal.key.id)' may not use the model '\(fields.model)'; it may use: "
                            + allowed.map(\.rawValue).joined(separator: ", "),
                        param: "model",
                        errorCode: "model_not_allowed"
                    )
                )
                return
            }
            let exchange = Exchange(
                core: core,
                request: request,
                operation: operation,
                fields: fields,
                reply: reply,
                principal: principal
            )
            if case .key? = caller, let governor = core.governor {
                exchange.admit(governor)
            } else {
                exchange.begin()
            }
        }
    }

    /// Counts the request against its key's and team's limits, then begins it, or answers 429.
    private func admit(_ governor: Governor) {
        guard let principal else { return begin() }
        let now = WallClock.seconds()
        let charge = QuotaCharge(
            id: FNV1a.hash64(profile.id.rawValue),
            tokens: Governor.reservedTokens(profile),
            subjects: principal.subjects
        )
        governor.store.admit(charge, at: now, on: eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let admission):
                if let refusal = admission.refusal {
                    self.core.metrics.limitRefused(key: principal.key.id, limit: refusal.limit.rawValue)
                    let (error, headers) = Governor.refusal(refusal, admission)
                    self.reply.error(error, headers: headers)
                    return
                }
                self.reply.extraHeaders = Governor.rateLimitHeaders(admission)
                self.quota = (charge, admission.admittedAt ?? now, admission.leased)
                self.begin()
            case .failure(let error):
                self.reply.error(
                    GatewayError(.limitsUnavailable, "Limits cannot be checked now (\(error)); retry shortly")
                )
            }
        }
    }

    private func begin() {
        // From here on the exchange records the request's metrics itself.
        reply.onError = nil
        core.openExchanges.add(1, ordering: .relaxed)
        // The writer keeps the exchange alive until the response ends.
        reply.writer.onClientClose = { self.clientGone() }
        let budget = TimeAmount.nanoseconds(core.budget(for: profile.model).nanoseconds)
        totalTimer = eventLoop.assumeIsolated().scheduleTask(in: budget) { self.totalTimeout() }
        guard let responseKey else { return proceed() }
        if let hit = core.responses?.answer(for: responseKey.key) { return answerFromCache(hit) }
        guard responseKey.shared, let shared = core.sharedAnswers else { return proceed(cacheMiss: true) }
        shared.answer(for: responseKey.key, on: eventLoop).assumeIsolated().whenSuccess { hit in
            // The client may have left, or the request timed out, while the store was asked.
            guard !self.finished else { return }
            if let hit { self.answerFromCache(hit) } else { self.proceed(cacheMiss: true) }
        }
    }

    /// Answers from the response cache.
    private func answerFromCache(_ hit: AnswerCache.Answer) {
        core.metrics.responseCache(model: core.metricLabel(for: profile.model), hit: true)
        respondStored(hit.bytes, streamed: hit.streamed, header: "x-isobar-cache", value: "hit")
    }

    /// Routes the request (a response cache, if any, did not have it).
    private func proceed(cacheMiss: Bool = false) {
        if cacheMiss {
            core.metrics.responseCache(model: core.metricLabel(for: profile.model), hit: false)
            reply.extraHeaders.add(name: "x-isobar-cache", value: "miss")
        }
        if captureLimit > 0, profile.stream { captured = [] }
        if profile.forwarded, let sender = clientHeaders.first(name: Self.hopHeader) {
            // Labelled by the sender only when it is a node of the topology (clients cannot grow the metric).
            let sender = NodeID(sender)
            core.metrics.forwarded("in", node: core.topology.node(sender) != nil ? sender.entry.rawValue : "unknown")
        }
        if core.mayHold { core.registerHeld(profile.id, NIOLoopBound(self, eventLoop: eventLoop)) }
        let action = core.withRouter { router, rng in
            router.requestArrived(profile, now: MonotonicClock.now(), rng: &rng)
        }
        if core.mayHold, !action.isHold { core.unregisterHeld(profile.id) }
        execute(action)
    }

    /// The router released the held request (planned or refused it).
    func resume(_ action: RouteAction) {
        holdTimer?.cancel()
        holdTimer = nil
        guard !finished else {
            // The client left meanwhile: give back what the router planned.
            if case .send(let plan) = action {
                core.withRouter { router, _ in router.abandoned(plan.attempt, now: MonotonicClock.now()) }
            }
            return
        }
        execute(action)
    }

    // MARK: - Route actions

    func execute(_ action: RouteAction) {
        switch action {
        case .send(let plan):
            if plan.attemptNumber > 1, let from = lastBackend {
                core.metrics.fellBack(
                    from: from.rawValue,
                    to: plan.deployment.backend.rawValue,
                    reason: plan.decision.reason
                )
            }
            send(plan)
        case .retry(let plan, let delay):
            core.metrics.retried(backend: plan.deployment.backend.rawValue, reason: plan.decision.reason)
            let task = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds)) {
                guard let pending = self.pendingRetry else { return }
                self.pendingRetry = nil
                self.upstreamTime += MonotonicClock.now() - pending.since
                self.send(plan)
            }
            pendingRetry = (plan, task, MonotonicClock.now())
        case .reject(let reason, let retryAfter):
            var spent = false
            if case .upstream(_, _, let retriesSpent) = reason { spent = retriesSpent }
            fail(GatewayError(reason), retryAfter: retryAfter, retriesSpent: spent)
        case .catchAll(let plan):
            answerFromCatchAll(plan)
        case .hold(let until):
            // Every endpoint is full. Wake up at the hold's end so the router refuses the request then if
            // nothing freed before (the release itself arrives through `resume`).
            let wait = TimeAmount.nanoseconds(max(0, (until - MonotonicClock.now()).nanoseconds))
            holdTimer = eventLoop.assumeIsolated().scheduleTask(in: wait) {
                self.core.withRouter { _, _ in }
            }
        }
    }

    /// Marks a request one node forwarded to another (its value names the sender); a request carrying it
    /// is never forwarded again.
    static let hopHeader = "x-isobar-hop"

    /// Starts one attempt on a pooled connection: to the backend, or through the node of its region the
    /// plan names (the client's own request, in its own dialect, with the hop header; the answer is
    /// relayed as it arrives, stream or not).
    private func send(_ plan: AttemptPlan) {
        guard var backend = core.backends[plan.deployment.backend] else {
            preconditionFailure("router planned an attempt on unknown backend \(plan.deployment.backend)")
        }
        lastBackend = backend.name
        var deployment = plan.deployment
        if let via = plan.via {
            guard let peer = core.peer(via) else {
                // A pool member that left the mesh after the plan was made (a retry waits): as if it
                // refused the connection.
                let action = core.withRouter { router, rng in
                    router.failed(
                        plan.attempt,
                        .connect("node \(via) left the mesh"),
                        now: MonotonicClock.now(),
                        rng: &rng
                    )
                }
                return execute(action)
            }
            backend = Self.hop(to: peer, for: backend, operation: operation)
            deployment = Deployment(backend: backend.name, model: fields.model)
            core.metrics.forwarded("out", node: via.entry.rawValue)
        }
        core.metrics.picked(backend: backend.name.rawValue, reason: plan.decision.pick)
        if core.topology.routing.debugHeader { reply.route = Self.explain(plan) }
        logDecision(plan)
        var upstream: UpstreamRequest
        do {
            upstream = try UpstreamRequest.make(
                operation: operation,
                clientBody: clientBody,
                fields: fields,
                clientHeaders: clientHeaders,
                deployment: deployment,
                backend: backend,
                requestID: reply.requestID,
                allocator: reply.writer.allocator
            )
            if plan.via != nil {
                upstream.head.headers.add(name: Self.hopHeader, value: core.node.name.rawValue)
                if let principal, let governor = core.governor {
                    let credentials = governor.hopCredentials(
                        for: principal,
                        sender: core.node.name,
                        requestID: reply.requestID,
                        body: upstream.body,
                        now: WallClock.seconds()
                    )
                    upstream.head.headers.add(name: Governor.hopAuthHeader, value: credentials)
                }
            }
        } catch {
            core.withRouter { router, _ in router.abandoned(plan.attempt, now: MonotonicClock.now()) }
            fail(GatewayError(.invalidRequest, error.message, param: error.param), retryAfter: nil, retriesSpent: false)
            return
        }
        let attempt = Attempt(plan: plan, backend: backend, upstream: upstream)
        send(attempt, freshConnection: false)
    }

    /// The upstream a hop to `peer` is: the peer's HTTP address (its `listen` host, or its gossip host when
    /// it listens on every interface), speaking the client's dialect, under the backend's name (so its
    /// metrics and breaker stay the backend's) and with the backend's timeouts.
    static func hop(to peer: Node, for backend: Backend, operation: Operation) -> Backend {
        var host = peer.listen.host
        if peer.listen.isWildcard, let gossip = peer.gossip { host = gossip.host }
        return Backend(
            name: backend.name,
            region: peer.region,
            engine: operation == .messages ? .anthropic : .openAICompatible,
            url: UpstreamURL(tls: false, host: host, port: peer.listen.port),
            models: [],
            timeouts: backend.timeouts
        )
    }

    /// Sends an attempt's request on a pooled (or a new) connection and starts its first-token timer.
    func send(_ attempt: Attempt, freshConnection: Bool) {
        self.attempt = attempt
        let backend = attempt.backend
        let upstream = attempt.upstream
        let timeouts = attempt.plan.timeouts
        let connectTimeout = TimeAmount.nanoseconds(Int64(timeouts.connectMs * 1e6))
        let connection =
            freshConnection
            ? pool.connectFresh(backend.url, connectTimeout: connectTimeout)
            : pool.acquire(backend.url, connectTimeout: connectTimeout)
        connection.assumeIsolated().whenComplete { result in
            guard self.attempt === attempt, !self.finished else {
                if case .success(let connection) = result { self.pool.release(connection) }
                return
            }
            switch result {
            case .success(let connection):
                attempt.connection = connection
                attempt.reusedConnection = connection.reused
                attempt.sentAt = MonotonicClock.now()
                connection.delegate = self
                // Armed before sending: a send that fails at once may already have moved on (a resend on a
                // fresh connection arms its own timer).
                if self.profile.stream {
                    let firstToken = TimeAmount.nanoseconds(Int64(timeouts.firstTokenMs * 1e6))
                    attempt.firstTokenTimer?.cancel()
                    attempt.firstTokenTimer = self.eventLoop.assumeIsolated().scheduleTask(in: firstToken) {
                        self.attemptTimedOut(attempt, .firstToken)
                    }
                }
                if let limit = attempt.plan.attemptLimit, attempt.attemptTimer == nil {
                    attempt.attemptTimer = self.eventLoop.assumeIsolated().scheduleTask(
                        in: .nanoseconds(limit.nanoseconds)
                    ) { self.attemptTimedOut(attempt, .attempt) }
                }
                connection.send(head: upstream.head, body: upstream.body)
            case .failure(let error):
                self.attemptFailed(attempt, UpstreamFailure(connectError: error))
            }
        }
    }

    /// An attempt failed before anything was sent to the client: report it and carry out what the router
    /// decides next.
    func attemptFailed(_ attempt: Attempt, _ failure: UpstreamFailure) {
        guard self.attempt === attempt else { return }
        end(attempt, discardConnection: true)
        core.metrics.attemptFailed(backend: attempt.backend.name.rawValue, reason: failure.label)
        core.logger.debug(
            "upstream attempt failed",
            metadata: [
                "isobar.request_id": "\(reply.requestID)", "isobar.backend": "\(attempt.backend.name)",
                "isobar.failure": "\(failure)", "isobar.attempt": "\(attempt.plan.attemptNumber)",
            ]
        )
        let action = core.withRouter { router, rng in
            router.failed(attempt.plan.attempt, failure, now: MonotonicClock.now(), rng: &rng)
        }
        execute(action)
    }

    func attemptTimedOut(_ attempt: Attempt, _ phase: UpstreamFailure.TimeoutPhase) {
        guard self.attempt === attempt, !finished else { return }
        if attempt.committed {
            abortStream(
                attempt,
                reason: "upstream stalled (\(phase.rawValue) timeout)",
                label: "timeout_\(phase.rawValue)"
            )
        } else {
            attemptFailed(attempt, .timeout(phase))
        }
    }

    /// Stops an attempt's timers and lets go of its connection (back to the pool only after a clean end).
    func end(_ attempt: Attempt, discardConnection: Bool) {
        attempt.cancelTimers()
        if let connection = attempt.connection, discardConnection {
            pool.discard(connection)
            attempt.connection = nil
        }
        if let sentAt = attempt.sentAt { upstreamTime += MonotonicClock.now() - sentAt }
        attempt.sentAt = nil
        if self.attempt === attempt { self.attempt = nil }
    }

    // MARK: - Endings

    /// Every candidate is exhausted: answer from the catch-all — the last good answer to the same request
    /// (cache mode), the configured answer (static mode), else 503 busy.
    private func answerFromCatchAll(_ plan: CatchAllPlan) {
        let model = core.metricLabel(for: profile.model)
        if plan.mode == .cache, let answer = core.answers?.answer(for: cacheKey) {
            core.metrics.caughtAll(model: model, answer: "cache")
            respondStored(answer.bytes, streamed: answer.streamed, header: "x-isobar-catch-all", value: "cache")
            return
        }
        if plan.mode == .static, CatchAllAnswer.supports(operation) {
            let answer = CatchAllAnswer(
                operation: operation,
                model: fields.model,
                content: core.topology.catchAll.content,
                id: reply.requestID,
                created: created
            )
            core.metrics.caughtAll(model: model, answer: "static")
            let bytes = profile.stream ? answer.stream(includeUsage: fields.includeUsage) : answer.body
            respondStored(bytes, streamed: profile.stream, header: "x-isobar-catch-all", value: "static")
            return
        }
        core.metrics.caughtAll(model: model, answer: "busy")
        if case .status(let status, _, _)? = plan.failure, (400..<500).contains(status), let backend = plan.backend {
            // A provider's own refusal (its key, its model list, its rate limit) keeps its status.
            let retryAfter = status == 429 ? plan.retryAfter : nil
            fail(GatewayError(plan.failure!, backend: backend), retryAfter: retryAfter, retriesSpent: true)
            return
        }
        core.logger.debug(
            "no backend can serve a request",
            metadata: ["isobar.request_id": "\(reply.requestID)", "isobar.reason": "\(plan.reason)"]
        )
        fail(
            GatewayError(
                .busy,
                "No backend can serve the request now: \(plan.reason)",
                errorCode: "no_backend_available"
            ),
            retryAfter: plan.retryAfter,
            retriesSpent: true
        )
    }

    /// Answers with bytes the node holds (a cached or static answer), marked by `header: value`.
    private func respondStored(_ bytes: [UInt8], streamed: Bool, header: String, value: String) {
        var headers = reply.baseHeaders
        headers.add(name: "content-type", value: streamed ? "text/event-stream" : "application/json")
        if streamed { headers.add(name: "cache-control", value: "no-cache") }
        headers.add(name: header, value: value)
        reply.writer.respond(status: .ok, headers: headers, body: reply.writer.allocator.buffer(bytes: bytes))
        finish(status: 200, backend: nil, usage: nil)
    }

    /// The request as the answer cache knows it.
    var cacheKey: AnswerCache.Key {
        AnswerCache.Key(
            tenant: principal?.key.id ?? "",
            operation: operation,
            body: Array(clientBody.readableBytesView)
        )
    }

    /// Answers the client with an error and ends the request.
    func fail(_ error: GatewayError, retryAfter: Duration?, retriesSpent: Bool) {
        guard !finished else { return }
        var headers = HTTPHeaders()
        if let retryAfter {
            headers.add(name: "retry-after", value: String(max(1, Int(retryAfter.seconds.rounded(.up)))))
        } else if error.status == 503 || error.status == 429 {
            headers.add(name: "retry-after", value: String(core.topology.catchAll.retryAfterSeconds))
        }
        if retriesSpent { headers.add(name: "x-should-retry", value: "false") }
        if let lastBackend { headers.add(name: "x-isobar-backend", value: lastBackend.rawValue) }
        reply.error(error, headers: headers)
        finish(status: error.status, backend: lastBackend, usage: nil)
    }

    /// Records the end of the request.
    func finish(status: Int, backend: BackendID?, usage: Usage?) {
        guard !finished else { return }
        finished = true
        core.openExchanges.subtract(1, ordering: .relaxed)
        totalTimer?.cancel()
        holdTimer?.cancel()
        pendingRetry?.task.cancel()
        let now = MonotonicClock.now()
        let duration = now - arrivedAt
        core.metrics.requestFinished(
            model: core.metricLabel(for: profile.model),
            backend: backend?.rawValue ?? "none",
            status: status,
            ttft: firstTokenAt.map { $0 - arrivedAt },
            duration: duration,
            overhead: duration - upstreamTime,
            usage: usage
        )
        if let principal { account(principal, status: status, backend: backend, usage: usage, duration: duration) }
    }

    /// Settles the request's reservation with what it used (everything it reserved when a stream was cut
    /// off without usage; nothing when no token reached the client), and counts its usage and cost.
    private func account(_ principal: Principal, status: Int, backend: BackendID?, usage: Usage?, duration: Duration) {
        guard let governor = core.governor else { return }
        let served = backend.flatMap { core.backends[$0] }
        let usd = usage.map { Governor.cost($0, on: served) } ?? 0
        let model = core.metricLabel(for: profile.model)
        if let quota {
            let reserved = quota.charge.tokens
            let used = usage.map { Double($0.totalTokens) } ?? (firstTokenAt != nil ? reserved : 0)
            let settlement = QuotaSettlement(
                id: quota.charge.id,
                subjects: quota.charge.subjects.map(\.subject),
                reservedTokens: reserved,
                usedTokens: used,
                usd: usd,
                admittedAt: quota.admittedAt,
                leased: quota.leased
            )
            governor.store.settle(settlement, at: WallClock.seconds(), on: eventLoop)
            // A forwarded request is counted by the node the client called, not again here.
            governor.record(principal, model: model, usage: usage, usd: usd)
            core.metrics.keyUsage(
                key: principal.key.id,
                team: principal.team?.name,
                model: model,
                usage: usage,
                usd: usd
            )
        }
        core.logger.info(
            "request completed",
            metadata: [
                "isobar.request_id": "\(reply.requestID)", "isobar.key": "\(principal.key.id)",
                "isobar.team": "\(principal.team?.name ?? "-")", "isobar.model": "\(profile.model)",
                "isobar.backend": "\(backend?.rawValue ?? "-")", "isobar.status": "\(status)",
                "isobar.prompt_tokens": "\(usage?.promptTokens ?? 0)",
                "isobar.completion_tokens": "\(usage?.completionTokens ?? 0)",
                "isobar.cost_usd": "\(usd)", "isobar.latency_ms": "\(Int(duration.seconds * 1000))",
                "isobar.forwarded": "\(quota == nil)",
            ]
        )
    }

    /// The client went away: cancel the upstream call and forget the request.
    func clientGone() {
        guard !finished else { return }
        let now = MonotonicClock.now()
        if holdTimer != nil {
            holdTimer?.cancel()
            holdTimer = nil
            core.unregisterHeld(profile.id)
            core.withRouter { router, _ in router.abandonHeld(profile.id) }
        }
        if let attempt {
            end(attempt, discardConnection: true)
            core.withRouter { router, _ in router.abandoned(attempt.plan.attempt, now: now) }
        }
        if let pending = pendingRetry {
            core.withRouter { router, _ in router.abandoned(pending.plan.attempt, now: now) }
        }
        finish(status: 499, backend: lastBackend, usage: nil)
    }

    private func totalTimeout() {
        guard !finished else { return }
        if let attempt, attempt.committed {
            abortStream(attempt, reason: "the request exceeded its total timeout", label: "timeout_total")
            return
        }
        let failure = UpstreamFailure.timeout(.total)
        if let attempt {
            attemptFailed(attempt, failure)
        } else if let pending = pendingRetry {
            pendingRetry = nil
            pending.task.cancel()
            let action = core.withRouter { router, rng in
                router.failed(pending.plan.attempt, failure, now: MonotonicClock.now(), rng: &rng)
            }
            execute(action)
        }
    }

    private func logDecision(_ plan: AttemptPlan) {
        guard core.logger.logLevel <= .trace else { return }
        core.logger.trace(
            "route decision",
            metadata: [
                "isobar.request_id": "\(reply.requestID)", "isobar.model": "\(profile.model)",
                "isobar.deployment": "\(plan.deployment.model)", "isobar.decision": "\(Self.explain(plan))",
            ]
        )
    }

    /// A decision in one line (the trace log and the `x-isobar-route` header): the policy, the pick and
    /// why, the attempt, and every candidate as `backend:requests/expected-TTFT/cached-tokens`.
    static func explain(_ plan: AttemptPlan) -> String {
        let d = plan.decision
        let candidates = d.candidates.map {
            "\($0.backend):\($0.inFlight)req/\(Int(($0.expectedTTFT * 1000).rounded()))ms/\($0.cachedTokens)cached"
        }.joined(separator: ",")
        return "policy=\(d.policy.rawValue); backend=\(d.picked); pick=\(d.pick.rawValue); "
            + "attempt=\(plan.attemptNumber); reason=\(d.reason); candidates=\(candidates)"
    }
}

/// One attempt of an exchange on one backend.
final class Attempt {
    let plan: AttemptPlan
    let backend: Backend
    let upstream: UpstreamRequest
    var connection: UpstreamConnection?
    var sentAt: Instant?
    var firstTokenTimer: Scheduled<Void>?
    /// Fires at the backend's own `total_ms` for one attempt.
    var attemptTimer: Scheduled<Void>?
    /// Fires when a committed stream or a whole body stalls for `idle_ms` (see `lastActivity`).
    var idleTimer: Scheduled<Void>?
    /// When the last body part arrived; the idle timer re-arms itself from it instead of being
    /// rescheduled for every chunk.
    var lastActivity = Instant.zero
    /// Closes a connection whose stream ended but whose HTTP response never did.
    var lingerTimer: Scheduled<Void>?
    /// What the response turned out to be, once its head arrived.
    var mode: Mode?
    /// Bytes of a response that is answered whole (success or error).
    var collected: ByteBuffer?
    /// Relay state of a stream.
    var parser = SSEParser()
    var transcoder: (any StreamTranscoder)?
    var committed = false
    /// Client bytes held back until the first content token.
    var pending: [UInt8] = []
    var usage: Usage?
    /// The attempt was already re-sent once on a fresh connection after a stale pooled one failed.
    var resentOnFreshConnection = false
    /// The connection came from the pool (it served an earlier call).
    var reusedConnection = false

    enum Mode {
        case streaming
        case whole
        case error(status: Int, retryAfter: Duration?)
    }

    init(plan: AttemptPlan, backend: Backend, upstream: UpstreamRequest) {
        self.plan = plan
        self.backend = backend
        self.upstream = upstream
    }

    func cancelTimers() {
        firstTokenTimer?.cancel()
        idleTimer?.cancel()
        attemptTimer?.cancel()
        firstTokenTimer = nil
        idleTimer = nil
        attemptTimer = nil
    }
}

extension UpstreamFailure {
    /// The failure of a connection that could not be set up.
    init(connectError error: any Error) {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            self = .timeout(.connect)
        } else {
            self = .connect("\(error)")
        }
    }
}
