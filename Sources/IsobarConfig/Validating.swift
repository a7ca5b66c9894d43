import IsobarModel

/// A validator of one configuration file: the checks every validator shares. Each logs what is wrong to
/// `log` and returns `nil`, so that validation goes on and reports every problem of the file.
protocol Validating {
    var log: DiagnosticLog { get }
}

extension Validating {
    // MARK: - References and names

    /// `value`, or logs that `key` of `owner` is missing.
    func required<Value>(_ value: Sourced<Value>?, _ key: String, in owner: Location) -> Sourced<Value>? {
        if value == nil { log.missing(owner.key(key)) }
        return value
    }

    /// The name `reference` refers to, or `nil` after logging that it is missing or names no `kind`.
    func reference(
        _ reference: Sourced<String>?,
        _ key: String,
        in owner: Location,
        kind: String,
        among names: [String]
    ) -> String? {
        guard let reference = required(reference, key, in: owner) else { return nil }
        guard names.contains(reference.value) else {
            let hint = suggestion(for: reference.value, among: names)
            let known = hint.isEmpty && !names.isEmpty ? "; defined: \(names.joined(separator: ", "))" : hint
            log.error(reference.location, "unknown \(kind) '\(reference.value)'\(known)")
            return nil
        }
        return reference.value
    }

    /// The case of `Choice` named by `value`, or `nil` after logging the valid names.
    func choice<Choice: RawRepresentable & CaseIterable>(_ value: Sourced<String>, _ kind: String) -> Choice?
    where Choice.RawValue == String {
        if let choice = Choice(rawValue: value.value) { return choice }
        let names = Choice.allCases.map(\.rawValue)
        let hint = suggestion(for: value.value, among: names)
        log.error(
            value.location,
            "unknown \(kind) '\(value.value)'\(hint); use one of \(names.joined(separator: ", "))"
        )
        return nil
    }

    /// A balancing policy.
    func policy(_ value: Sourced<String>) -> PolicyKind? {
        guard let policy = PolicyKind(rawValue: value.value) else {
            let names = PolicyKind.allCases.map(\.rawValue)
            let hint = suggestion(for: value.value, among: names)
            log.error(
                value.location,
                "unknown policy '\(value.value)'\(hint); use one of \(names.joined(separator: ", "))"
            )
            return nil
        }
        return policy
    }

    // MARK: - Numbers

    /// The value if it is greater than zero; `nil` if absent or after logging that it is not.
    func positive(_ value: Sourced<Double>?) -> Double? {
        guard let value else { return nil }
        guard value.value > 0 else {
            log.error(value.location, "must be greater than 0, got \(format(value.value))")
            return nil
        }
        return value.value
    }

    /// The value if it is zero or more; `nil` if absent or after logging that it is negative.
    func nonNegative(_ value: Sourced<Double>?) -> Double? {
        guard let value else { return nil }
        guard value.value >= 0 else {
            log.error(value.location, "must not be negative, got \(format(value.value))")
            return nil
        }
        return value.value
    }

    /// The value if it is in `range`; `nil` if absent or after logging that it is out of range.
    func integer(_ value: Sourced<Int>?, in range: ClosedRange<Int>, units: String = "") -> Int? {
        guard let value else { return nil }
        guard range.contains(value.value) else {
            let expected =
                range.upperBound == .max
                ? "must be at least \(range.lowerBound)"
                : "must be from \(range.lowerBound) to \(range.upperBound)"
            log.error(value.location, "\(expected)\(units), got \(value.value)")
            return nil
        }
        return value.value
    }

    /// `2` rather than `2.0`; fractions as they are.
    func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}
