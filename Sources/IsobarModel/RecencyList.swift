/// A least-recently-used order over slots numbered from 0 (the indices of the caller's own entry array):
/// a doubly linked list kept in two arrays, so linking, unlinking and finding the oldest are O(1) with
/// no allocation per operation. A slot is either linked (somewhere between `oldest` and `newest`) or not.
/// Shared by the engine model's prefix cache and the router's guess of each endpoint's cache.
public struct RecencyList: Sendable {
    @usableFromInline var older: [Int] = []
    @usableFromInline var newer: [Int] = []
    @usableFromInline var first = -1
    @usableFromInline var last = -1

    /// The least recently used linked slot, -1 when none is linked.
    @inlinable public var oldest: Int { first }
    /// The most recently used linked slot, -1 when none is linked.
    @inlinable public var newest: Int { last }

    public init() {}

    /// Links `slot`, which must not be linked, as the newest.
    @inlinable
    public mutating func linkNewest(_ slot: Int) {
        if slot >= older.count {
            older.append(contentsOf: repeatElement(-1, count: slot + 1 - older.count))
            newer.append(contentsOf: repeatElement(-1, count: slot + 1 - newer.count))
        }
        older[slot] = last
        newer[slot] = -1
        if last >= 0 { newer[last] = slot } else { first = slot }
        last = slot
    }

    /// Unlinks `slot`, which must be linked.
    @inlinable
    public mutating func unlink(_ slot: Int) {
        let before = older[slot]
        let after = newer[slot]
        if before >= 0 { newer[before] = after } else { first = after }
        if after >= 0 { older[after] = before } else { last = before }
        older[slot] = -1
        newer[slot] = -1
    }

    /// Makes a linked `slot` the newest.
    @inlinable
    public mutating func touch(_ slot: Int) {
        guard slot != last else { return }
        unlink(slot)
        linkNewest(slot)
    }

    /// The slot used just before `slot`, -1 for the oldest.
    @inlinable
    public func older(than slot: Int) -> Int { older[slot] }
}
