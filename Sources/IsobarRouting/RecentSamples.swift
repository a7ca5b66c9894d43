/// The last `capacity` values of a measurement (times to first token), for quantiles over recent
/// traffic: a ring, so recording costs one store and old traffic ages out by count.
struct RecentSamples: Sendable {
    private var values: [Double] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { values.count }

    mutating func add(_ value: Double) {
        if values.count < capacity {
            values.append(value)
        } else {
            values[next] = value
        }
        next = (next + 1) % capacity
    }

    /// The `q`-quantile (0–1) of the values held, nil when there are none.
    func quantile(_ q: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((q * Double(sorted.count)).rounded(.down)))]
    }
}
