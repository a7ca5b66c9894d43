/// Writes the Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE` and samples with
/// escaped label values.
public struct PrometheusText: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public enum Kind: String, Sendable {
        case counter, gauge, histogram, summary, untyped
    }

    /// Starts a metric family.
    public mutating func family(_ name: String, _ kind: Kind, help: String) {
        append("# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n")
    }

    /// Writes one sample.
    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        append(name)
        if !labels.isEmpty {
            append("{")
            for (i, (key, labelValue)) in labels.enumerated() {
                if i > 0 { append(",") }
                append("\(key)=\"\(Self.escapeLabel(labelValue))\"")
            }
            append("}")
        }
        append(" \(Self.format(value))\n")
    }

    /// A sample value as Prometheus writes it (`NaN`, `+Inf`, `-Inf`, or a decimal).
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return "\(Int64(value)).0" }
        return "\(value)"
    }

    /// Escapes per scalar, not per `Character`: a quote, backslash or newline can be part of a larger
    /// character (`"\r\n"`, a quote followed by a combining mark) and must still be escaped.
    static func escapeLabel(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func escapeHelp(_ s: String) -> String {
        s.replacingBackslashesAndNewlines()
    }

    private mutating func append(_ s: String) { bytes.append(contentsOf: s.utf8) }
}

extension String {
    fileprivate func replacingBackslashesAndNewlines() -> String {
        var out = ""
        for c in unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
