/// What one endpoint probably holds in its prefix cache, learned from this node's own routing: the
/// prefix block hashes of requests sent there, least recently used first out, capped at the tokens the
/// endpoint's KV cache holds. An approximation (the engine evicts on its own schedule), which is why
/// affinity only ever buys a bounded amount of expected TTFT (`BalancingSettings.affinityBudgetSeconds`).
struct PrefixIndex: Sendable {
    private struct Entry {
        var hash: UInt64
        var older = -1
        var newer = -1
    }

    private var index: [UInt64: Int] = [:]
    private var entries: [Entry] = []
    private var oldest = -1
    private var newest = -1
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
        var i = newest
        while i >= 0, recent.count < keep {
            recent.append(entries[i].hash)
            i = entries[i].older
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
                unlink(i)
                link(i)
                continue
            }
            let i: Int
            if index.count >= capacity, oldest >= 0 {
                i = oldest
                unlink(i)
                index[entries[i].hash] = nil
                entries[i] = Entry(hash: hash)
            } else {
                entries.append(Entry(hash: hash))
                i = entries.count - 1
            }
            index[hash] = i
            link(i)
        }
    }

    private mutating func unlink(_ i: Int) {
        let older = entries[i].older
        let newer = entries[i].newer
        if older >= 0 { entries[older].newer = newer } else { oldest = newer }
        if newer >= 0 { entries[newer].older = older } else { newest = older }
        entries[i].older = -1
        entries[i].newer = -1
    }

    private mutating func link(_ i: Int) {
        entries[i].older = newest
        entries[i].newer = -1
        if newest >= 0 { entries[newest].newer = i } else { oldest = i }
        newest = i
    }
}

/// A running estimate of a quantile of token counts: a fixed histogram with eight buckets per doubling
/// (at most 12.5 % wide), so it costs constant memory and O(1) per observation.
struct TokenQuantile: Sendable {
    private var buckets = [Int](repeating: 0, count: 8 * 64)
    private(set) var count = 0
    private(set) var sum = 0.0

    /// Bucket of `tokens`: eight per power of two, from the position of the leading bit and the three
    /// bits after it.
    static func bucket(_ tokens: Int) -> Int {
        let t = UInt64(max(1, tokens))
        let exponent = 63 - t.leadingZeroBitCount
        let mantissa = exponent >= 3 ? Int((t >> (exponent - 3)) & 7) : Int((t << (3 - exponent)) & 7)
        return exponent * 8 + mantissa
    }

    /// The smallest token count of a bucket.
    static func lowerBound(_ bucket: Int) -> Int {
        let exponent = bucket / 8
        let mantissa = bucket % 8
        return exponent >= 3 ? (8 + mantissa) << (exponent - 3) : (8 + mantissa) >> (3 - exponent)
    }

    mutating func record(_ tokens: Int) {
        buckets[Self.bucket(tokens)] += 1
        count += 1
        sum += Double(tokens)
    }

    var mean: Double { count == 0 ? 0 : sum / Double(count) }

    /// The `q` quantile (a bucket's lower bound), or `nil` before `minimumSamples` observations.
    func quantile(_ q: Double, minimumSamples: Int = 20) -> Int? {
        guard count >= minimumSamples else { return nil }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        var seen = 0
        for (i, n) in buckets.enumerated() where n > 0 {
            seen += n
            if seen >= rank { return max(1, Self.lowerBound(i)) }
        }
        return nil
    }
}
