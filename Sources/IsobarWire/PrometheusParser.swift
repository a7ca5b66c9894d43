/// Reads the Prometheus text exposition format 0.0.4, and OpenMetrics text where the two overlap, into a
/// `PrometheusExposition`.
///
/// Accepted: `# HELP` (with `\\` and `\n` escapes), `# TYPE`, `# UNIT`, other comments, `# EOF`; metric names
/// with colons; labels with `\\`, `\"` and `\n` escapes, blanks around tokens, empty sets `{}` and a trailing
/// comma; Prometheus 3 quoted names (`{"my.metric", a="b"}`); values as decimals with exponents, `NaN`,
/// `+Inf`, `-Inf`; an optional timestamp, integer milliseconds (0.0.4) or decimal seconds (OpenMetrics, stored
/// as milliseconds); OpenMetrics exemplars (`# {…} v`) are skipped; `\r\n` line ends.
///
/// It never traps on its input: a line it cannot read is skipped and reported in `problems` (line number and
/// reason) while the rest is read. It scans bytes; only names and label values become `String`s, and those are
/// interned, so a parser kept across scrapes of one endpoint allocates few strings per scrape.
public struct PrometheusParser: Sendable {
    /// Problems listed per exposition; past this one line says more were skipped.
    public static let maxProblems = 100

    private var interner = ByteInterner()

    public init() {}

    /// Strings interned so far (for tests: a second parse of the same text adds none).
    var internedStrings: Int { interner.stored }

    /// Parses one exposition with a fresh parser.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> PrometheusExposition {
        var parser = PrometheusParser()
        return parser.parse(bytes)
    }

    /// Parses one exposition given as text.
    public static func parse(_ text: String) -> PrometheusExposition {
        var text = text
        return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// Parses one exposition, reusing the strings interned by earlier calls.
    ///
    /// With a `selection`, only the samples it names (and the `# TYPE`/`# HELP` lines of their families) are
    /// read; every other line is skipped unread, problems included. That is how a scraper reads a dozen
    /// gauges out of an exposition that is mostly histogram buckets.
    public mutating func parse(
        _ bytes: UnsafeRawBufferPointer,
        selecting selection: MetricSelection? = nil
    ) -> PrometheusExposition {
        var out = PrometheusExposition()
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return out }
        interner.trimIfLarge()
        var lineStart = 0
        var lineNumber = 0
        var ended = false
        var skipping: Range<Int>?
        while lineStart < bytes.count {
            lineNumber += 1
            let lineEnd = Cursor.nextNewline(base, from: lineStart, end: bytes.count)
            var line = Cursor(base: base, start: lineStart, end: lineEnd)
            lineStart = lineEnd + 1
            line.trim()
            if line.atEnd { continue }
            if ended {
                out.report(line: lineNumber, "content after # EOF is ignored", limit: Self.maxProblems)
                break
            }
            if let selection {
                if let name = skipping, line.startsWithSample(named: name) { continue }
                switch selection.decision(line) {
                case .read: skipping = nil
                case .skip: continue
                case .skipSample(let name):
                    skipping = name
                    continue
                }
            }
            do throws(LineProblem) {
                if line.peek == .hash {
                    ended = try comment(&line, into: &out)
                } else {
                    out.append(try sample(&line))
                }
            } catch {
                out.report(line: lineNumber, error.reason, limit: Self.maxProblems)
            }
        }
        out.finish()
        return out
    }

    // MARK: - Comments

    /// Reads a `#` line; returns true at `# EOF`.
    private mutating func comment(
        _ line: inout Cursor,
        into out: inout PrometheusExposition
    ) throws(LineProblem) -> Bool {
        line.advance()
        line.skipBlanks()
        let keyword = line.take { $0.isNameByte }
        guard !keyword.isEmpty, line.atEnd || line.peek.isBlank else { return false }
        switch line.text(keyword) {
        case "EOF": return true
        case "TYPE": try typeLine(&line, into: &out)
        case "HELP": try helpLine(&line, into: &out)
        case "UNIT": _ = try familyName(&line)
        default: break
        }
        return false
    }

    private mutating func typeLine(_ line: inout Cursor, into out: inout PrometheusExposition) throws(LineProblem) {
        let name = try familyName(&line)
        line.skipBlanks()
        let word = line.text(line.take { !$0.isBlank })
        guard let type = PrometheusExposition.MetricType(rawValue: word) else {
            throw LineProblem("unknown metric type '\(word)' for \(name)")
        }
        line.skipBlanks()
        guard line.atEnd else { throw LineProblem("unexpected text after the type of \(name)") }
        guard out.declare(name, type: type) else { throw LineProblem("second # TYPE for \(name) ignored") }
    }

    private mutating func helpLine(_ line: inout Cursor, into out: inout PrometheusExposition) throws(LineProblem) {
        let name = try familyName(&line)
        line.skipBlanks()
        let text = line.unescaped(upTo: nil, interner: &interner)
        guard out.describe(name, help: text) else { throw LineProblem("second # HELP for \(name) ignored") }
    }

    private mutating func familyName(_ line: inout Cursor) throws(LineProblem) -> String {
        line.skipBlanks()
        let range = line.take { $0.isNameByte }
        guard !range.isEmpty, line.byte(range.lowerBound).isNameStart, line.atEnd || line.peek.isBlank else {
            throw LineProblem("a metric name must follow the keyword")
        }
        return interner.string(line.base, range)
    }

    // MARK: - Samples

    private mutating func sample(_ line: inout Cursor) throws(LineProblem) -> PrometheusExposition.Sample {
        var name: String?
        let range = line.take { $0.isNameByte }
        if !range.isEmpty {
            guard line.byte(range.lowerBound).isNameStart else { throw LineProblem("invalid metric name") }
            let parsed = interner.string(line.base, range)
            guard line.atEnd || line.peek.isBlank || line.peek == .openBrace else {
                throw LineProblem("invalid character after metric name \(parsed)")
            }
            name = parsed
        }
        line.skipBlanks()
        var labels: [(String, String)] = []
        if !line.atEnd, line.peek == .openBrace {
            try labelSet(&line, name: &name, labels: &labels)
        }
        guard let name else { throw LineProblem("a sample must start with a metric name") }
        line.skipBlanks()
        let valueRange = line.take { !$0.isBlank }
        guard !valueRange.isEmpty else { throw LineProblem("\(name) has no value") }
        guard let value = NumberScanner.double(line.base, valueRange) else {
            throw LineProblem("\(name) has an invalid value '\(line.text(valueRange))'")
        }
        line.skipBlanks()
        var timestamp: Int64?
        if !line.atEnd, line.peek != .hash {
            let stampRange = line.take { !$0.isBlank }
            guard let stamp = NumberScanner.timestamp(line.base, stampRange) else {
                throw LineProblem("\(name) has an invalid timestamp '\(line.text(stampRange))'")
            }
            timestamp = stamp
            line.skipBlanks()
        }
        // An OpenMetrics exemplar (`# {trace_id="…"} 1.0`) may follow; it is not kept.
        guard line.atEnd || line.peek == .hash else { throw LineProblem("unexpected text after the value of \(name)") }
        return PrometheusExposition.Sample(name: name, labels: labels, value: value, timestamp: timestamp)
    }

    /// Reads `{…}`: label pairs, and a quoted metric name (Prometheus 3) if `name` is still unknown.
    private mutating func labelSet(
        _ line: inout Cursor,
        name: inout String?,
        labels: inout [(String, String)]
    ) throws(LineProblem) {
        line.advance()
        while true {
            line.skipBlanks()
            guard !line.atEnd else { throw LineProblem("unterminated label set") }
            if line.consume(.closeBrace) { return }
            let key = try labelName(&line)
            line.skipBlanks()
            if name == nil, labels.isEmpty, !line.atEnd, line.peek == .comma || line.peek == .closeBrace {
                // A lone quoted string first in the set is the metric's name.
                name = key
                _ = line.consume(.comma)
                continue
            }
            guard line.consume(.equals) else { throw LineProblem("expected '=' after label \(key)") }
            line.skipBlanks()
            guard line.consume(.quote) else { throw LineProblem("label \(key) must have a quoted value") }
            let value = line.unescaped(upTo: .quote, interner: &interner)
            guard line.consume(.quote) else { throw LineProblem("unterminated value of label \(key)") }
            guard !labels.contains(where: { $0.0 == key }) else { throw LineProblem("label \(key) is repeated") }
            labels.append((key, value))
            line.skipBlanks()
            if line.consume(.comma) { continue }
            guard !line.atEnd, line.peek == .closeBrace else { throw LineProblem("expected ',' or '}' in label set") }
        }
    }

    /// A label name, plain (`[a-zA-Z_][a-zA-Z0-9_]*`) or quoted (Prometheus 3).
    private mutating func labelName(_ line: inout Cursor) throws(LineProblem) -> String {
        if line.consume(.quote) {
            let key = line.unescaped(upTo: .quote, interner: &interner)
            guard line.consume(.quote) else { throw LineProblem("unterminated quoted name") }
            return key
        }
        let range = line.take { $0.isLabelByte }
        guard !range.isEmpty, !line.byte(range.lowerBound).isDigit else { throw LineProblem("invalid label name") }
        return interner.string(line.base, range)
    }
}

/// Why a line was skipped; caught per line and turned into a `PrometheusExposition.Problem`.
struct LineProblem: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
