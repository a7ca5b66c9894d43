/// The metric names a parse should read; `PrometheusParser` skips every other line without reading it.
///
/// Names are sample names as written (`vllm:prompt_tokens_total`, `tgi_request_generated_tokens_sum`). With
/// `metadata`, the `# TYPE` and `# HELP` lines of their families are read too, the family being the name or
/// the name without a `_total`, `_sum`, `_count`, `_bucket` or `_created` suffix. Lines starting with a quoted
/// name (Prometheus 3) are always read.
public struct MetricSelection: Sendable {
    private var samples = ByteSet()
    private var families = ByteSet()
    private let metadata: Bool

    public init(_ names: some Sequence<String>, metadata: Bool = true) {
        self.metadata = metadata
        for name in names {
            samples.insert(name)
            families.insert(name)
            for suffix in ["_total", "_sum", "_count", "_bucket", "_created"] where name.hasSuffix(suffix) {
                families.insert(String(name.dropLast(suffix.count)))
            }
        }
    }

    /// Whether a (trimmed, non-empty) line must be read; a sample line that is not names the range of its
    /// metric name, so the parser can skip the next lines of the same metric by comparing bytes.
    enum Decision {
        case read
        case skipSample(name: Range<Int>)
        case skip
    }

    func decision(_ line: Cursor) -> Decision {
        var probe = line
        guard probe.peek == .hash else {
            let name = probe.take { $0.isNameByte }
            if name.isEmpty || samples.contains(probe.base, name) { return .read }
            return .skipSample(name: name)
        }
        probe.advance()
        probe.skipBlanks()
        let keyword = probe.take { $0.isNameByte }
        if probe.matches(keyword, "EOF") { return .read }
        guard metadata, probe.matches(keyword, "TYPE") || probe.matches(keyword, "HELP") else { return .skip }
        probe.skipBlanks()
        return families.contains(probe.base, probe.take { $0.isNameByte }) ? .read : .skip
    }
}

extension Cursor {
    /// True if the bytes of `range` are the ASCII `word`.
    fileprivate func matches(_ range: Range<Int>, _ word: StaticString) -> Bool {
        range.count == word.utf8CodeUnitCount
            && ByteRange.equal(base + range.lowerBound, UnsafeRawPointer(word.utf8Start), count: range.count)
    }
}

/// A set of byte strings looked up by a byte range without building a `String`. Open addressing.
private struct ByteSet: Sendable {
    private var hashes: [UInt64] = Array(repeating: 0, count: 64)
    private var members: [[UInt8]] = Array(repeating: [], count: 64)
    private var count = 0

    mutating func insert(_ string: String) {
        let bytes = Array(string.utf8)
        guard !bytes.withUnsafeBytes({ contains($0.baseAddress!, 0..<$0.count) }) else { return }
        if (count + 1) * 2 > hashes.count { grow() }
        place(bytes, hash: bytes.withUnsafeBytes { ByteRange.hash($0.baseAddress!, 0..<$0.count) | 1 })
        count += 1
    }

    func contains(_ base: UnsafeRawPointer, _ range: Range<Int>) -> Bool {
        guard !range.isEmpty else { return false }
        let hash = ByteRange.hash(base, range) | 1
        let mask = hashes.count - 1
        var slot = ByteRange.slot(hash, mask: mask)
        while hashes[slot] != 0 {
            if hashes[slot] == hash, members[slot].count == range.count,
                members[slot].withUnsafeBytes({
                    ByteRange.equal($0.baseAddress!, base + range.lowerBound, count: range.count)
                })
            {
                return true
            }
            slot = (slot + 1) & mask
        }
        return false
    }

    private mutating func place(_ bytes: [UInt8], hash: UInt64) {
        let mask = hashes.count - 1
        var slot = ByteRange.slot(hash, mask: mask)
        while hashes[slot] != 0 { slot = (slot + 1) & mask }
        hashes[slot] = hash
        members[slot] = bytes
    }

    private mutating func grow() {
        let old = zip(hashes, members).filter { $0.0 != 0 }
        hashes = Array(repeating: 0, count: hashes.count * 2)
        members = Array(repeating: [], count: members.count * 2)
        for (hash, bytes) in old { place(bytes, hash: hash) }
    }
}
