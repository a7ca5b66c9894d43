import DequeModule
import IsobarModel
import Synchronization

/// The shared state of one emulated engine: how many sequences run, which wait, and the token counters
/// its `/metrics` report. Admission is first come, first served up to `maxConcurrency`.
final class EmulatedEngine: Sendable {
    let configuration: EmulatorConfiguration
    private let state: Mutex<State>

    struct State: ~Copyable {
        var running: [UInt64: Int] = [:]
        var waiting = Deque<Job>()
        var nextID: UInt64 = 1
        var promptTokens = 0
        var generationTokens = 0
        var requestsFinished = 0
    }

    /// A request waiting for a slot; `start` runs when it gets one.
    struct Job: Sendable {
        var id: UInt64
        var kvTokens: Int
        var start: @Sendable () -> Void
    }

    init(configuration: EmulatorConfiguration) {
        self.configuration = configuration
        self.state = Mutex(State())
    }

    /// Queues a request of `kvTokens` tokens (prompt plus output). `start` runs at once (on the caller)
    /// if a slot is free, or later from whichever request frees one. Returns the job id.
    func submit(kvTokens: Int, start: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, startNow) = state.withLock { state -> (UInt64, Bool) in
            let id = state.nextID
            state.nextID += 1
            if state.running.count < configuration.profile.maxConcurrency {
                state.running[id] = kvTokens
                return (id, true)
            }
            state.waiting.append(Job(id: id, kvTokens: kvTokens, start: start))
            return (id, false)
        }
        if startNow { start() }
        return id
    }

    /// A request ended, `completed` or cancelled: frees its slot and starts the next waiting request.
    /// Only requests that ran count in the token counters, and only completed ones as successes.
    func release(_ id: UInt64, promptTokens: Int, generatedTokens: Int, completed: Bool) {
        let next = state.withLock { state -> Job? in
            if state.running.removeValue(forKey: id) != nil {
                state.promptTokens += promptTokens
                state.generationTokens += generatedTokens
                if completed { state.requestsFinished += 1 }
            } else if let index = state.waiting.firstIndex(where: { $0.id == id }) {
                state.waiting.remove(at: index)
                return nil
            }
            guard state.running.count < configuration.profile.maxConcurrency, let job = state.waiting.popFirst()
            else { return nil }
            state.running[job.id] = job.kvTokens
            return job
        }
        next?.start()
    }

    /// A snapshot for `/metrics`.
    struct Snapshot {
        var running: Int
        var waiting: Int
        var kvUsage: Double
        var promptTokens: Int
        var generationTokens: Int
        var requestsFinished: Int
    }

    var snapshot: Snapshot {
        state.withLock { state in
            let kv = state.running.values.reduce(0, +)
            return Snapshot(
                running: state.running.count,
                waiting: state.waiting.count,
                kvUsage: min(1, Double(kv) / Double(max(1, configuration.profile.kvCacheTokens))),
                promptTokens: state.promptTokens,
                generationTokens: state.generationTokens,
                requestsFinished: state.requestsFinished
            )
        }
    }
}
