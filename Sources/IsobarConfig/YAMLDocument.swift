import Yams

/// Composes YAML text into a tree of Yams nodes, turning Yams' errors into diagnostics.
enum YAMLDocument {
    /// The most repeated keys renamed before giving up on one file.
    private static let maximumRepeats = 500

    /// The root node of `text`, or `nil` after logging why there is none (a syntax error, an empty file).
    ///
    /// Yams refuses a mapping with a repeated key outright. To keep going and report every problem, the
    /// first of the repeated keys is renamed with `YAMLValue.repeatMarker` and the text composed again;
    /// `YAMLValue.fields` strips the marker and reports the later key as the duplicate, on its own line.
    static func compose(_ text: String, log: DiagnosticLog) -> Yams.Node? {
        var source = text
        for _ in 0..<maximumRepeats {
            do {
                guard let root = try Yams.compose(yaml: source) else {
                    log.error(.document(), "the file is empty; expected a mapping with mesh, regions, nodes, ...")
                    return nil
                }
                return root
            } catch YamlError.duplicatedKeysInMapping(let keys, let context) {
                guard let marked = markRepeatedKey(in: source, at: context.mark) else {
                    log.error(.document(line: context.mark.line), "duplicate key '\(keys.first ?? "")'")
                    return nil
                }
                source = marked
            } catch {
                let (line, message) = describe(error, in: text)
                log.error(.document(line: line), message)
                return nil
            }
        }
        log.error(.document(), "too many duplicate keys")
        return nil
    }

    /// `text` with the marker put at the start of the key at `mark` (inside its quotes, if quoted).
    private static func markRepeatedKey(in text: String, at mark: Mark) -> String? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard (1...lines.count).contains(mark.line) else { return nil }
        var scalars = Array(lines[mark.line - 1].unicodeScalars)
        var index = mark.column - 1
        guard scalars.indices.contains(index) else { return nil }
        if scalars[index] == "\"" || scalars[index] == "'" { index += 1 }
        scalars.insert(contentsOf: String(YAMLValue.repeatMarker).unicodeScalars, at: index)
        var line = String.UnicodeScalarView()
        line.append(contentsOf: scalars)
        lines[mark.line - 1] = String(line)
        return lines.joined(separator: "\n")
    }

    /// The line and message of a Yams error.
    private static func describe(_ error: any Error, in text: String) -> (line: Int, message: String) {
        switch error as? YamlError {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            return (mark.line, "invalid YAML: " + problemText(problem, context: context, line: mark.line))
        case .reader(let problem, let offset, _, _):
            let prefix = text.prefix(offset ?? 0)
            return (prefix.count { $0 == "\n" } + 1, "invalid YAML: \(problem)")
        default:
            return (1, "invalid YAML: \(error)")
        }
    }

    /// `problem`, with what the parser was doing when it met it.
    private static func problemText(_ problem: String, context: YamlError.Context?, line: Int) -> String {
        if problem.hasPrefix("but found another document") {
            return "a topology file holds one YAML document, found a second one"
        }
        guard let context else { return problem }
        let start = context.mark.line == line ? "" : " that starts on line \(context.mark.line)"
        return "\(problem) (\(context.text)\(start))"
    }
}
