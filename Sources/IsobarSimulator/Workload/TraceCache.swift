import IsobarModel
import Synchronization

/// Trace records loaded once per file and shared by every run that replays or samples them: the policies of
/// a scenario each replay the same trace from one array rather than a copy each.
///
/// Safe to use from several tasks; a file two tasks ask for at once may be read twice, and the first
/// result is kept.
public final class TraceCache: Sendable {
    /// A file is identified by its path and format; records are stored already time-scaled.
    private struct Key: Hashable {
        var path: String
        var format: TraceFile.Format
        var timeScale: Double
    }

    private let loaded = Mutex<[Key: [TraceRecord]]>([:])

    public init() {}

    /// The records of `file`, read on first use.
    public func records(_ file: TraceFile) throws(SimulatorError) -> [TraceRecord] {
        let key = Key(path: file.path, format: file.format, timeScale: file.timeScale)
        if let records = loaded.withLock({ $0[key] }) { return records }
        let records = try TraceReader.load(file)
        return loaded.withLock { cache in
            if let earlier = cache[key] { return earlier }
            cache[key] = records
            return records
        }
    }
}
