import IsobarModel

/// The engine's prefix cache: KV blocks of prompt prefixes, keyed by the hash of each prefix block
/// (a block of `hashBlockTokens` tokens, identified together with everything before it, as vLLM's
/// block hashes and Mooncake's hash ids are). Entries in use by a sequence are pinned; idle ones are
/// evicted least recently used first when blocks run out.
struct PrefixCache: Sendable {
    private struct Entry {
        var blocks: Int
        var references: Int
        var hash: UInt64
    }

    private var index: [UInt64: Int] = [:]
    private var entries: [Entry] = []
    private var freeEntries: [Int] = []
    /// The idle entries (indices into `entries`), least recently used first.
    private var idle = RecencyList()
    /// KV blocks held by idle (evictable) entries.
    private(set) var idleBlocks = 0
    /// KV blocks held by all entries.
    private(set) var cachedBlocks = 0

    var isEmpty: Bool { index.isEmpty }

    func contains(_ hash: UInt64) -> Bool { index[hash] != nil }

    /// Pins an entry (a sequence now uses it).
    mutating func retain(_ hash: UInt64) {
        guard let i = index[hash] else { preconditionFailure("retain of an uncached prefix block \(hash)") }
        if entries[i].references == 0 {
            idle.unlink(i)
            idleBlocks -= entries[i].blocks
        }
        entries[i].references += 1
    }

    /// Unpins an entry; an entry nobody uses becomes the newest idle one.
    mutating func release(_ hash: UInt64) {
        guard let i = index[hash] else { preconditionFailure("release of an uncached prefix block \(hash)") }
        precondition(entries[i].references > 0, "prefix block \(hash) released more often than retained")
        entries[i].references -= 1
        if entries[i].references == 0 {
            idle.linkNewest(i)
            idleBlocks += entries[i].blocks
        }
    }

    /// Adds an entry of `blocks` blocks, pinned once by the sequence that computed it.
    mutating func insert(_ hash: UInt64, blocks: Int) {
        precondition(index[hash] == nil, "prefix block \(hash) cached twice")
        let entry = Entry(blocks: blocks, references: 1, hash: hash)
        let i: Int
        if let reused = freeEntries.popLast() {
            entries[reused] = entry
            i = reused
        } else {
            entries.append(entry)
            i = entries.count - 1
        }
        index[hash] = i
        cachedBlocks += blocks
    }

    /// Evicts the least recently used idle entry; returns the blocks freed (0 if none is idle).
    mutating func evictOldest() -> Int {
        let i = idle.oldest
        guard i >= 0 else { return 0 }
        idle.unlink(i)
        let blocks = entries[i].blocks
        idleBlocks -= blocks
        cachedBlocks -= blocks
        index[entries[i].hash] = nil
        freeEntries.append(i)
        return blocks
    }

    /// Drops every entry (the replica restarted).
    mutating func removeAll() {
        self = PrefixCache()
    }
}
