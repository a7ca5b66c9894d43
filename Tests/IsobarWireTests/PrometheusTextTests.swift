import IsobarModel
import Testing

@testable import IsobarWire

@Suite("PrometheusText: the text exposition format")
struct PrometheusTextTests {
    /// One parsed exposition line.
    enum Line: Equatable {
        case help(name: String, text: String)
        case type(name: String, kind: String)
        case sample(name: String, labels: [Label], value: String)
    }

    struct Label: Equatable {
        var key: String
        var value: String
    }

    /// A strict reader of the exposition format: every line must be HELP, TYPE or a sample, and the text must
    /// end with a newline. Returns nil for anything a Prometheus scraper would reject.
    static func parse(_ bytes: [UInt8]) -> [Line]? {
        guard bytes.last == 0x0A else { return bytes.isEmpty ? [] : nil }
        var lines: [Line] = []
        for raw in bytes.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false) {
            guard let line = parseLine(Array(raw)) else { return nil }
            lines.append(line)
        }
        return lines
    }

    static func parseLine(_ raw: [UInt8]) -> Line? {
        let text = String(decoding: raw, as: UTF8.self)
        if text.hasPrefix("# HELP ") {
            // Scalars, not characters: help text may start with a mark that combines with the space.
            let rest = text.unicodeScalars.dropFirst(7)
            guard let space = rest.firstIndex(of: " "), let help = unescape(rest[rest.index(after: space)...]) else {
                return nil
            }
            return .help(name: String(String.UnicodeScalarView(rest[..<space])), text: help)
        }
        if text.hasPrefix("# TYPE ") {
            let parts = text.dropFirst(7).split(separator: " ")
            guard parts.count == 2, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1]) else {
                return nil
            }
            return .type(name: String(parts[0]), kind: String(parts[1]))
        }
        var scalars = Substring(text).unicodeScalars[...]
        let name = String(String.UnicodeScalarView(scalars.prefix { $0 != "{" && $0 != " " }))
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.isASCII && $0 != "\"" }) else { return nil }
        scalars = scalars.dropFirst(name.unicodeScalars.count)
        var labels: [Label] = []
        if scalars.first == "{" {
            scalars = scalars.dropFirst()
            while scalars.first != "}" {
                let key = String(String.UnicodeScalarView(scalars.prefix { $0 != "=" }))
                scalars = scalars.dropFirst(key.unicodeScalars.count)
                guard scalars.first == "=", scalars.dropFirst().first == "\"" else { return nil }
                scalars = scalars.dropFirst(2)
                var value = String.UnicodeScalarView()
                while let c = scalars.popFirst(), c != "\"" {
                    guard c == "\\" else {
                        value.append(c)
                        continue
                    }
                    switch scalars.popFirst() {
                    case "\\": value.append("\\")
                    case "\"": value.append("\"")
                    case "n": value.append("\n")
                    default: return nil
                    }
                }
                labels.append(Label(key: key, value: String(value)))
                if scalars.first == "," { scalars = scalars.dropFirst() }
            }
            scalars = scalars.dropFirst()
        }
        guard scalars.first == " " else { return nil }
        let value = String(String.UnicodeScalarView(scalars.dropFirst()))
        guard Double(value) != nil || ["NaN", "+Inf", "-Inf"].contains(value) else { return nil }
        return .sample(name: name, labels: labels, value: value)
    }

    static func unescape(_ text: Substring.UnicodeScalarView) -> String? {
        var out = String.UnicodeScalarView()
        var scalars = text
        while let c = scalars.popFirst() {
            guard c == "\\" else {
                out.append(c)
                continue
            }
            switch scalars.popFirst() {
            case "\\": out.append("\\")
            case "n": out.append("\n")
            default: return nil
            }
        }
        return String(out)
    }

    @Test("A family with labelled samples is valid exposition text")
    func family() {
        var text = PrometheusText()
        text.family("isobar_requests_total", .counter, help: "Requests answered, by model and status.")
        text.sample("isobar_requests_total", [("model", "gpt-4o"), ("status", "200")], 12)
        text.sample("isobar_requests_total", [("model", "llama"), ("status", "429")], 3)
        text.family("isobar_up", .gauge, help: "1 when serving.")
        text.sample("isobar_up", [], 1)
        #expect(
            String(decoding: text.bytes, as: UTF8.self)
                == """
                # HELP isobar_requests_total Requests answered, by model and status.
                # TYPE isobar_requests_total counter
                isobar_requests_total{model="gpt-4o",status="200"} 12.0
                isobar_requests_total{model="llama",status="429"} 3.0
                # HELP isobar_up 1 when serving.
                # TYPE isobar_up gauge
                isobar_up 1.0

                """
        )
        #expect(Self.parse(text.bytes)?.count == 7)
    }

    @Test("Label values escape backslash, quote and newline")
    func labelEscaping() {
        var text = PrometheusText()
        text.sample("m", [("path", #"C:\models\"llama""#), ("note", "two\nlines")], 1)
        #expect(
            String(decoding: text.bytes, as: UTF8.self) == #"m{path="C:\\models\\\"llama\"",note="two\nlines"} 1.0"#
                + "\n"
        )
        #expect(
            Self.parse(text.bytes)
                == [
                    .sample(
                        name: "m",
                        labels: [
                            Label(key: "path", value: #"C:\models\"llama""#), Label(key: "note", value: "two\nlines"),
                        ],
                        value: "1.0"
                    )
                ]
        )
    }

    @Test(
        "Escaping works on characters that combine with what follows (CRLF, combining marks)",
        arguments: ["a\r\nb", "\"\u{301}", "\\\u{301}", "\n\u{301}", "x\u{200D}\"", "\u{1F1FA}\"\u{1F1F8}"]
    )
    func escapingIsPerScalar(value: String) {
        var text = PrometheusText()
        text.family("isobar_label_probe", .gauge, help: "help " + value)
        text.sample("isobar_label_probe", [("v", value)], 0)
        #expect(
            Self.parse(text.bytes) == [
                .help(name: "isobar_label_probe", text: "help " + value),
                .type(name: "isobar_label_probe", kind: "gauge"),
                .sample(name: "isobar_label_probe", labels: [Label(key: "v", value: value)], value: "0.0"),
            ]
        )
    }

    @Test("Any label value survives a write and a strict parse (seeded random strings)")
    func labelProperty() {
        var rng = Xoshiro256(seed: 404)
        for _ in 0..<1_000 {
            let value = JSONTests.randomString(using: &rng)
            let help = JSONTests.randomString(using: &rng)
            var text = PrometheusText()
            text.family("isobar_random", .untyped, help: help)
            text.sample("isobar_random", [("a", value), ("b", "")], 1)
            #expect(
                Self.parse(text.bytes) == [
                    .help(name: "isobar_random", text: help),
                    .type(name: "isobar_random", kind: "untyped"),
                    .sample(
                        name: "isobar_random",
                        labels: [Label(key: "a", value: value), Label(key: "b", value: "")],
                        value: "1.0"
                    ),
                ],
                "\(value.debugDescription) / \(help.debugDescription)"
            )
        }
    }

    @Test(
        "Values are written as Prometheus reads them",
        arguments: [
            (Double.nan, "NaN"), (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"), (0, "0.0"), (-0.0, "0.0"),
            (1, "1.0"), (-3, "-3.0"), (0.25, "0.25"), (1e20, "1e+20"), (1.5e-7, "1.5e-07"),
            (123_456_789, "123456789.0"),
        ]
    )
    func values(value: Double, text: String) {
        #expect(PrometheusText.format(value) == text)
    }

    @Test("HELP escapes backslash and newline but not quotes")
    func helpEscaping() {
        var text = PrometheusText()
        text.family("x", .summary, help: "Latency \"p99\" in C:\\ms\nsecond line")
        #expect(
            String(decoding: text.bytes, as: UTF8.self)
                == "# HELP x Latency \"p99\" in C:\\\\ms\\nsecond line\n# TYPE x summary\n"
        )
    }
}
