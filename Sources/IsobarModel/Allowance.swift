/// What a virtual key or a team may use: which models, how many requests and tokens per minute, how many
/// requests at once, and how many US dollars per budget period. A `nil` limit is no limit.
public struct Allowance: Sendable, Equatable {
    /// The models it may ask for; `nil` for every model.
    public var models: [ModelName]?
    public var requestsPerMinute: Int?
    /// Prompt plus completion tokens per minute.
    public var tokensPerMinute: Int?
    public var maxConcurrent: Int?
    public var budget: Budget?

    public init(
        models: [ModelName]? = nil,
        requestsPerMinute: Int? = nil,
        tokensPerMinute: Int? = nil,
        maxConcurrent: Int? = nil,
        budget: Budget? = nil
    ) {
        self.models = models
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.maxConcurrent = maxConcurrent
        self.budget = budget
    }

    /// Whether it may ask for `model`.
    public func allows(_ model: ModelName) -> Bool { models?.contains(model) ?? true }
}

/// A spending limit in US dollars per calendar period (UTC), priced with each deployment's `price`.
public struct Budget: Sendable, Equatable {
    public enum Period: String, Sendable, Equatable, CaseIterable {
        case day
        case month
    }

    public var usd: Double
    public var period: Period

    public init(usd: Double, period: Period) {
        self.usd = usd
        self.period = period
    }
}

extension Budget.Period {
    /// The period containing `epochSeconds` (seconds since 1970-01-01 UTC): its start and end, as seconds
    /// since the epoch. Days and months are UTC calendar days and months.
    public func bounds(containing epochSeconds: Double) -> (start: Double, end: Double) {
        let day = (epochSeconds / 86_400).rounded(.down)
        switch self {
        case .day:
            return (day * 86_400, (day + 1) * 86_400)
        case .month:
            let (year, month, _) = Self.civil(fromDays: Int64(day))
            let next = month == 12 ? (year + 1, Int64(1)) : (year, month + 1)
            return (
                Double(Self.days(year: year, month: month, day: 1)) * 86_400,
                Double(Self.days(year: next.0, month: next.1, day: 1)) * 86_400
            )
        }
    }

    /// The proleptic Gregorian date of a day counted from 1970-01-01 (Hinnant, "chrono-Compatible
    /// Low-Level Date Algorithms", `civil_from_days`).
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (the same paper's `days_from_civil`).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

/// The SHA-256 digest of an API key: what a topology stores and a node compares, never the key itself.
public struct KeyHash: Sendable, Hashable, CustomStringConvertible {
    /// 32 bytes.
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// Parses `sha256:` followed by 64 hexadecimal digits.
    public init?(text: String) {
        guard text.hasPrefix("sha256:"), let bytes = [UInt8](hexDigits: text.dropFirst(7)) else { return nil }
        self.init(bytes: bytes)
    }

    /// `sha256:` and the digest in lowercase hexadecimal.
    public var description: String { "sha256:" + bytes.hexDigits }
}

/// Virtual keys and teams (`keys:`): who may call the node, and within what limits.
public struct KeySettings: Sendable, Equatable {
    /// The master key's hash: it opens the admin endpoints (`GET /v1/usage`) and is not a virtual key.
    public var master: KeyHash
    public var teams: [Team]
    public var keys: [VirtualKey]

    public init(master: KeyHash, teams: [Team] = [], keys: [VirtualKey] = []) {
        self.master = master
        self.teams = teams
        self.keys = keys
    }

    public func team(_ name: String) -> Team? { teams.first { $0.name == name } }
}

/// A team: the limits its keys share.
public struct Team: Sendable, Equatable {
    public var name: String
    public var allowance: Allowance

    public init(name: String, allowance: Allowance = Allowance()) {
        self.name = name
        self.allowance = allowance
    }
}

/// A key a client calls with, known by its id (in logs, metrics and usage) and its hash.
public struct VirtualKey: Sendable, Equatable {
    public var id: String
    /// The team whose limits it also counts against.
    public var team: String?
    public var hash: KeyHash
    public var allowance: Allowance

    public init(id: String, team: String? = nil, hash: KeyHash, allowance: Allowance = Allowance()) {
        self.id = id
        self.team = team
        self.hash = hash
        self.allowance = allowance
    }
}

/// A shared store for limits and budgets (`redis:`), so that every node sharing it enforces one limit.
public struct RedisSettings: Sendable, Equatable {
    /// What a node does while the store cannot be reached.
    public enum FailureMode: String, Sendable, Equatable, CaseIterable {
        /// Keep serving on the node's own counters, each limit divided by the live nodes of the mesh.
        case local
        /// Refuse requests that have limits (503) until the store is back.
        case closed
    }

    public var host: String
    public var port: Int
    /// Selected with `SELECT` on connect.
    public var database: Int
    public var username: String?
    public var password: Secret?
    public var onFailure: FailureMode
    /// Longest a request waits on the store before the node decides on its own counters.
    public var timeoutMs: Double
    /// Connections kept open to the store.
    public var pool: Int

    public init(
        host: String,
        port: Int = 6379,
        database: Int = 0,
        username: String? = nil,
        password: Secret? = nil,
        onFailure: FailureMode = .local,
        timeoutMs: Double = 50,
        pool: Int = 4
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.onFailure = onFailure
        self.timeoutMs = timeoutMs
        self.pool = pool
    }
}
