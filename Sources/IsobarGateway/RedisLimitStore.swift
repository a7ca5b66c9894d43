import Crypto
import IsobarModel
import IsobarRouting
import NIOCore
import NIOPosix
import Synchronization

/// Limits and budgets shared by every node of a mesh through one Redis (issue 7): each admission is one
/// server-side script, so three nodes enforcing 60 RPM admit 60 a minute between them, not 180. Calls are
/// blocking hiredis calls on a pool of threads, never on an event loop, and a request waits at most
/// `timeout_ms` for them. While Redis cannot be reached (or is slow) the node counts on its own
/// (`on_failure: local`, each limit divided by the live nodes) or refuses keyed requests (`closed`); a
/// probe each second brings it back and adds what was spent meanwhile.
final class RedisLimitStore: LimitStore {
    let kind = "redis"
    let settings: RedisSettings
    /// Key prefix: `isobar:MESH:`.
    let prefix: String
    private let threads: NIOThreadPool
    private let connections = Mutex<[Box]>([])
    private let local = Mutex(QuotaLedger())
    private let state: Mutex<State>
    /// Nodes of the mesh that are up (this one included): the share of a limit each counts alone.
    private let liveNodes: @Sendable () -> Int
    private let observer: Observer
    private let probeLoop: any EventLoop
    private let probeTask = Mutex<RepeatedTask?>(nil)

    private struct State {
        var up = true
        /// US dollars spent while the store was away, by spend key, added when it is back.
        var pending: [String: Double] = [:]
        /// Spend last read from the store, by subject and its budget's period: what a node counting alone
        /// starts from.
        var lastSpent: [QuotaSubject: (usd: Double, period: Budget.Period)] = [:]
        var share = 1.0
    }

    /// Told when the store goes away or comes back, and of each request decided on the node's own
    /// counters (to log and count them).
    struct Observer: Sendable {
        var changed: @Sendable (_ up: Bool, _ reason: String) -> Void
        var decidedLocally: @Sendable () -> Void
    }

    /// A connection handed between pool threads (used by one at a time).
    private final class Box: @unchecked Sendable {
        let connection: RedisConnection
        init(_ connection: RedisConnection) { self.connection = connection }
    }

    init(
        settings: RedisSettings,
        meshName: String,
        probeLoop: any EventLoop,
        liveNodes: @escaping @Sendable () -> Int,
        observer: Observer
    ) {
        self.settings = settings
        self.prefix = "isobar:\(meshName):"
        self.threads = NIOThreadPool(numberOfThreads: settings.pool)
        self.liveNodes = liveNodes
        self.observer = observer
        self.probeLoop = probeLoop
        self.state = Mutex(State())
        threads.start()
        let task = probeLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
            self?.probe()
        }
        probeTask.withLock { $0 = task }
    }

    func shutdown() {
        probeTask.withLock { $0?.cancel() }
        threads.shutdownGracefully { _ in }
    }

    // MARK: - LimitStore

    func admit(_ charge: QuotaCharge, at now: Double, on loop: any EventLoop) -> EventLoopFuture<QuotaAdmission> {
        guard state.withLock({ $0.up }) else { return fallback(charge, at: now, on: loop) }
        let promise = loop.makePromise(of: QuotaAdmission.self)
        let done = Once()
        // Whichever comes first answers: the store, or the timeout (then the node decides alone).
        let timeout = loop.scheduleTask(in: .milliseconds(Int64(settings.timeoutMs))) { [self] in
            guard done.claim() else { return }
            wentDown("no answer within \(Int(settings.timeoutMs)) ms")
            fallback(charge, at: now, on: loop).cascade(to: promise)
        }
        let script = admitArguments(charge, at: now)
        run(Self.admitScript, keys: script.keys, arguments: script.arguments, on: loop).whenComplete { [self] result in
            guard done.claim() else { return }
            timeout.cancel()
            switch result.flatMap({ reply in
                admission(reply, charge, at: now).map { .success($0) }
                    ?? .failure(RedisError(message: "redis: unexpected reply to the admission script: \(reply)"))
            }) {
            case .success(let admission):
                promise.succeed(admission)
            case .failure(let error):
                wentDown("\(error)")
                fallback(charge, at: now, on: loop).cascade(to: promise)
            }
        }
        return promise.futureResult
    }

    func settle(_ settlement: QuotaSettlement, at now: Double) {
        local.withLock { $0.settle(settlement, at: now) }
        // Spend counts in the subject's day and month alike, whichever its budget is.
        let spendKeys = settlement.subjects.flatMap { subject in
            Budget.Period.allCases.map { spendKey(subject, period: $0, at: now) }
        }
        guard state.withLock({ $0.up }) else { return addPending(spendKeys, settlement.usd) }
        let keys = settlement.subjects.flatMap { subject in
            ["\(prefix)tok:\(subject)", "\(prefix)tok-sum:\(subject)", "\(prefix)busy:\(subject)"]
        }
        let arguments = [
            String(settlement.id), Self.units(settlement.reservedTokens), Self.units(settlement.usedTokens),
            String(settlement.usd), String(Int(now - settlement.admittedAt < 60 ? 1 : 0)), Self.spendTTL,
        ]
        run(Self.settleScript, keys: keys + spendKeys, arguments: arguments, on: probeLoop).whenComplete {
            [self] result in
            // An error reply is a bug to see in the logs, not an outage.
            if case .failure(let error) = result, (error as? RedisError)?.isReply != true {
                wentDown("\(error)")
                addPending(spendKeys, settlement.usd)
            }
        }
    }

    func spent(
        _ subjects: [(QuotaSubject, Budget.Period)],
        at now: Double,
        on loop: any EventLoop
    ) -> EventLoopFuture<[Double]> {
        guard !subjects.isEmpty else { return loop.makeSucceededFuture([]) }
        let keys = subjects.map { spendKey($0.0, period: $0.1, at: now) }
        return threads.runIfActive(eventLoop: loop) { [self] in
            try withConnection { connection in
                guard case .array(let values) = try connection.command(["MGET"] + keys) else { return [] }
                return values.map { $0.number ?? 0 }
            }
        }.flatMapError { [self] _ in
            // Away: what is known here (last read, plus what was spent since).
            loop.makeSucceededFuture(
                local.withLock { ledger in subjects.map { ledger.spent($0, period: $1, at: now) } }
            )
        }
    }

    // MARK: - Scripts

    /// KEYS: per subject, its requests log and sum, tokens log and sum, in-flight set and spend counter.
    /// ARGV: request id, reserved tokens, in-flight lifetime (s), then per subject: rpm, tpm, max
    /// concurrent and budget (0: none). Logs hold `ID:UNITS` scored by time; a log's sum is kept beside it.
    /// Returns {refused subject (0: none), limit, retry-after (s, -1: never)} then per subject
    /// {requests remaining, tokens remaining, spent}.
    static let admitScript = RedisScript(
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        local id, cost, life = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
        local n = (#ARGV - 3) / 4
        local function used(log, sum)
          local old = redis.call('ZRANGEBYSCORE', log, '-inf', now - 60)
          if #old > 0 then
            local drop = 0
            for _, m in ipairs(old) do drop = drop + tonumber(string.match(m, ':([^:]+)$')) end
            redis.call('ZREMRANGEBYSCORE', log, '-inf', now - 60)
            if redis.call('ZCARD', log) == 0 then redis.call('SET', sum, 0) else redis.call('INCRBYFLOAT', sum, -drop) end
          end
          return tonumber(redis.call('GET', sum) or '0')
        end
        local function wait(log, u, c, limit)
          local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
          for i = 1, #entries, 2 do
            u = u - tonumber(string.match(entries[i], ':([^:]+)$'))
            if u + c <= limit then return tonumber(entries[i + 1]) + 60 - now end
          end
          return 60
        end
        local out, state = {0, '', '0'}, {}
        for s = 1, n do
          local k, a = (s - 1) * 6, 3 + (s - 1) * 4
          local rpm, tpm, conc, budget = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
          local ru, tu = used(KEYS[k + 1], KEYS[k + 2]), used(KEYS[k + 3], KEYS[k + 4])
          redis.call('ZREMRANGEBYSCORE', KEYS[k + 5], '-inf', now)
          local spent = tonumber(redis.call('GET', KEYS[k + 6]) or '0')
          local c = math.min(cost, tpm > 0 and tpm or cost)
          state[s] = {ru, tu, spent, c}
          if out[1] == 0 then
            if conc > 0 and redis.call('ZCARD', KEYS[k + 5]) >= conc then out = {s, 'concurrent', '1'}
            elseif rpm > 0 and ru + 1 > rpm then out = {s, 'requests', tostring(wait(KEYS[k + 1], ru, 1, rpm))}
            elseif tpm > 0 and tu + c > tpm then out = {s, 'tokens', tostring(wait(KEYS[k + 3], tu, c, tpm))}
            elseif budget > 0 and spent >= budget then out = {s, 'budget', '0'} end
          end
        end
        for s = 1, n do
          local k, a = (s - 1) * 6, 3 + (s - 1) * 4
          local ru, tu, spent, c = state[s][1], state[s][2], state[s][3], state[s][4]
          if out[1] == 0 then
            if tonumber(ARGV[a + 1]) > 0 then
              redis.call('ZADD', KEYS[k + 1], now, id .. ':1')
              redis.call('INCRBYFLOAT', KEYS[k + 2], 1)
              redis.call('EXPIRE', KEYS[k + 1], 61)
              redis.call('EXPIRE', KEYS[k + 2], 61)
              ru = ru + 1
            end
            if tonumber(ARGV[a + 2]) > 0 and c > 0 then
              redis.call('ZADD', KEYS[k + 3], now, id .. ':' .. tostring(c))
              redis.call('INCRBYFLOAT', KEYS[k + 4], c)
              redis.call('EXPIRE', KEYS[k + 3], 61)
              redis.call('EXPIRE', KEYS[k + 4], 61)
              tu = tu + c
            end
            if tonumber(ARGV[a + 3]) > 0 then
              redis.call('ZADD', KEYS[k + 5], now + life, id)
              redis.call('EXPIRE', KEYS[k + 5], math.ceil(life) + 1)
            end
          end
          table.insert(out, tostring(ru))
          table.insert(out, tostring(tu))
          table.insert(out, tostring(spent))
        end
        return out
        """
    )

    /// KEYS: per subject its tokens log and sum and in-flight set, then per subject its day and month
    /// spend counters.
    /// ARGV: request id, reserved and used tokens, US dollars, whether the reservation is still in its
    /// minute (1/0), the spend counters' lifetime (s).
    static let settleScript = RedisScript(
        """
        local id, reserved, usedTokens, usd, recent = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
        local ttl = ARGV[6]
        local n = #KEYS / 5
        for s = 1, n do
          local k = (s - 1) * 3
          redis.call('ZREM', KEYS[k + 3], id)
          if recent then
            local score = redis.call('ZSCORE', KEYS[k + 1], id .. ':' .. reserved)
            if score then
              redis.call('ZREM', KEYS[k + 1], id .. ':' .. reserved)
              redis.call('ZADD', KEYS[k + 1], score, id .. ':' .. usedTokens)
              redis.call('INCRBYFLOAT', KEYS[k + 2], usedTokens - tonumber(reserved))
            end
          end
          for p = 1, 2 do
            local key = KEYS[n * 3 + (s - 1) * 2 + p]
            if usd > 0 then
              redis.call('INCRBYFLOAT', key, usd)
              redis.call('EXPIRE', key, ttl)
            end
          end
        end
        return 1
        """
    )

    private func admitArguments(_ charge: QuotaCharge, at now: Double) -> (keys: [String], arguments: [String]) {
        var keys: [String] = []
        var arguments = [String(charge.id), Self.units(charge.tokens), "900"]
        for (subject, allowance) in charge.subjects {
            keys += [
                "\(prefix)req:\(subject)", "\(prefix)req-sum:\(subject)", "\(prefix)tok:\(subject)",
                "\(prefix)tok-sum:\(subject)", "\(prefix)busy:\(subject)",
                spendKey(subject, period: allowance.budget?.period ?? .day, at: now),
            ]
            arguments += [
                String(allowance.requestsPerMinute ?? 0), String(allowance.tokensPerMinute ?? 0),
                String(allowance.maxConcurrent ?? 0), String(allowance.budget?.usd ?? 0),
            ]
        }
        return (keys, arguments)
    }

    /// The admission the script's reply says; nil for a reply of the wrong shape (never admitted blindly).
    private func admission(_ reply: RedisValue, _ charge: QuotaCharge, at now: Double) -> QuotaAdmission? {
        guard case .array(let values) = reply, values.count == 3 + 3 * charge.subjects.count else {
            return nil
        }
        var admission = QuotaAdmission()
        var spent: [QuotaSubject: (usd: Double, period: Budget.Period)] = [:]
        for (i, (subject, allowance)) in charge.subjects.enumerated() {
            let base = 3 + 3 * i
            if let budget = allowance.budget { spent[subject] = (values[base + 2].number ?? 0, budget.period) }
            if let rpm = allowance.requestsPerMinute, let used = values[base].number {
                admission.requests = .tightest(
                    admission.requests,
                    QuotaWindow(limit: Double(rpm), remaining: Double(rpm) - used, resetSeconds: 60)
                )
            }
            if let tpm = allowance.tokensPerMinute, let used = values[base + 1].number {
                admission.tokens = .tightest(
                    admission.tokens,
                    QuotaWindow(limit: Double(tpm), remaining: Double(tpm) - used, resetSeconds: 60)
                )
            }
        }
        state.withLock { $0.lastSpent.merge(spent) { _, new in new } }
        if let index = values[0].number.map(Int.init), index > 0, index <= charge.subjects.count,
            let limit = values[1].text.flatMap(QuotaLimit.init(rawValue:))
        {
            let (subject, allowance) = charge.subjects[index - 1]
            var retry = values[2].number
            let value: Double
            switch limit {
            case .requests: value = Double(allowance.requestsPerMinute ?? 0)
            case .tokens: value = Double(allowance.tokensPerMinute ?? 0)
            case .concurrent: value = Double(allowance.maxConcurrent ?? 0)
            case .budget:
                value = allowance.budget?.usd ?? 0
                retry = allowance.budget.map { $0.period.bounds(containing: now).end - now }
            }
            admission.refusal = .init(subject: subject, limit: limit, value: value, retryAfterSeconds: retry)
        }
        return admission
    }

    // MARK: - Failure and recovery

    /// Decides on the node's own counters, with its share of each limit (or refuses, `closed`).
    private func fallback(
        _ charge: QuotaCharge,
        at now: Double,
        on loop: any EventLoop
    )
        -> EventLoopFuture<QuotaAdmission>
    {
        observer.decidedLocally()
        guard settings.onFailure == .local else {
            return loop.makeFailedFuture(RedisError(message: "the shared limit store is unreachable"))
        }
        let share = state.withLock { $0.share }
        return loop.makeSucceededFuture(local.withLock { $0.admit(charge, at: now, share: share) })
    }

    /// The part of each limit this node may use alone: one over the live nodes.
    private var liveShare: Double { 1 / Double(max(1, liveNodes())) }

    private func wentDown(_ reason: String) {
        let now = WallClock.seconds()
        let share = liveShare
        let (wasUp, lastSpent) = state.withLock { state in
            defer {
                state.up = false
                state.share = share
            }
            return (state.up, state.lastSpent)
        }
        guard wasUp else { return }
        connections.withLock { $0.removeAll() }
        // Counting alone from here: start each budget from what the store last said was spent.
        local.withLock { ledger in
            ledger.reset()
            for (subject, spent) in lastSpent { ledger.setBase(subject, usd: spent.usd, period: spent.period, at: now) }
        }
        observer.changed(false, reason)
    }

    private func addPending(_ keys: [String], _ usd: Double) {
        guard usd > 0 else { return }
        state.withLock { state in for key in keys { state.pending[key, default: 0] += usd } }
    }

    /// Each second: refreshes the node's share, and while the store is away tries it again; once it
    /// answers, adds what was spent meanwhile and goes back to it.
    private func probe() {
        let share = liveShare
        let up = state.withLock { state in
            state.share = share
            return state.up
        }
        guard !up else { return }
        threads.runIfActive(eventLoop: probeLoop) { [self] in
            try withConnection { connection in
                _ = try connection.command(["PING"])
                let pending = state.withLock { state in
                    defer { state.pending = [:] }
                    return state.pending
                }
                for (key, usd) in pending {
                    _ = try connection.command(["INCRBYFLOAT", key, String(usd)])
                    _ = try connection.command(["EXPIRE", key, Self.spendTTL])
                }
            }
        }.whenSuccess { [self] in
            state.withLock { $0.up = true }
            observer.changed(true, "reachable again")
        }
    }

    // MARK: - Batches

    /// A script call waiting to be sent.
    private struct Call {
        var script: RedisScript
        var keys: [String]
        var arguments: [String]
        var promise: EventLoopPromise<RedisValue>
    }

    /// Calls waiting, and whether a pool thread is sending them.
    private struct Queue {
        var waiting: [Call] = []
        var sending = false
    }

    private let queue = Mutex(Queue())

    /// Runs a script on the store. Calls made while a batch is on its way wait for it and go together in
    /// the next one, pipelined on one connection: under load a batch costs one write, one wait and one
    /// thread wake-up instead of one each per request.
    private func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        on loop: any EventLoop
    )
        -> EventLoopFuture<RedisValue>
    {
        let promise = loop.makePromise(of: RedisValue.self)
        let start = queue.withLock { queue in
            queue.waiting.append(Call(script: script, keys: keys, arguments: arguments, promise: promise))
            defer { queue.sending = true }
            return !queue.sending
        }
        if start { threads.submit { [self] _ in sendBatches() } }
        return promise.futureResult
    }

    /// Sends what is waiting, batch after batch, until nothing is.
    private func sendBatches() {
        while true {
            let batch = queue.withLock { queue in
                defer { queue.waiting = [] }
                if queue.waiting.isEmpty { queue.sending = false }
                return queue.waiting
            }
            guard !batch.isEmpty else { return }
            do {
                let replies = try withConnection { connection in
                    try connection.evaluate(batch.map { ($0.script, $0.keys, $0.arguments) })
                }
                for (call, reply) in zip(batch, replies) {
                    if case .error(let message) = reply {
                        call.promise.fail(RedisError(message: "redis: \(message)", isReply: true))
                    } else {
                        call.promise.succeed(reply)
                    }
                }
            } catch {
                for call in batch { call.promise.fail(error) }
            }
        }
    }

    // MARK: - Keys and connections

    private func spendKey(_ subject: QuotaSubject, period: Budget.Period, at now: Double) -> String {
        "\(prefix)spend:\(subject):\(period.rawValue):\(Int(period.bounds(containing: now).start))"
    }

    /// Runs `body` with a pooled connection, or a new one when none is free or the pooled one turns out
    /// broken (Redis restarted since it was last used). A connection that answered, even with an error
    /// reply, goes back to the pool; one that failed is dropped.
    private func withConnection<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        if let pooled = connections.withLock({ $0.popLast() }) {
            do {
                return try use(pooled, body)
            } catch let error as RedisError where !error.isReply {
                // Stale: try once more on a fresh connection.
            }
        }
        return try use(Box(RedisConnection(settings)), body)
    }

    private func use<T>(_ box: Box, _ body: (RedisConnection) throws -> T) throws -> T {
        do {
            let result = try body(box.connection)
            connections.withLock { $0.append(box) }
            return result
        } catch let error as RedisError where error.isReply {
            connections.withLock { $0.append(box) }
            throw error
        }
    }

    static func units(_ value: Double) -> String { String(Int(value.rounded())) }

    /// How long a spend counter outlives its period's start, in seconds: 35 days, past any month.
    static let spendTTL = String(35 * 86_400)
}

/// A Lua script Redis runs atomically, called by its SHA-1.
struct RedisScript: Sendable {
    let source: String
    let sha1: String

    init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).hexDigits
    }
}

extension RedisConnection {
    /// Runs scripts in one pipeline, each by its SHA-1; those the server does not have yet are sent again
    /// with their source. Error replies are returned as `.error`.
    func evaluate(
        _ calls: [(script: RedisScript, keys: [String], arguments: [String])]
    ) throws(RedisError)
        -> [RedisValue]
    {
        let tails = calls.map { [String($0.keys.count)] + $0.keys + $0.arguments }
        var replies = try pipeline(zip(calls, tails).map { ["EVALSHA", $0.script.sha1] + $1 })
        for i in replies.indices {
            if case .error(let message) = replies[i], message.hasPrefix("NOSCRIPT") {
                replies[i] = try pipeline([["EVAL", calls[i].script.source] + tails[i]])[0]
            }
        }
        return replies
    }
}

/// The store's answer and the timeout race to answer a request: only the first to claim it does.
private final class Once: Sendable {
    private let done = Mutex(false)

    func claim() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
