import IsobarModel
import Prometheus
import Synchronization

/// The node's Prometheus metrics. All names start with `isobar_`.
final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    /// Running totals kept outside the registry (the gossip instance's counters), as last exported.
    let exportedTotals = Mutex<[String: Int]>([:])
    /// The counters and histograms made so far, by metric and label values: the registry checks a metric's
    /// name, help and labels and takes its lock on every lookup, which on the request path cost more than
    /// the increments themselves.
    private let counters = Mutex<[SeriesKey: Counter]>([:])
    private let histograms = Mutex<[SeriesKey: ValueHistogram]>([:])

    /// One series of one metric: its name and up to four label values (the label names are the metric's).
    struct SeriesKey: Hashable {
        let metric: String
        var values: (String, String, String, String) = ("", "", "", "")

        init(_ descriptor: MetricNameDescriptor, _ labels: [(String, String)]) {
            precondition(labels.count <= 4, "a series key holds four labels")
            metric = descriptor.metricName
            if labels.count > 0 { values.0 = labels[0].1 }
            if labels.count > 1 { values.1 = labels[1].1 }
            if labels.count > 2 { values.2 = labels[2].1 }
            if labels.count > 3 { values.3 = labels[3].1 }
        }

        static func == (a: SeriesKey, b: SeriesKey) -> Bool { a.metric == b.metric && a.values == b.values }

        func hash(into hasher: inout Hasher) {
            hasher.combine(metric)
            hasher.combine(values.0)
            hasher.combine(values.1)
            hasher.combine(values.2)
            hasher.combine(values.3)
        }
    }

    /// The counter of `descriptor` with `labels`, made on first use.
    func counter(_ descriptor: MetricNameDescriptor, _ labels: [(String, String)] = []) -> Counter {
        let key = SeriesKey(descriptor, labels)
        if let made = counters.withLock({ $0[key] }) { return made }
        let counter = registry.makeCounter(descriptor: descriptor, labels: labels)
        counters.withLock { $0[key] = counter }
        return counter
    }

    /// The histogram of `descriptor` with `labels`, made on first use.
    func histogram(
        _ descriptor: MetricNameDescriptor,
        _ labels: [(String, String)] = [],
        buckets: [Double]
    ) -> ValueHistogram {
        let key = SeriesKey(descriptor, labels)
        if let made = histograms.withLock({ $0[key] }) { return made }
        let histogram = registry.makeValueHistogram(descriptor: descriptor, labels: labels, buckets: buckets)
        histograms.withLock { $0[key] = histogram }
        return histogram
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "isobar", metricName: metric, unitName: unit, helpText: help)
    }

    nonisolated(unsafe) static let requests = name(
        "requests",
        "total",
        "Requests answered, by client model, serving backend and HTTP status"
    )
    nonisolated(unsafe) static let ttft = name(
        "time_to_first_token",
        "seconds",
        "Time from request arrival to the first content token sent to the client"
    )
    nonisolated(unsafe) static let duration = name(
        "request_duration",
        "seconds",
        "End-to-end request latency as the client sees it"
    )
    nonisolated(unsafe) static let overhead = name(
        "gateway_overhead",
        "seconds",
        "Time spent in the gateway per request, excluding upstream time and retry backoff"
    )
    nonisolated(unsafe) static let tokens = name(
        "tokens",
        "total",
        "Tokens accounted, by client model, backend and kind (prompt or completion)"
    )
    nonisolated(unsafe) static let failures = name(
        "upstream_failures",
        "total",
        "Failed upstream attempts, by backend and reason"
    )
    nonisolated(unsafe) static let streamErrors = name(
        "stream_errors",
        "total",
        "Streams ended with an in-band error after the first token, by backend and reason"
    )
    nonisolated(unsafe) static let inFlight = name(
        "in_flight",
        "requests",
        "Requests this node has in flight on each backend"
    )

    nonisolated(unsafe) static let open = name(
        "open",
        "requests",
        "Client requests whose response has not ended yet (in flight, waiting for a retry, or held)"
    )

    static let ttftBuckets: [Double] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64]
    static let durationBuckets: [Double] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
    ]
    static let overheadBuckets: [Double] = [
        0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
    ]

    /// A request ended with `status`, the status the client saw (499 when the client went away first).
    func requestFinished(
        model: String,
        backend: String,
        status: Int,
        ttft: Duration?,
        duration: Duration,
        overhead: Duration,
        usage: Usage?
    ) {
        counter(Self.requests, [("model", model), ("backend", backend), ("status", String(status))]).increment()
        let labels = [("model", model), ("backend", backend)]
        if let ttft { histogram(Self.ttft, labels, buckets: Self.ttftBuckets).record(ttft.seconds) }
        histogram(Self.duration, labels, buckets: Self.durationBuckets).record(duration.seconds)
        histogram(Self.overhead, buckets: Self.overheadBuckets).record(max(0, overhead.seconds))
        if let usage {
            counter(Self.tokens, labels + [("kind", "prompt")]).increment(by: Int64(usage.promptTokens))
            counter(Self.tokens, labels + [("kind", "completion")]).increment(by: Int64(usage.completionTokens))
        }
    }

    /// An upstream attempt failed for `reason` (a failure label).
    func attemptFailed(backend: String, reason: String) {
        counter(Self.failures, [("backend", backend), ("reason", reason)]).increment()
    }

    /// A stream committed to the client was ended with an in-band error.
    func streamAborted(backend: String, reason: String) {
        counter(Self.streamErrors, [("backend", backend), ("reason", reason)])
            .increment()
    }

    /// Sets the in-flight gauge of a backend (called when /metrics is read).
    func setInFlight(backend: String, _ value: Int) {
        registry.makeGauge(descriptor: Self.inFlight, labels: [("backend", backend)]).set(Int64(value))
    }

    /// Sets the gauge of open client requests (called when /metrics is read).
    func setOpenRequests(_ value: Int) {
        registry.makeGauge(descriptor: Self.open).set(Int64(value))
    }

    /// The exposition text.
    func exposition() -> [UInt8] { registry.emitToBuffer() }
}
