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
    /// This node's name: whose slots the store holds for its leases.
    private let node: String
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
        /// The leases this node holds on the store's limits, and what they did that the store has not
        /// been told yet.
        var leases = QuotaLeases()
    }

    /// Told when the store goes away or comes back, and of each request decided on the node's own
    /// counters (to log and count them).
    struct Observer: Sendable {
        var changed: @Sendable (_ up: Bool, _ reason: String) -> Void
        var decidedLocally: @Sendable () -> Void
        /// A request admitted on the node's leases.
        var leased: @Sendable () -> Void
        /// A script answered with an error: a bug to see in the logs, not an outage.
        var scriptFailed: @Sendable (_ message: String) -> Void
    }

    init(
        redis: RedisClient,
        node: String,
        probeLoop: any EventLoop,
        liveNodes: @escaping @Sendable () -> Int,
        observer: Observer
    ) {
        self.redis = redis
        self.node = node
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
        let decided = state.withLock { state -> (up: Bool, QuotaAdmission?, [QuotaLeases.Request?]) in
            guard state.up else { return (false, nil, []) }
            if let admission = state.leases.admit(charge, at: now) { return (true, admission, []) }
            return (true, nil, state.leases.requests(for: charge, at: now))
        }
        guard decided.up else { return fallback(charge, at: now, on: loop) }
        if let admission = decided.1 {
            observer.leased()
            return loop.makeSucceededFuture(admission)
        }
        let leases = decided.2
        let script = admitArguments(charge, leases, at: now)
        let answer = redis.withTimeout(on: loop) {
            $0.evaluate(Self.admitScript, keys: script.keys, arguments: script.arguments)
        }
        return answer.flatMapThrowing { [self] reply in
            if case .error(let message) = reply { throw RedisError(message: "redis: \(message)", isReply: true) }
            guard let admission = admission(reply, charge, leases, at: now) else {
                throw RedisError(message: "redis: unexpected reply to the admission script: \(reply)")
            }
            return admission
        }.flatMapError { [self] error in
            state.withLock { state in
                for (i, lease) in leases.enumerated() where lease != nil {
                    state.leases.granted(charge.subjects[i].subject, nil, at: now)
                }
            }
            wentDown("\(error)")
            return fallback(charge, at: now, on: loop)
        }
    }

    func settle(_ settlement: QuotaSettlement, at now: Double, on loop: any EventLoop) {
        let up = state.withLock { state in
            if state.up { state.leases.settle(settlement) }
            return state.up
        }
        // The node's own ledger counts only while the store is away (it starts over when it goes away).
        guard up else {
            local.withLock { $0.settle(settlement, at: now) }
            return addPending(settlement.subjects.map { ($0, settlement.usd) }, at: now)
        }
        // A request the store admitted is released at once (its slot, its tokens); one admitted on a lease
        // is reported with the others once a second.
        if !settlement.leased { report(releasing: settlement, on: loop) }
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
            // Unanswered: what the store last said while it is taken to be up; when it is away, the node's
            // own count (which starts from that).
            let said = state.withLock { state in
                state.up
                    ? subjects.map { subject, period in
                        state.lastSpent[subject].map { $0.period == period ? $0.usd : 0 } ?? 0
                    } : nil
            }
            return loop.makeSucceededFuture(
                said ?? local.withLock { ledger in subjects.map { ledger.spent($0, period: $1, at: now) } }
            )
        }
    }

    /// Tells the store what the leases did since the last report (window changes, slots held, spend),
    /// and releases `settlement`, a request it admitted itself.
    private func report(releasing settlement: QuotaSettlement? = nil, on loop: any EventLoop) {
        let now = WallClock.seconds()
        var reports = state.withLock { $0.leases.drain(at: now) }
        if let settlement {
            for subject in settlement.subjects where !reports.contains(where: { $0.0 == subject }) {
                reports.append((subject, QuotaLeases.Report()))
            }
        }
        guard !reports.isEmpty else { return }
        var keys: [String] = []
        var arguments = [node, Self.spendTTL]
        for (subject, report) in reports {
            keys += [windowKey(subject), busyKey(subject), heldKey(subject)]
            keys += Budget.Period.allCases.map { spendKey(subject, period: $0, at: now) }
            let released = settlement.flatMap { $0.subjects.contains(subject) ? String($0.id) : nil }
            arguments += [released ?? "", String(report.adjustments.count)]
            for adjustment in report.adjustments {
                arguments += [
                    String(adjustment.second), Self.units(adjustment.requests), Self.units(adjustment.tokens),
                ]
            }
            arguments += [report.slots.map(String.init) ?? "-1", String(report.usd)]
        }
        // No timer of its own: nothing waits for it, and a store that stops answering is found by the next
        // admission's timeout, which closes the connections and so fails this too.
        let spent = reports.map { ($0.0, $0.1.usd) }
        redis.connection(on: loop) { [keys, arguments] in
            $0.evaluate(Self.reportScript, keys: keys, arguments: arguments)
        }
        .whenComplete { [self] result in
            switch result {
            case .success(.error(let message)):
                observer.scriptFailed("redis: \(message)")
            case .success:
                break
            case .failure(let error):
                wentDown("\(error)")
                addPending(spent, at: now)
            }
        }
    }

    // MARK: - Scripts

    /// The per-minute windows of a subject live in one hash (`SlidingWindow`'s rule): `r` and `t`, the
    /// requests and tokens counted; `o`, the oldest second that may still hold any; and per second
    /// `r<second>` and `t<second>`. A second counts until 61 s after it began; the script drops older
    /// ones as it goes, so a hash holds at most 61 seconds whatever the rate. Requests at once are the
    /// members of a sorted set (one per request the store admitted, scored by when it lapses) plus the
    /// slots each node holds for its leases (a hash: node → `slots:lapses`).
    ///
    /// KEYS: per subject its window hash, its in-flight set, its held slots and the spend counter of its
    /// budget's period.
    /// ARGV: request id, reserved tokens, in-flight lifetime (s), node, lease headroom (`QuotaLeases.headroom`
    /// times the live nodes), then per subject: rpm, tpm, max concurrent, budget (0: none), and the lease
    /// asked for: requests, tokens, slots to hold, US dollars (-1: no lease).
    /// Returns {refused subject (0: none), limit, retry-after (s), Redis's time} then per subject
    /// {requests counted, tokens counted, spent, lease granted (1) or not (0)}.
    static let admitScript = RedisScript(
        """
        local t = redis.call('TIME')
        local sec = tonumber(t[1])
        local now = sec + tonumber(t[2]) / 1000000
        local id, cost, life, node, room = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
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
        local function busy(zset, held)
          redis.call('ZREMRANGEBYSCORE', zset, '-inf', now)
          local total, mine, h = redis.call('ZCARD', zset), 0, redis.call('HGETALL', held)
          for i = 1, #h, 2 do
            local k, x = string.match(h[i + 1], '^(%d+):(.+)$')
            if x and tonumber(x) > now then
              total = total + tonumber(k)
              if h[i] == node then mine = tonumber(k) end
            else
              redis.call('HDEL', held, h[i])
            end
          end
          return total, mine
        end
        local out, state = {0, '', '0', tostring(now)}, {}
        for s = 1, #KEYS / 4 do
          local w, zset, held, spend, a = KEYS[4 * s - 3], KEYS[4 * s - 2], KEYS[4 * s - 1], KEYS[4 * s], 5 + (s - 1) * 9
          local rpm, tpm, conc, budget = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
          local r, tk, rb, tb, o = 0, 0, 0, 0, nil
          if rpm > 0 or tpm > 0 then r, tk, rb, tb, o = window(w) end
          local spent = budget > 0 and tonumber(redis.call('GET', spend) or '0') or 0
          local c = (tpm > 0 and cost > tpm) and tpm or cost
          local n, mine = 0, 0
          if conc > 0 then n, mine = busy(zset, held) end
          local lr, lt, ls, lu = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7]), tonumber(ARGV[a + 8])
          local lease = lu >= 0 and (rpm == 0 or rpm - r - 1 >= (room + 1) * lr)
            and (tpm == 0 or tpm - tk - c >= (room + 1) * lt)
            and (conc == 0 or conc - n - 1 - math.max(0, ls - mine) >= room * ls)
            and (budget == 0 or budget - spent >= room * lu)
          state[s] = {r, tk, rb, tb, o, c, spent, lease and 1 or 0}
          if out[1] == 0 then
            if conc > 0 and n >= conc then out = {s, 'concurrent', '1', out[4]}
            elseif rpm > 0 and r + 1 > rpm then out = {s, 'requests', tostring(wait(w, 'r', r, 1, rpm)), out[4]}
            elseif tpm > 0 and tk + c > tpm then out = {s, 'tokens', tostring(wait(w, 't', tk, c, tpm)), out[4]}
            elseif budget > 0 and spent >= budget then out = {s, 'budget', '0', out[4]} end
          end
        end
        for s = 1, #KEYS / 4 do
          local w, zset, held, a = KEYS[4 * s - 3], KEYS[4 * s - 2], KEYS[4 * s - 1], 5 + (s - 1) * 9
          local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
          local r, tk, rb, tb, o, c, spent, lease = unpack(state[s])
          if out[1] ~= 0 then lease = 0 end
          if out[1] == 0 then
            local lr, lt = 0, 0
            if lease == 1 then lr, lt = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6]) end
            if rpm > 0 or tpm > 0 then
              r, tk = r + 1 + lr, tk + c + lt
              redis.call('HSET', w, 'r', r, 'r' .. sec, rb + 1 + lr, 't', tk, 't' .. sec, tb + c + lt, 'o', o or sec)
              redis.call('EXPIRE', w, 62)
            end
            if conc > 0 then
              redis.call('ZADD', zset, now + life, id)
              redis.call('EXPIRE', zset, math.ceil(life) + 1)
              if lease == 1 then
                redis.call('HSET', held, node, ARGV[a + 7] .. ':' .. (now + 10))
                redis.call('EXPIRE', held, 11)
              end
            end
          end
          out[#out + 1] = tostring(r)
          out[#out + 1] = tostring(tk)
          out[#out + 1] = tostring(spent)
          out[#out + 1] = tostring(lease)
        end
        return out
        """
    )

    /// What a node's leases did, and the release of a request the store admitted.
    /// KEYS: per subject its window hash, its in-flight set, its held slots, and its day and month spend
    /// counters.
    /// ARGV: node, the spend counters' lifetime (s), then per subject: the id of the request released
    /// ('' for none), the number of window changes and each as {second, requests, tokens}, the slots the
    /// node now holds (-1: unchanged) and the US dollars spent.
    static let reportScript = RedisScript(
        """
        local t = redis.call('TIME')
        local sec = tonumber(t[1])
        local now = sec + tonumber(t[2]) / 1000000
        local node, ttl, a = ARGV[1], ARGV[2], 3
        local function add(w, b, dr, dt)
          if b < sec - 60 then return end
          local v = redis.call('HMGET', w, 'r' .. b, 't' .. b, 'r', 't', 'o')
          if not v[1] and not v[2] and dr <= 0 then return end
          local rb, tb = tonumber(v[1]) or 0, tonumber(v[2]) or 0
          local nr, nt = math.max(0, rb + dr), math.max(0, tb + dt)
          local o = tonumber(v[5])
          if not o or b < o then o = b end
          redis.call('HSET', w, 'r' .. b, nr, 't' .. b, nt, 'r', (tonumber(v[3]) or 0) + nr - rb,
            't', (tonumber(v[4]) or 0) + nt - tb, 'o', o)
          redis.call('EXPIRE', w, 62)
        end
        for s = 1, #KEYS / 5 do
          local w, zset, held = KEYS[5 * s - 4], KEYS[5 * s - 3], KEYS[5 * s - 2]
          local id, n = ARGV[a], tonumber(ARGV[a + 1])
          if id ~= '' then redis.call('ZREM', zset, id) end
          for i = 0, n - 1 do
            add(w, tonumber(ARGV[a + 2 + 3 * i]), tonumber(ARGV[a + 3 + 3 * i]), tonumber(ARGV[a + 4 + 3 * i]))
          end
          a = a + 2 + 3 * n
          local slots, usd = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
          a = a + 2
          if slots > 0 then
            redis.call('HSET', held, node, slots .. ':' .. (now + 10))
            redis.call('EXPIRE', held, 11)
          elseif slots == 0 then
            redis.call('HDEL', held, node)
          end
          if usd > 0 then
            for p = 1, 0, -1 do
              redis.call('INCRBYFLOAT', KEYS[5 * s - p], usd)
              redis.call('EXPIRE', KEYS[5 * s - p], ttl)
            end
          end
        end
        return 1
        """
    )

    private func admitArguments(
        _ charge: QuotaCharge,
        _ leases: [QuotaLeases.Request?],
        at now: Double
    ) -> (keys: [String], arguments: [String]) {
        var keys: [String] = []
        var arguments = [
            String(charge.id), Self.units(charge.tokens), "900", node,
            String(QuotaLeases.headroom * Double(liveNodes())),
        ]
        keys.reserveCapacity(4 * charge.subjects.count)
        arguments.reserveCapacity(5 + 9 * charge.subjects.count)
        for ((subject, allowance), lease) in zip(charge.subjects, leases) {
            keys += [
                windowKey(subject), busyKey(subject), heldKey(subject),
                spendKey(subject, period: allowance.budget?.period ?? .day, at: now),
            ]
            arguments += [
                String(allowance.requestsPerMinute ?? 0), String(allowance.tokensPerMinute ?? 0),
                String(allowance.maxConcurrent ?? 0), String(allowance.budget?.usd ?? 0),
                Self.units(lease?.requests ?? 0), Self.units(lease?.tokens ?? 0), String(lease?.slots ?? 0),
                lease.map { $0.usd.map { String($0) } ?? "-1" } ?? "-1",
            ]
        }
        return (keys, arguments)
    }

    /// The admission the script's reply says, with the leases it granted recorded; nil for a reply of the
    /// wrong shape (never admitted blindly).
    private func admission(
        _ reply: RedisValue,
        _ charge: QuotaCharge,
        _ leases: [QuotaLeases.Request?],
        at now: Double
    ) -> QuotaAdmission? {
        guard case .array(let values) = reply, values.count == 4 + 4 * charge.subjects.count,
            let admittedAt = values[3].number
        else {
            return nil
        }
        let reset = SlidingWindow.end(of: Int64(admittedAt.rounded(.down))) - admittedAt
        var admission = QuotaAdmission(admittedAt: admittedAt)
        var spent: [QuotaSubject: (usd: Double, period: Budget.Period)] = [:]
        var grants: [(QuotaSubject, QuotaLeases.Grant?)] = []
        for (i, ((subject, allowance), lease)) in zip(charge.subjects, leases).enumerated() {
            let base = 4 + 4 * i
            let counted = (requests: values[base].number ?? 0, tokens: values[base + 1].number ?? 0)
            let grant = lease.flatMap { lease in
                values[base + 3].number == 1
                    ? QuotaLeases.Grant(
                        request: lease,
                        storeNow: admittedAt,
                        requestsCounted: counted.requests,
                        tokensCounted: counted.tokens,
                        spentUSD: values[base + 2].number ?? 0
                    ) : nil
            }
            if lease != nil { grants.append((subject, grant)) }
            if let budget = allowance.budget { spent[subject] = (values[base + 2].number ?? 0, budget.period) }
            // The headers show the window without the lease the node now holds.
            if let rpm = allowance.requestsPerMinute {
                let used = counted.requests - (grant?.request.requests ?? 0)
                admission.requests = .tightest(
                    admission.requests,
                    QuotaWindow(limit: Double(rpm), remaining: Double(rpm) - used, resetSeconds: reset)
                )
            }
            if let tpm = allowance.tokensPerMinute {
                let used = counted.tokens - (grant?.request.tokens ?? 0)
                admission.tokens = .tightest(
                    admission.tokens,
                    QuotaWindow(limit: Double(tpm), remaining: Double(tpm) - used, resetSeconds: reset)
                )
            }
        }
        state.withLock { state in
            state.lastSpent.merge(spent) { _, new in new }
            for (subject, grant) in grants { state.leases.granted(subject, grant, at: now) }
        }
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
        let (wasUp, lastSpent, unreported) = state.withLock { state in
            defer {
                state.up = false
                state.share = share
            }
            return (state.up, state.lastSpent, state.up ? state.leases.reset() : [])
        }
        guard wasUp else { return }
        // The leases lapse in the store; what they spent and had not reported yet is added when it is back.
        addPending(unreported, at: now)
        // Whatever is still waiting on a connection fails now instead of at its timeout.
        redis.closeAll()
        // Counting alone from here: start each budget from what the store last said was spent.
        local.withLock { ledger in
            ledger.reset()
            for (subject, spent) in lastSpent { ledger.setBase(subject, usd: spent.usd, period: spent.period, at: now) }
        }
        observer.changed(false, reason)
    }

    /// Keeps what subjects spent while the store was away, to add to their day and month when it is back.
    private func addPending(_ spent: [(QuotaSubject, Double)], at now: Double) {
        var pending: [String: Double] = [:]
        for (subject, usd) in spent where usd > 0 {
            for period in Budget.Period.allCases {
                pending[spendKey(subject, period: period, at: now), default: 0] += usd
            }
        }
        guard !pending.isEmpty else { return }
        state.withLock { $0.pending.merge(pending, uniquingKeysWith: +) }
    }

    /// Each second: refreshes the node's share and reports what the leases did; while the store is away,
    /// tries it again, and once it answers adds what was spent meanwhile and goes back to it.
    private func probe() {
        let share = liveShare
        let up = state.withLock { state in
            state.share = share
            return state.up
        }
        guard !up else { return report(on: probeLoop) }
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
                    state.withLock { $0.pending.merge(pending, uniquingKeysWith: +) }
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

    private func heldKey(_ subject: QuotaSubject) -> String { "\(prefix)held:\(subject)" }

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
