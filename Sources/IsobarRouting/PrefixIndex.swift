import IsobarModel

/// What one endpoint probably holds in its prefix cache, learned from this node's own routing: the
/// prefix block hashes of requests sent there, least recently used first out, capped at the tokens the
/// endpoint's KV cache holds. An approximation (the engine evicts on its own schedule), which is why
/// affinity only ever buys a bounded amount of expected TTFT (`BalancingSettings.affinityBudgetSeconds`).
struct PrefixIndex: Sendable {
    private var index: [UInt64: Int] = [:]
    /// The hash of each slot, and the slots in order of use.
    private var slotHashes: [UInt64] = []
    private var recency = RecencyList()
    /// Most tokens remembered: what the endpoint's KV cache holds.
    private(set) var capacityTokens: Int
    /// Tokens per block of the latest insert.
    private var blockTokens = 512

    init(capacityTokens: Int) {
        self.capacityTokens = max(1, capacityTokens)
    }

    var count: Int { index.count }

    /// Changes the capacity (a scrape reported the engine's KV geometry), keeping the most recent blocks
    /// that fit when it shrinks.
    mutating func resize(capacityTokens tokens: Int) {
        let tokens = max(1, tokens)
        guard tokens != capacityTokens else { return }
        let blockTokens = blockTokens
        let keep = max(1, tokens / blockTokens)
        var recent: [UInt64] = []
        var i = recency.newest
        while i >= 0, recent.count < keep {
            recent.append(slotHashes[i])
            i = recency.older(than: i)
        }
        self = PrefixIndex(capacityTokens: tokens)
        insert(recent.reversed(), blockTokens: blockTokens)
    }

    /// Leading blocks of `hashes` the endpoint probably holds.
    func matchedPrefix(_ hashes: [UInt64]) -> Int {
        var k = 0
        while k < hashes.count, index[hashes[k]] != nil { k += 1 }
        return k
    }

    /// Records that the endpoint now holds these blocks of `blockTokens` tokens each (most recently used).
    mutating func insert(_ hashes: [UInt64], blockTokens: Int) {
        self.blockTokens = max(1, blockTokens)
        let capacity = max(1, capacityTokens / self.blockTokens)
        for hash in hashes {
            if let i = index[hash] {
                recency.touch(i)
                continue
            }
            let i: Int
            if index.count >= capacity, recency.oldest >= 0 {
                i = recency.oldest
                recency.unlink(i)
                index[slotHashes[i]] = nil
                slotHashes[i] = hash
            } else {
                slotHashes.append(hash)
                i = slotHashes.count - 1
            }
            index[hash] = i
            recency.linkNewest(i)
        }
    }
}
