import IsobarModel
import IsobarWire
import Logging
import NIOCore
import Synchronization

/// How a node scrapes the metrics of its self-hosted engines.
public struct ScraperConfiguration: Sendable, Equatable {
    /// Time between two scrapes of one backend.
    public var interval: Duration
    /// Longest one request may take, connecting included; a slower one counts as a timeout and the backend's
    /// previous sample keeps ageing. Checked at each tick, so it is rounded up to the next tick.
    public var timeout: Duration
    /// Most scrapes in flight at once, over all backends.
    public var maxConcurrentScrapes: Int
    /// Largest response body read; a larger one counts as malformed.
    public var maxBodyBytes: Int

    public init(
        interval: Duration = .milliseconds(250),
        timeout: Duration = .seconds(1),
        maxConcurrentScrapes: Int = 8,
        maxBodyBytes: Int = 8 << 20
    ) {
        self.interval = interval
        self.timeout = timeout
        self.maxConcurrentScrapes = max(1, maxConcurrentScrapes)
        self.maxBodyBytes = maxBodyBytes
    }
}

/// How a scrape ended: the `outcome` label of `isobar_scrapes_total`.
enum ScrapeOutcome: String, Sendable, CaseIterable {
    case ok, error, timeout, malformed
}

/// Scrapes every backend that has a `metricsURL` once per interval, through the node's pooled upstream
/// connections, and hands each new `LoadSample` to `sink`, with whether the backend could be reached at
/// all (the scrape doubles as its health probe). Runs on one event loop: a tick queues the backends
/// whose previous round has ended and starts as many as the concurrency bound allows; a round that ends
/// starts the next queued one. A failed or slow scrape keeps the previous sample, which then ages.
final class MetricsScraper: Sendable {
    typealias Sink = @Sendable (BackendID, ScrapeReport) -> Void

    private let core: GatewayCore
    private let loop: any EventLoop
    private let configuration: ScraperConfiguration
    private let sink: Sink
    private let state: NIOLoopBoundBox<ScrapeLoop?>
    private let cancelled = Atomic<Bool>(false)
    /// Backends with a metrics URL.
    let targetCount: Int

    /// A scraper for `core`'s topology, running on `loop` (whose connection pool it uses).
    init(core: GatewayCore, loop: any EventLoop, configuration: ScraperConfiguration, sink: @escaping Sink) {
        self.core = core
        self.loop = loop
        self.configuration = configuration
        self.sink = sink
        self.state = .makeEmptyBox(valueType: ScrapeLoop.self, eventLoop: loop)
        self.targetCount = core.topology.backends.count { $0.metricsURL != nil && core.scrapes($0) }
    }

    /// Scrapes until the task is cancelled; in-flight scrapes are then abandoned.
    func run() async {
        guard targetCount > 0 else { return }
        let stopped = loop.makePromise(of: Void.self)
        await withTaskCancellationHandler {
            loop.execute { [self] in
                guard !cancelled.load(ordering: .acquiring) else {
                    stopped.succeed()
                    return
                }
                let scrapeLoop = ScrapeLoop(core: core, loop: loop, configuration: configuration, sink: sink)
                state.value = scrapeLoop
                scrapeLoop.start(stopped: stopped)
            }
            try? await stopped.futureResult.get()
        } onCancel: {
            cancelled.store(true, ordering: .releasing)
            loop.execute { [state] in state.value?.stop() }
        }
    }
}

/// What one scrape round of a backend found.
struct ScrapeReport: Sendable {
    /// A new sample, if the answer gave one.
    var sample: LoadSample?
    /// The backend answered (any status, even a slow one): false only when no connection could be made or
    /// it was cut before an answer.
    var reachable: Bool
}

extension ScrapeCall.Result {
    /// The server answered (any status); a timeout is not counted against it here (a busy engine may be
    /// slow to serve its metrics), only a refused or cut connection.
    var reachedServer: Bool {
        switch self {
        case .response: true
        case .failed(let outcome, _): outcome != .error
        }
    }
}

/// The scraper's state, on its event loop.
private final class ScrapeLoop {
    let targets: [ScrapeTarget]
    let pool: UpstreamPool
    let configuration: ScraperConfiguration
    let logger: Logger
    let sink: MetricsScraper.Sink
    private var timer: Scheduled<Void>?
    private var queue: [ScrapeTarget] = []
    private var inFlight = 0
    private var stopped: EventLoopPromise<Void>?
    /// One parser for all targets: its interned strings are shared and stay in cache.
    private var parser = PrometheusParser()

    init(
        core: GatewayCore,
        loop: any EventLoop,
        configuration: ScraperConfiguration,
        sink: @escaping MetricsScraper.Sink
    ) {
        self.targets = core.topology.backends.compactMap { backend in
            guard core.scrapes(backend) else { return nil }
            return backend.metricsURL.map { ScrapeTarget(backend: backend, metricsURL: $0, metrics: core.metrics) }
        }
        self.pool = core.pools.pool(for: loop)
        self.configuration = configuration
        self.logger = core.logger
        self.sink = sink
    }

    func start(stopped: EventLoopPromise<Void>) {
        guard self.stopped == nil else { return }
        self.stopped = stopped
        schedule(at: .now())
    }

    /// Ticks on a fixed grid of deadlines, so a slow tick does not shift the ones after it.
    private func schedule(at deadline: NIODeadline) {
        timer = pool.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            tick()
            let interval = TimeAmount.nanoseconds(configuration.interval.nanoseconds)
            let now = NIODeadline.now()
            schedule(at: deadline + interval > now ? deadline + interval : now + interval)
        }
    }

    func stop() {
        timer?.cancel()
        timer = nil
        queue.removeAll()
        for target in targets {
            target.call?.cancel()
            target.call = nil
        }
        stopped?.succeed()
        stopped = nil
    }

    private func tick() {
        let now = MonotonicClock.now()
        let deadline = NIODeadline.now()
        for target in targets {
            target.age(at: now)
            target.call?.expire(at: deadline)
            guard !target.busy, !target.queued else { continue }
            target.queued = true
            queue.append(target)
        }
        startQueued()
    }

    private func startQueued() {
        while inFlight < configuration.maxConcurrentScrapes, !queue.isEmpty {
            let target = queue.removeFirst()
            target.queued = false
            target.busy = true
            inFlight += 1
            round(target)
        }
    }

    /// `/metrics`, then `/slots` for llama.cpp, then the sample.
    private func round(_ target: ScrapeTarget) {
        fetch(target.metricsURL, for: target) { [self] result in
            let metrics = target.read(metrics: result, parser: &parser)
            let reachable = result.reachedServer
            guard let slotsURL = target.slotsURL else {
                finish(target, metrics, reachable: reachable)
                return
            }
            fetch(slotsURL, for: target) { [self] slots in
                target.read(slots: slots)
                finish(target, metrics, reachable: reachable || slots.reachedServer)
            }
        }
    }

    private func fetch(_ url: UpstreamURL, for target: ScrapeTarget, then: @escaping (ScrapeCall.Result) -> Void) {
        let call = ScrapeCall(
            url: url,
            headers: target.headers,
            pool: pool,
            timeout: .nanoseconds(configuration.timeout.nanoseconds),
            maxBodyBytes: configuration.maxBodyBytes
        )
        target.call = call
        call.start { result in
            target.call = nil
            then(result)
        }
    }

    private func finish(_ target: ScrapeTarget, _ metrics: MetricsAnswer, reachable: Bool) {
        target.busy = false
        inFlight -= 1
        let (sample, outcome) = target.finishRound(metrics, now: MonotonicClock.now())
        sink(target.backend.name, ScrapeReport(sample: sample, reachable: reachable))
        if sample == nil, case .failed(_, let reason) = metrics {
            logger.debug(
                "scrape failed",
                metadata: [
                    "isobar.backend": "\(target.backend.name)", "isobar.outcome": "\(outcome.rawValue)",
                    "isobar.reason": "\(reason)",
                ]
            )
        }
        if timer != nil { startQueued() }
    }
}
