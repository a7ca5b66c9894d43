import Crypto
import IsobarModel
import IsobarRouting
import NIOCore
import Synchronization

/// Limits and budgets shared by every node of a mesh through one Redis (issue 7): each admission is one
/// server-side script, so three nodes enforcing 60 RPM admit 60 a minute between them, not 180. Each event
/// loop sends its requests' scripts over its own pipelined connection (`RedisConnection`), so no call
/// blocks or changes threads, and a request waits at most `timeout_ms`. While Redis cannot be reached (or
/// is slow) the node counts on its own (`on_failure: local`, each limit divided by the live nodes) or
/// refuses keyed requests (`closed`); a probe each second brings it back and adds what was spent meanwhile.
final class RedisLimitStore: LimitStore {
    let kind = "redis"
    let redis: RedisClient
    private var settings: RedisSettings { redis.settings }
    private var prefix: String { redis.prefix }
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
        /// A script answered with an error: a bug to see in the logs, not an outage.
        var scriptFailed: @Sendable (_ message: String) -> Void
    }

    init(
        redis: RedisClient,
        probeLoop: any EventLoop,
        liveNodes: @escaping @Sendable () -> Int,
        observer: Observer
    ) {
        self.redis = redis
        self.liveNodes = liveNodes
        self.observer = observer
        self.probeLoop = probeLoop
        self.state = Mutex(State())
        let task = probeLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
            self?.probe()
        }
        probeTask.withLock { $0 = task }
    }

    func shutdown() {
        // The connections are the node's (`GatewayCore.redis`), which closes them.
        probeTask.withLock { $0?.cancel() }
    }

    // MARK: - LimitStore

    func admit(_ charge: QuotaCharge, at now: Double, on loop: any EventLoop) -> EventLoopFuture<QuotaAdmission> {
        guard state.withLock({ $0.up }) else { return fallback(charge, at: now, on: loop) }
        let script = admitArguments(charge, at: now)
        let answer = redis.withTimeout(on: loop) {
            $0.evaluate(Self.admitScript, keys: script.keys, arguments: script.arguments)
        }
        return answer.flatMapThrowing { [self] reply in
            if case .error(let message) = reply { throw RedisError(message: "redis: \(message)", isReply: true) }
            guard let admission = admission(reply, charge, at: now) else {
                throw RedisError(message: "redis: unexpected reply to the admission script: \(reply)")
            }
            return admission
        }.flatMapError { [self] error in
            wentDown("\(error)")
            return fallback(charge, at: now, on: loop)
        }
    }

    func settle(_ settlement: QuotaSettlement, at now: Double, on loop: any EventLoop) {
        local.withLock { $0.settle(settlement, at: now) }
        // Spend counts in the subject's day and month alike, whichever its budget is.
        let spendKeys = settlement.subjects.map { subject in
            Budget.Period.allCases.map { spendKey(subject, period: $0, at: now) }
        }
        guard state.withLock({ $0.up }) else { return addPending(spendKeys.flatMap { $0 }, settlement.usd) }
        let keys = zip(settlement.subjects, spendKeys).flatMap { subject, spend in
            [windowKey(subject), busyKey(subject)] + spend
        }
        let arguments = [
            String(settlement.id), Self.units(settlement.usedTokens - settlement.reservedTokens),
            String(settlement.usd), String(Int64(settlement.admittedAt.rounded(.down))), Self.spendTTL,
        ]
        // No timer of its own: nothing waits for it, and a store that stops answering is found by the next
        // admission's timeout, which closes the connections and so fails this too.
        redis.connection(on: loop) { $0.evaluate(Self.settleScript, keys: keys, arguments: arguments) }
            .whenComplete { [self] result in
                switch result {
                case .success(.error(let message)):
                    observer.scriptFailed("redis: \(message)")
                case .success:
                    break
                case .failure(let error):
                    wentDown("\(error)")
                    addPending(spendKeys.flatMap { $0 }, settlement.usd)
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
        return redis.withTimeout(on: loop) { $0.command(["MGET"] + keys) }.map { reply in
            guard case .array(let values) = reply else { return [] }
            return values.map { $0.number ?? 0 }
        }.flatMapError { [self] _ in
            // Away: what is known here (last read, plus what was spent since).
            loop.makeSucceededFuture(
                local.withLock { ledger in subjects.map { ledger.spent($0, period: $1, at: now) } }
            )
        }
    }

    // MARK: - Scripts

    /// The per-minute windows of a subject live in one hash (`SlidingWindow`'s rule): `r` and `t`, the
    /// requests and tokens counted; `o`, the oldest second that may still hold any; and per second
    /// `r<second>` and `t<second>`. A second counts until 61 s after it began; the script drops older
    /// ones as it goes, so a hash holds at most 61 seconds whatever the rate.
    ///
    /// KEYS: per subject its window hash, its in-flight set and the spend counter of its budget's period.
    /// ARGV: request id, reserved tokens, in-flight lifetime (s), then per subject: rpm, tpm, max
    /// concurrent and budget (0: none).
    /// Returns {refused subject (0: none), limit, retry-after (s), Redis's time} then per subject
    /// {requests counted, tokens counted, spent}.
    static let admitScript = RedisScript(
        """
        local t = redis.call('TIME')
        local sec = tonumber(t[1])
        local now = sec + tonumber(t[2]) / 1000000
        local id, cost, life = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
        local function window(w)
          local v = redis.call('HMGET', w, 'r', 't', 'o', 'r' .. sec, 't' .. sec)
          local r, tk, o = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3])
          if o and o < sec - 60 then
            if o < sec - 121 then
              redis.call('DEL', w)
              return 0, 0, 0, 0, nil
            end
            local old = {}
            for b = o, sec - 61 do
              old[#old + 1] = 'r' .. b
              old[#old + 1] = 't' .. b
            end
            local units = redis.call('HMGET', w, unpack(old))
            for i = 1, #units, 2 do
              r = r - (tonumber(units[i]) or 0)
              tk = tk - (tonumber(units[i + 1]) or 0)
            end
            redis.call('HDEL', w, unpack(old))
            o = sec - 60
            redis.call('HSET', w, 'r', r, 't', tk, 'o', o)
          end
          return r, tk, tonumber(v[4]) or 0, tonumber(v[5]) or 0, o
        end
        local function wait(w, kind, u, c, limit)
          local fields = {}
          for b = sec - 60, sec do fields[#fields + 1] = kind .. b end
          local units = redis.call('HMGET', w, unpack(fields))
          for i = 1, #units do
            u = u - (tonumber(units[i]) or 0)
            if u + c <= limit then return sec + i - now end
          end
          return sec + 61 - now
        end
        local out, state = {0, '', '0', tostring(now)}, {}
        for s = 1, #KEYS / 3 do
          local w, busy, spend, a = KEYS[3 * s - 2], KEYS[3 * s - 1], KEYS[3 * s], 3 + (s - 1) * 4
          local rpm, tpm, conc, budget = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
          local r, tk, rb, tb, o = 0, 0, 0, 0, nil
          if rpm > 0 or tpm > 0 then r, tk, rb, tb, o = window(w) end
          local spent = budget > 0 and tonumber(redis.call('GET', spend) or '0') or 0
          local c = (tpm > 0 and cost > tpm) and tpm or cost
          state[s] = {r, tk, rb, tb, o, c, spent}
          if out[1] == 0 then
            if conc > 0 then redis.call('ZREMRANGEBYSCORE', busy, '-inf', now) end
            if conc > 0 and redis.call('ZCARD', busy) >= conc then out = {s, 'concurrent', '1', out[4]}
            elseif rpm > 0 and r + 1 > rpm then out = {s, 'requests', tostring(wait(w, 'r', r, 1, rpm)), out[4]}
            elseif tpm > 0 and tk + c > tpm then out = {s, 'tokens', tostring(wait(w, 't', tk, c, tpm)), out[4]}
            elseif budget > 0 and spent >= budget then out = {s, 'budget', '0', out[4]} end
          end
        end
        for s = 1, #KEYS / 3 do
          local w, busy, a = KEYS[3 * s - 2], KEYS[3 * s - 1], 3 + (s - 1) * 4
          local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
          local r, tk, rb, tb, o, c, spent = unpack(state[s])
          if out[1] == 0 then
            if rpm > 0 or tpm > 0 then
              r, tk = r + 1, tk + c
              redis.call('HSET', w, 'r', r, 'r' .. sec, rb + 1, 't', tk, 't' .. sec, tb + c, 'o', o or sec)
              redis.call('EXPIRE', w, 62)
            end
            if conc > 0 then
              redis.call('ZADD', busy, now + life, id)
              redis.call('EXPIRE', busy, math.ceil(life) + 1)
            end
          end
          out[#out + 1] = tostring(r)
          out[#out + 1] = tostring(tk)
          out[#out + 1] = tostring(spent)
        end
        return out
        """
    )

    /// KEYS: per subject its window hash, its in-flight set, and its day and month spend counters.
    /// ARGV: request id, used minus reserved tokens, US dollars, the second it was admitted in (Redis's
    /// clock), the spend counters' lifetime (s).
    static let settleScript = RedisScript(
        """
        local sec = tonumber(redis.call('TIME')[1])
        local id, delta, usd, b, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
        for s = 1, #KEYS / 4 do
          local w, busy = KEYS[4 * s - 3], KEYS[4 * s - 2]
          redis.call('ZREM', busy, id)
          if delta ~= 0 and b >= sec - 60 then
            local v = redis.call('HMGET', w, 't' .. b, 't')
            local units = tonumber(v[1])
            if units then
              local new = math.max(0, units + delta)
              redis.call('HSET', w, 't' .. b, new, 't', (tonumber(v[2]) or 0) + new - units)
            end
          end
          if usd > 0 then
            for p = 1, 2 do
              redis.call('INCRBYFLOAT', KEYS[4 * s - 2 + p], usd)
              redis.call('EXPIRE', KEYS[4 * s - 2 + p], ttl)
            end
          end
        end
        return 1
        """
    )

    private func admitArguments(_ charge: QuotaCharge, at now: Double) -> (keys: [String], arguments: [String]) {
        var keys: [String] = []
        var arguments = [String(charge.id), Self.units(charge.tokens), "900"]
        keys.reserveCapacity(3 * charge.subjects.count)
        arguments.reserveCapacity(3 + 4 * charge.subjects.count)
        for (subject, allowance) in charge.subjects {
            keys += [
                windowKey(subject), busyKey(subject),
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
        guard case .array(let values) = reply, values.count == 4 + 3 * charge.subjects.count,
            let admittedAt = values[3].number
        else {
            return nil
        }
        let reset = SlidingWindow.end(of: Int64(admittedAt.rounded(.down))) - admittedAt
        var admission = QuotaAdmission(admittedAt: admittedAt)
        var spent: [QuotaSubject: (usd: Double, period: Budget.Period)] = [:]
        for (i, (subject, allowance)) in charge.subjects.enumerated() {
            let base = 4 + 3 * i
            if let budget = allowance.budget { spent[subject] = (values[base + 2].number ?? 0, budget.period) }
            if let rpm = allowance.requestsPerMinute, let used = values[base].number {
                admission.requests = .tightest(
                    admission.requests,
                    QuotaWindow(limit: Double(rpm), remaining: Double(rpm) - used, resetSeconds: reset)
                )
            }
            if let tpm = allowance.tokensPerMinute, let used = values[base + 1].number {
                admission.tokens = .tightest(
                    admission.tokens,
                    QuotaWindow(limit: Double(tpm), remaining: Double(tpm) - used, resetSeconds: reset)
                )
            }
        }
        if !spent.isEmpty { state.withLock { $0.lastSpent.merge(spent) { _, new in new } } }
        if let index = values[0].number.map(Int.init), index > 0, index <= charge.subjects.count,
            let limit = values[1].text.flatMap(QuotaLimit.init(rawValue:))
        {
            let (subject, allowance) = charge.subjects[index - 1]
            let retry =
                limit == .budget
                ? allowance.budget.map { $0.period.bounds(containing: now).end - now } : values[2].number
            admission.refusal = .init(
                subject: subject,
                limit: limit,
                value: allowance.value(of: limit),
                retryAfterSeconds: retry
            )
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
        // Whatever is still waiting on a connection fails now instead of at its timeout.
        redis.closeAll()
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
        let loop = probeLoop
        redis.withTimeout(on: loop) { [self] connection in
            connection.command(["PING"]).flatMap { [self] _ in
                let pending = state.withLock { state in
                    defer { state.pending = [:] }
                    return state.pending
                }
                let added = pending.flatMap { key, usd in
                    [
                        connection.command(["INCRBYFLOAT", key, String(usd)]),
                        connection.command(["EXPIRE", key, Self.spendTTL]),
                    ]
                }
                return EventLoopFuture.andAllSucceed(added, on: loop).flatMapErrorThrowing { [self] error in
                    // Not added: keep it for the next try.
                    for (key, usd) in pending { addPending([key], usd) }
                    throw error
                }
            }
        }.whenSuccess { [self] in
            state.withLock { $0.up = true }
            observer.changed(true, "reachable again")
        }
    }

    // MARK: - Keys

    private func windowKey(_ subject: QuotaSubject) -> String { "\(prefix)win:\(subject)" }

    private func busyKey(_ subject: QuotaSubject) -> String { "\(prefix)busy:\(subject)" }

    private func spendKey(_ subject: QuotaSubject, period: Budget.Period, at now: Double) -> String {
        "\(prefix)spend:\(subject):\(period.rawValue):\(Int(period.bounds(containing: now).start))"
    }

    static func units(_ value: Double) -> String { String(Int(value.rounded())) }

    /// How long a spend counter outlives its period's start, in seconds: 35 days, past any month.
    static let spendTTL = String(35 * 86_400)
}

extension Allowance {
    /// What the limit is: requests or tokens a minute, requests at once, or US dollars.
    fileprivate func value(of limit: QuotaLimit) -> Double {
        switch limit {
        case .requests: Double(requestsPerMinute ?? 0)
        case .tokens: Double(tokensPerMinute ?? 0)
        case .concurrent: Double(maxConcurrent ?? 0)
        case .budget: budget?.usd ?? 0
        }
    }
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
