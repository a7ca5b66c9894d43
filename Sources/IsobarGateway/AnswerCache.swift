import IsobarModel
import Synchronization

/// The last good answer to each distinct request: for `catch_all.mode: cache` (when nothing can serve a
/// request, an identical earlier request's answer is replayed) and for the models' response caches (with
/// a TTL; an expired answer is not served and goes when space is needed). Bounded in bytes (keys included),
/// least recently used out. Shared by the event loops of a node.
final class AnswerCache: Sendable {
    /// A request as received: who sent it (a key's answers are never another's), its operation and its
    /// exact body (the body includes `stream`).
    struct Key: Hashable, Sendable {
        var tenant: String = ""
        var operation: Operation
        var body: [UInt8]
    }

    /// What the client was sent: a JSON body, or the events of a stream.
    struct Answer: Sendable {
        var streamed: Bool
        var bytes: [UInt8]
        /// When it stops being served (the response cache's TTL); nil: never.
        var expiresAt: Instant? = nil
    }

    private struct Entry {
        var key: Key
        var answer: Answer
        var size: Int { key.tenant.utf8.count + key.body.count + answer.bytes.count + 64 }
    }

    private struct State {
        var slots: [Key: Int] = [:]
        var entries: [Entry?] = []
        var free: [Int] = []
        var order = RecencyList()
        var bytes = 0
    }

    let maxBytes: Int
    private let state = Mutex(State())

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// An entry may take at most this share of the cache, so one huge answer cannot flush the rest.
    var maxEntryBytes: Int { maxBytes / 8 }

    /// Bytes held now.
    var bytes: Int { state.withLock { $0.bytes } }

    /// Keeps `answer` as the last good answer to `key`, replacing an older one.
    func store(_ key: Key, _ answer: Answer) {
        let entry = Entry(key: key, answer: answer)
        guard entry.size <= maxEntryBytes else { return }
        state.withLock { state in
            if let slot = state.slots[key] {
                state.bytes += entry.size - state.entries[slot]!.size
                state.entries[slot] = entry
                state.order.touch(slot)
            } else {
                let slot = state.free.popLast() ?? state.entries.count
                if slot == state.entries.count { state.entries.append(nil) }
                state.entries[slot] = entry
                state.slots[key] = slot
                state.order.linkNewest(slot)
                state.bytes += entry.size
            }
            while state.bytes > maxBytes, case let oldest = state.order.oldest, oldest >= 0 {
                let evicted = state.entries[oldest]!
                state.order.unlink(oldest)
                state.entries[oldest] = nil
                state.slots[evicted.key] = nil
                state.free.append(oldest)
                state.bytes -= evicted.size
            }
        }
    }

    /// The last good answer to `key`, if one is kept and has not expired at `now`.
    func answer(for key: Key, now: Instant = MonotonicClock.now()) -> Answer? {
        state.withLock { state in
            guard let slot = state.slots[key] else { return nil }
            let answer = state.entries[slot]!.answer
            if let expiresAt = answer.expiresAt, expiresAt <= now { return nil }
            state.order.touch(slot)
            return answer
        }
    }
}
