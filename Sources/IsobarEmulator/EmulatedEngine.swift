import IsobarEngineModel
import IsobarModel
import NIOCore
import Synchronization

/// Receives the tokens of one request from an `EmulatedEngine`, on its own event loop.
protocol TokenSink: AnyObject {
    /// `count` more tokens were sampled; `finished` once the last one was.
    func tokens(_ count: Int, finished: Bool)
    /// The engine refused the request: it can never fit in the KV cache.
    func refused(contextTokens: Int)
}

/// An `EngineModel` run in real time: steps take the time the profile says, on one event loop, and the
/// tokens of each step reach their requests when the step ends. Requests come from any event loop.
final class EmulatedEngine: Sendable {
    let configuration: EmulatorConfiguration
    let eventLoop: any EventLoop
    /// The engine state, touched only on `eventLoop` (every access below hops there first).
    private let driver: UncheckedDriver
    private let nextID = Atomic<UInt64>(1)
    private let published = Published()

    /// The latest snapshot, readable from any thread.
    final class Published: Sendable {
        private let state = Mutex(Snapshot())
        var value: Snapshot {
            get { state.withLock { $0 } }
            set { state.withLock { $0 = newValue } }
        }
    }

    /// What `/metrics` reports, as of the last step.
    struct Snapshot {
        var running = 0
        var waiting = 0
        var kvUsage = 0.0
        var counters = EngineCounters()
    }

    init(configuration: EmulatorConfiguration, eventLoop: any EventLoop) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        let model = EngineModel(profile: configuration.profile, reportsEveryToken: true)
        driver = UncheckedDriver(value: Driver(model: model, eventLoop: eventLoop))
    }

    struct UncheckedDriver: @unchecked Sendable {
        let value: Driver
    }

    var snapshot: Snapshot { published.value }

    /// Queues a request; `sink` (bound to the caller's event loop) gets its tokens. Returns its id.
    func submit(promptTokens: Int, outputTokens: Int, sink: NIOLoopBound<any TokenSink>) -> UInt64 {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let request = EngineRequest(id: id, promptTokens: promptTokens, outputTokens: outputTokens)
        eventLoop.execute { [driver, published] in
            driver.value.add(request, sink: sink, published: published)
        }
        return id
    }

    /// Drops a request whose client went away.
    func cancel(_ id: UInt64) {
        eventLoop.execute { [driver] in driver.value.cancel(id) }
    }

    /// The engine's state; used only on `eventLoop`.
    final class Driver {
        var model: EngineModel
        let eventLoop: any EventLoop
        var sinks: [UInt64: NIOLoopBound<any TokenSink>] = [:]
        var stepping = false
        var events: [EngineEvent] = []

        init(model: EngineModel, eventLoop: any EventLoop) {
            self.model = model
            self.eventLoop = eventLoop
        }

        func add(_ request: EngineRequest, sink: NIOLoopBound<any TokenSink>, published: Published) {
            eventLoop.preconditionInEventLoop()
            guard model.add(request) else {
                let capacity = model.profile.kvCacheTokens
                sink.eventLoop.execute { sink.value.refused(contextTokens: capacity) }
                return
            }
            sinks[request.id] = sink
            if !stepping { step(published) }
        }

        func cancel(_ id: UInt64) {
            if sinks.removeValue(forKey: id) != nil { model.cancel(id) }
        }

        /// Runs a step and delivers its tokens when it ends. Steps that take no time run back to back
        /// (a bounded number per turn of the event loop), their tokens delivered together.
        func step(_ published: Published) {
            guard model.hasWork else {
                stepping = false
                return
            }
            stepping = true
            var delivered: [UInt64: (tokens: Int, finished: Bool)] = [:]
            var seconds = 0.0
            var steps = 0
            repeat {
                events.removeAll(keepingCapacity: true)
                seconds = model.step(events: &events)
                steps += 1
                for event in events {
                    switch event {
                    case .firstToken(let id), .token(let id): delivered[id, default: (0, false)].tokens += 1
                    case .finished(let id): delivered[id, default: (0, false)].finished = true
                    case .preempted: break
                    }
                }
            } while seconds == 0 && model.hasWork && steps < 256
            let snapshot = Snapshot(
                running: model.runningCount,
                waiting: model.waitingCount,
                kvUsage: model.kvUsage,
                counters: model.counters
            )
            let loop = eventLoop
            let deliver = {
                published.value = snapshot
                for (id, update) in delivered {
                    guard let sink = update.finished ? self.sinks.removeValue(forKey: id) : self.sinks[id] else {
                        continue
                    }
                    sink.eventLoop.execute { sink.value.tokens(update.tokens, finished: update.finished) }
                }
                self.step(published)
            }
            if seconds == 0 {
                loop.assumeIsolated().execute(deliver)
            } else {
                loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9)), deliver)
            }
        }
    }
}
