import Crypto
import IsobarModel
import IsobarRouting
import IsobarWire
import NIOCore
import NIOHTTP1
import Synchronization

/// A caller known by its virtual key.
struct Principal: Sendable {
    let key: VirtualKey
    let team: Team?

    /// The limits the caller's requests count against: its key's, then its team's.
    var subjects: [(subject: QuotaSubject, allowance: Allowance)] {
        var subjects = [(QuotaSubject(.key, key.id), key.allowance)]
        if let team { subjects.append((QuotaSubject(.team, team.name), team.allowance)) }
        return subjects
    }

    func allows(_ model: ModelName) -> Bool {
        key.allowance.allows(model) && (team?.allowance.allows(model) ?? true)
    }
}

/// Who sent a request, once its credentials were checked.
enum Caller: Sendable {
    /// A client with a virtual key: its requests count against its limits here.
    case key(Principal)
    /// A request another node of the mesh forwarded for a key; that node counted it.
    case forwarded(Principal)
    /// The master key: the admin endpoints.
    case master

    var principal: Principal? {
        switch self {
        case .key(let principal), .forwarded(let principal): principal
        case .master: nil
        }
    }
}

/// Virtual keys at the node (issue 7): who may call, within which limits and budgets, and what each key,
/// team and model used. The checks are pure lookups; the counting is the limit store's.
final class Governor: Sendable {
    let settings: KeySettings
    let store: any LimitStore
    private let principals: [KeyHash: Principal]
    private let byID: [String: Principal]
    /// Signs the requests this node forwards, so the node that serves them knows which key they are for
    /// and that they were counted already (derived from the master key's hash, which every node has).
    private let hopKey: [UInt8]
    private let usage: Mutex<[UsageKey: UsageCounts]>
    /// When the node started counting (epoch seconds).
    let since: Double
    /// Every key and team with a budget.
    private let budgeted: [(QuotaSubject, Budget)]

    struct UsageKey: Hashable {
        var key: String
        var model: String
    }

    struct UsageCounts {
        var requests = 0
        var promptTokens = 0
        var completionTokens = 0
        var usd = 0.0

        mutating func add(_ other: UsageCounts) {
            requests += other.requests
            promptTokens += other.promptTokens
            completionTokens += other.completionTokens
            usd += other.usd
        }
    }

    /// Longest a forwarded request's signature stays valid, in seconds either way (clock skew included).
    static let hopValidity = 300.0
    static let hopAuthHeader = "x-isobar-hop-auth"

    /// With `previous` (the governor before a topology reload), usage counts on from what it counted.
    init(settings: KeySettings, meshName: String, store: any LimitStore, now: Double, previous: Governor? = nil) {
        self.settings = settings
        self.store = store
        let teams = Dictionary(settings.teams.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let principals = settings.keys.map { Principal(key: $0, team: $0.team.flatMap { teams[$0] }) }
        self.principals = Dictionary(principals.map { ($0.key.hash, $0) }, uniquingKeysWith: { a, _ in a })
        self.byID = Dictionary(principals.map { ($0.key.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.hopKey = Array(SHA256.hash(data: Array("isobar hop v1\n\(meshName)\n".utf8) + settings.master.bytes))
        self.budgeted =
            settings.keys.compactMap { key in key.allowance.budget.map { (QuotaSubject(.key, key.id), $0) } }
            + settings.teams.compactMap { team in team.allowance.budget.map { (QuotaSubject(.team, team.name), $0) } }
        self.usage = Mutex(previous?.usage.withLock { $0 } ?? [:])
        self.since = previous?.since ?? now
    }

    // MARK: - Authentication

    /// The caller of a request, from `Authorization: Bearer KEY` or `x-api-key: KEY`, or from the
    /// signature of a node that forwarded it; else why not (401).
    func authenticate(_ request: HTTPRequest, now: Double) -> Result<Caller, GatewayError> {
        let headers = request.head.headers
        if let sender = headers.first(name: Exchange.hopHeader) {
            return verifyHop(headers.first(name: Self.hopAuthHeader), sender: sender, request: request, now: now)
        }
        let token: Substring
        if let authorization = headers.first(name: "authorization") {
            let parts = authorization.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                return .failure(
                    GatewayError(
                        .unauthorized,
                        "Malformed Authorization header: expected 'Bearer <key>'",
                        errorCode: "invalid_api_key"
                    )
                )
            }
            token = parts[1]
        } else if let key = headers.first(name: "x-api-key") {
            token = Substring(key)
        } else {
            return .failure(
                GatewayError(
                    .unauthorized,
                    "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                    errorCode: "missing_api_key"
                )
            )
        }
        let hash = KeyHash(digest: SHA256.hash(data: Array(token.utf8)))
        if hash == settings.master { return .success(.master) }
        guard let principal = principals[hash] else {
            return .failure(GatewayError(.unauthorized, "Incorrect API key provided", errorCode: "invalid_api_key"))
        }
        return .success(.key(principal))
    }

    /// The `x-isobar-hop-auth` value for a request this node forwards for `principal`:
    /// `TIME:HMAC:KEY-ID`, the HMAC over the sender, the request id, the key id, the time and the body.
    func hopCredentials(
        for principal: Principal,
        sender: NodeID,
        requestID: String,
        body: ByteBuffer,
        now: Double
    )
        -> String
    {
        let time = String(Int(now))
        let code = hopCode(
            sender: sender.rawValue,
            requestID: requestID,
            keyID: principal.key.id,
            time: time,
            body: body
        )
        return "\(time):\(code.hexDigits):\(principal.key.id)"
    }

    private func verifyHop(
        _ credentials: String?,
        sender: String,
        request: HTTPRequest,
        now: Double
    )
        -> Result<Caller, GatewayError>
    {
        let refused = GatewayError(
            .unauthorized,
            "A forwarded request needs a valid \(Self.hopAuthHeader) signature from a node of this mesh",
            errorCode: "invalid_api_key"
        )
        guard let credentials else { return .failure(refused) }
        let parts = credentials.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let time = Double(parts[0]), abs(now - time) <= Self.hopValidity,
            let principal = byID[String(parts[2])],
            let requestID = request.head.headers.first(name: "x-request-id"),
            let received = [UInt8](hexDigits: parts[1])
        else { return .failure(refused) }
        let expected = hopCode(
            sender: sender,
            requestID: requestID,
            keyID: principal.key.id,
            time: String(parts[0]),
            body: request.body
        )
        // Crypto compares a code with bytes in constant time.
        guard expected == received else { return .failure(refused) }
        return .success(.forwarded(principal))
    }

    private func hopCode(
        sender: String,
        requestID: String,
        keyID: String,
        time: String,
        body: ByteBuffer
    ) -> HMAC<SHA256>.MAC {
        var mac = HMAC<SHA256>(key: SymmetricKey(data: hopKey))
        mac.update(data: Array("\(sender)\n\(requestID)\n\(keyID)\n\(time)\n".utf8))
        body.withUnsafeReadableBytes { mac.update(data: $0) }
        return mac.finalize()
    }

    // MARK: - Limits

    /// What a request reserves: its prompt estimate and, for a generation, its `max_tokens` (else 256).
    static func reservedTokens(_ profile: RequestProfile) -> Double {
        let output = profile.operation.generates ? profile.maxTokens ?? 256 : 0
        return Double(profile.promptTokens + output)
    }

    /// The error and headers a refused request is answered with: 429 with `retry-after`.
    static func refusal(_ refusal: QuotaAdmission.Refusal, _ admission: QuotaAdmission) -> (GatewayError, HTTPHeaders) {
        var headers = rateLimitHeaders(admission)
        if let seconds = refusal.retryAfterSeconds {
            headers.replaceOrAdd(name: "retry-after", value: String(max(1, Int(seconds.rounded(.up)))))
            headers.replaceOrAdd(name: "retry-after-ms", value: String(max(1, Int((seconds * 1000).rounded(.up)))))
        }
        let whose = "\(refusal.subject.kind.rawValue) '\(refusal.subject.name)'"
        let value = Int(refusal.value.rounded(.down))
        let error: GatewayError =
            switch refusal.limit {
            case .requests:
                GatewayError(
                    .overLimit,
                    "Rate limit reached for \(whose): \(value) requests per minute",
                    errorCode: "rate_limit_exceeded"
                )
            case .tokens:
                GatewayError(
                    .overLimit,
                    "Rate limit reached for \(whose): \(value) tokens per minute",
                    errorCode: "rate_limit_exceeded"
                )
            case .concurrent:
                GatewayError(
                    .overLimit,
                    "Too many requests at once for \(whose): at most \(value) at a time",
                    errorCode: "concurrency_limit_exceeded"
                )
            case .budget:
                GatewayError(
                    .overLimit,
                    "Budget exceeded for \(whose): \(refusal.value) USD this period",
                    errorCode: "budget_exceeded"
                )
            }
        if refusal.retryAfterSeconds == nil {
            // It needs more than the whole limit: retrying cannot help.
            headers.replaceOrAdd(name: "x-should-retry", value: "false")
        }
        return (error, headers)
    }

    /// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` as OpenAI sends them.
    static func rateLimitHeaders(_ admission: QuotaAdmission) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for (name, window) in [("requests", admission.requests), ("tokens", admission.tokens)] {
            guard let window else { continue }
            headers.add(name: "x-ratelimit-limit-\(name)", value: String(Int(window.limit.rounded(.down))))
            headers.add(
                name: "x-ratelimit-remaining-\(name)",
                value: String(max(0, Int(window.remaining.rounded(.down))))
            )
            headers.add(name: "x-ratelimit-reset-\(name)", value: durationText(window.resetSeconds))
        }
        return headers
    }

    /// `850ms`, `1.5s`, `6m0s`: OpenAI's reset format.
    static func durationText(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded(.up)))ms" }
        if seconds < 60 {
            let tenths = (seconds * 1000).rounded(.up) / 1000
            return tenths == tenths.rounded() ? "\(Int(tenths))s" : "\(tenths)s"
        }
        let whole = Int(seconds.rounded(.up))
        return whole >= 3600 ? "\(whole / 3600)h\(whole % 3600 / 60)m\(whole % 60)s" : "\(whole / 60)m\(whole % 60)s"
    }

    // MARK: - Usage

    /// The cost of `usage` on `backend`, in US dollars.
    static func cost(_ usage: Usage, on backend: Backend?) -> Double {
        guard let price = backend?.price else { return 0 }
        return (Double(usage.promptTokens) * price.inputPerMTok + Double(usage.completionTokens) * price.outputPerMTok)
            / 1e6
    }

    /// Counts a finished request of `principal` for `GET /v1/usage`.
    func record(_ principal: Principal, model: String, usage: Usage?, usd: Double) {
        let counts = UsageCounts(
            requests: 1,
            promptTokens: usage?.promptTokens ?? 0,
            completionTokens: usage?.completionTokens ?? 0,
            usd: usd
        )
        self.usage.withLock { $0[UsageKey(key: principal.key.id, model: model), default: UsageCounts()].add(counts) }
    }

    /// The `GET /v1/usage` body: what each key and team used through this node since it started, by model,
    /// and what each budget has spent in its period (every node's, when the store is shared).
    func usageBody(node: NodeID, now: Double, on loop: any EventLoop) -> EventLoopFuture<JSON> {
        let counts = usage.withLock { $0 }
        return budgetsSpent(now: now, on: loop).map { spent in
            var budgets: [QuotaSubject: JSON] = [:]
            for (subject, budget, usd) in spent {
                budgets[subject] = [
                    "usd": .double(budget.usd), "period": .string(budget.period.rawValue), "spent_usd": .double(usd),
                    "remaining_usd": .double(max(0, budget.usd - usd)),
                    "resets_at": .int(Int(budget.period.bounds(containing: now).end)),
                ]
            }
            let keys: [JSON] = self.settings.keys.map { key in
                var entry = Self.usageEntry(counts.filter { $0.key.key == key.id })
                entry["id"] = .string(key.id)
                entry["team"] = key.team.map(JSON.string) ?? .null
                entry["budget"] = budgets[QuotaSubject(.key, key.id)] ?? .null
                return .object(entry)
            }
            let teams: [JSON] = self.settings.teams.map { team in
                let members = Set(self.settings.keys.filter { $0.team == team.name }.map(\.id))
                var entry = Self.usageEntry(counts.filter { members.contains($0.key.key) })
                entry["name"] = .string(team.name)
                entry["budget"] = budgets[QuotaSubject(.team, team.name)] ?? .null
                return .object(entry)
            }
            return [
                "object": "usage", "node": .string(node.rawValue), "store": .string(self.store.kind),
                "since": .int(Int(self.since)), "keys": .array(keys), "teams": .array(teams),
            ]
        }
    }

    /// Every key and team with a budget, with what it spent in the period containing `now` (every node's,
    /// when the store is shared).
    func budgetsSpent(now: Double, on loop: any EventLoop) -> EventLoopFuture<[(QuotaSubject, Budget, Double)]> {
        let budgeted = self.budgeted
        return store.spent(budgeted.map { ($0.0, $0.1.period) }, at: now, on: loop).map { spent in
            zip(budgeted, spent).map { ($0.0, $0.1, $1) }
        }
    }

    /// Totals and per-model counts of some keys' usage.
    private static func usageEntry(_ counts: [UsageKey: UsageCounts]) -> JSONObject {
        var total = UsageCounts()
        var models: [String: UsageCounts] = [:]
        for (key, value) in counts {
            total.add(value)
            models[key.model, default: UsageCounts()].add(value)
        }
        var entry = json(total)
        entry["models"] = .object(
            JSONObject(models.sorted { $0.key < $1.key }.map { ($0.key, .object(json($0.value))) })
        )
        return entry
    }

    private static func json(_ counts: UsageCounts) -> JSONObject {
        [
            "requests": .int(counts.requests), "prompt_tokens": .int(counts.promptTokens),
            "completion_tokens": .int(counts.completionTokens), "cost_usd": .double(counts.usd),
        ]
    }
}

extension KeyHash {
    init(digest: SHA256.Digest) {
        // A SHA-256 digest is 32 bytes.
        self.init(bytes: Array(digest))!
    }
}
