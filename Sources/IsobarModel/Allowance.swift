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
