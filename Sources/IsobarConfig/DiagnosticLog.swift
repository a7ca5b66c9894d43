/// Where a value sits in a configuration file: its 1-based line and its key path.
struct Location: Sendable, Equatable {
    var line: Int
    /// The key path, `""` for the document itself.
    var path: String

    /// The document as a whole.
    static func document(line: Int = 1) -> Location { Location(line: line, path: "") }

    /// The location of `key` inside this mapping, on `line` (the mapping's own line by default).
    func key(_ key: String, line: Int? = nil) -> Location {
        Location(line: line ?? self.line, path: path.isEmpty ? key : "\(path).\(key)")
    }

    /// The location of item `index` of this list, on `line`.
    func index(_ index: Int, line: Int) -> Location {
        Location(line: line, path: "\(path)[\(index)]")
    }
}

/// A value read from a file, with where it was read.
struct Sourced<Value> {
    var value: Value
    var location: Location
}

/// Collects the diagnostics of one file while it is read and validated.
///
/// One log is shared by every reader and check of a single load, which keeps going after a problem so
/// that all of them are reported together.
final class DiagnosticLog {
    let file: String
    private var entries: [ConfigDiagnostic] = []

    init(file: String) {
        self.file = file
    }

    /// The number of problems logged so far.
    var count: Int { entries.count }

    /// Logs a problem at `location`.
    func error(_ location: Location, _ message: String) {
        let keyPath = location.path.isEmpty ? "<document>" : location.path
        entries.append(ConfigDiagnostic(file: file, line: location.line, keyPath: keyPath, message: message))
    }

    /// Logs that the value at `location` is missing, unless a problem was already logged at its key path:
    /// a value of the wrong type reads as missing, but one diagnostic for it is enough.
    func missing(_ location: Location, _ message: String = "required key is missing") {
        guard !entries.contains(where: { $0.keyPath == location.path }) else { return }
        error(location, message)
    }

    /// The problems without repeats, sorted by line (problems on one line keep the order they were found in).
    var sorted: [ConfigDiagnostic] {
        var unique: [ConfigDiagnostic] = []
        for entry in entries where !unique.contains(entry) { unique.append(entry) }
        return unique.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }
            .map(\.element)
    }
}

// MARK: - Suggestions

/// `" (did you mean 'x'?)"` for the candidate closest to `word` within two edits, or `""`.
func suggestion(for word: String, among candidates: some Sequence<String>) -> String {
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(word, candidate)
        if distance <= 2, distance < max(word.count, 2), distance < (best?.distance ?? .max) {
            best = (candidate, distance)
        }
    }
    return best.map { " (did you mean '\($0.name)'?)" } ?? ""
}

/// The optimal string alignment distance: insertions, deletions, substitutions and swaps of two neighbours
/// each count one.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { table[i][0] = i }
    for j in 0...b.count { table[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            var best = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                best = min(best, table[i - 2][j - 2] + 1)
            }
            table[i][j] = best
        }
    }
    return table[a.count][b.count]
}
