import IsobarModel
import IsobarWire
import NIOCore
import NIOHTTP1
import Prometheus

/// One scraped backend: where its metrics are, how its engine's exposition is read, the rate tracker, and its
/// scrape metrics. Event-loop bound (the scraper's loop).
final class ScrapeTarget {
    let backend: Backend
    private(set) var metricsURL: UpstreamURL
    /// llama.cpp's `/slots`, until it answers 404 or 501 (disabled with `--no-slots`, or an older build).
    private(set) var slotsURL: UpstreamURL?
    private let selection: MetricSelection
    private var tracker = LoadTracker()
    private let gauges: ScrapeGauges
    /// When the last sample was taken.
    private(set) var lastSampleAt: Instant?
    /// A round (metrics, then slots) is in progress.
    var busy = false
    /// Waiting for a free scrape slot.
    var queued = false
    /// The call in progress, to abandon at shutdown.
    var call: ScrapeCall?
    /// The slots read in this round.
    private var slots: LlamaCppSlots?
    private var switchedToPrometheusPath = false
    /// The headers of every scrape of this target (its URLs differ only in the path), built once.
    let headers: HTTPHeaders

    init(backend: Backend, metricsURL: UpstreamURL, metrics: GatewayMetrics) {
        self.backend = backend
        self.metricsURL = metricsURL
        if backend.engine == .vllm || backend.engine == .sglang {
            self.metricsURL.basePath = Self.restricted(
                metricsURL.basePath,
                to: EngineMetrics.sampleNames(for: backend.engine)
            )
        }
        self.selection = EngineMetrics.selection(for: backend.engine)
        self.headers = ScrapeCall.headers(for: metricsURL, apiKey: backend.apiKey)
        self.gauges = ScrapeGauges(backend: backend.name.rawValue, metrics: metrics)
        if backend.engine == .llamacpp {
            var slots = metricsURL
            if slots.basePath.hasSuffix("/metrics") { slots.basePath.removeLast("/metrics".count) }
            slots.basePath += "/slots"
            slotsURL = slots
        }
    }

    /// `path` asking for only the samples `names`: vLLM and SGLang serve `/metrics` with Prometheus's Python
    /// client, which answers `name[]` query parameters with just those samples (a few hundred bytes instead
    /// of tens of kilobytes of histograms, less work for the engine and for the scraper). A server that
    /// ignores the query answers everything, which the parser's selection skips anyway.
    static func restricted(_ path: String, to names: [String]) -> String {
        guard !names.isEmpty else { return path }
        let query = names.map { "name%5B%5D=" + percentEncoded($0) }.joined(separator: "&")
        return path + (path.contains("?") ? "&" : "?") + query
    }

    private static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append(contentsOf: ["%", hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            }
        }
        return out
    }

    // MARK: - Reading answers

    /// What a `/metrics` answer said: a reading, or why there is none. `parser` is shared by every target of
    /// the scraper: the same names and labels come from every backend, and one warm table serves them all.
    func read(metrics result: ScrapeCall.Result, parser: inout PrometheusParser) -> MetricsAnswer {
        let status: Int
        let body: ByteBuffer
        switch result {
        case .failed(let outcome, let reason): return .failed(outcome, reason)
        case .response(let code, let bytes):
            status = code
            body = bytes
        }
        guard status == 200 else { return .failed(.error, "HTTP \(status)") }
        let exposition = body.withUnsafeReadableBytes { parser.parse($0, selecting: selection) }
        let reading = EngineMetrics.reading(engine: backend.engine, exposition: exposition)
        guard reading.isEmpty else { return .reading(reading) }
        preferPrometheusPath(after: body)
        let problem = exposition.problems.first.map { ": \($0)" } ?? ""
        return .failed(.malformed, "no \(backend.engine.rawValue) metric in the answer\(problem)")
    }

    /// Notes a `/slots` answer for this round; stops asking if the server has none.
    func read(slots result: ScrapeCall.Result) {
        slots = nil
        guard case .response(let status, let body) = result else { return }
        if status == 404 || status == 501 {
            slotsURL = nil
            return
        }
        guard status == 200 else { return }
        slots = body.withUnsafeReadableBytes { LlamaCppSlots.reading(json: $0) }
    }

    /// Ends a round: a sample if either answer gave something, and the outcome to count.
    func finishRound(_ metrics: MetricsAnswer, now: Instant) -> (sample: LoadSample?, outcome: ScrapeOutcome) {
        defer { slots = nil }
        var reading: EngineReading
        switch metrics {
        case .reading(let read): reading = read
        case .failed(let outcome, _):
            guard slots != nil else {
                gauges.count(outcome)
                return (nil, outcome)
            }
            reading = EngineReading()
        }
        if let slots { reading = reading.merging(slots) }
        let sample = tracker.sample(reading, at: now)
        lastSampleAt = now
        gauges.record(sample)
        gauges.count(.ok)
        return (sample, .ok)
    }

    /// Refreshes the age gauge.
    func age(at now: Instant) {
        if let lastSampleAt { gauges.setAge((now - lastSampleAt).seconds) }
    }

    /// `trtllm-serve` answers `/metrics` with JSON iteration stats and serves Prometheus text at
    /// `/prometheus/metrics`; switch there once when a TensorRT-LLM backend's `/metrics` is JSON.
    private func preferPrometheusPath(after body: ByteBuffer) {
        guard backend.engine == .trtllm, !switchedToPrometheusPath, metricsURL.basePath.hasSuffix("/metrics"),
            let first = body.readableBytesView.first(where: { $0 != 0x20 && $0 != 0x0A }),
            first == UInt8(ascii: "[") || first == UInt8(ascii: "{")
        else { return }
        switchedToPrometheusPath = true
        metricsURL.basePath.removeLast("/metrics".count)
        metricsURL.basePath += "/prometheus/metrics"
    }
}

/// What a `/metrics` answer gave.
enum MetricsAnswer {
    case reading(EngineReading)
    /// No reading, with the outcome to count and a reason for the log.
    case failed(ScrapeOutcome, String)
}

/// A backend's scrape metrics, kept so a scrape does not look them up in the registry.
private final class ScrapeGauges {
    private let backend: String
    private let metrics: GatewayMetrics
    private var values: [String: Gauge] = [:]
    private var outcomes: [ScrapeOutcome: Counter] = [:]
    private var ageGauge: Gauge?

    init(backend: String, metrics: GatewayMetrics) {
        self.backend = backend
        self.metrics = metrics
    }

    func count(_ outcome: ScrapeOutcome) {
        if outcomes[outcome] == nil { outcomes[outcome] = metrics.scrapeCounter(backend: backend, outcome: outcome) }
        outcomes[outcome]?.increment()
    }

    func setAge(_ seconds: Double) {
        if ageGauge == nil { ageGauge = metrics.scrapeAgeGauge(backend: backend) }
        ageGauge?.set(to: max(0, seconds))
    }

    /// Sets a gauge per field the sample has; a field that was exported before and is now missing reads NaN.
    func record(_ sample: LoadSample) {
        let fields: [(String, Double?)] = [
            ("waiting", sample.waiting.map(Double.init)),
            ("running", sample.running.map(Double.init)),
            ("kv_usage", sample.kvUsage),
            ("prompt_tps", sample.promptTokensPerSecond),
            ("generation_tps", sample.generationTokensPerSecond),
        ]
        for (metric, value) in fields {
            if let value {
                if values[metric] == nil { values[metric] = metrics.scrapedGauge(backend: backend, metric: metric) }
                values[metric]?.set(to: value)
            } else {
                values[metric]?.set(to: .nan)
            }
        }
        setAge(0)
    }
}
