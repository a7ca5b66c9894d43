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
