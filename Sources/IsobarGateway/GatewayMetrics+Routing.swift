import IsobarRouting
import Prometheus

/// The routing metrics of a node: each endpoint's in-flight ledger, learned rates and last score, refreshed
/// when `/metrics` is read, and the picks of each endpoint by reason, counted as attempts are sent.
extension GatewayMetrics {
    nonisolated(unsafe) static let ledger = name(
        "endpoint_ledger",
        "",
        "This node's in-flight ledger per backend: awaiting_first_token (requests), prefill_tokens "
            + "(uncached prompt tokens not yet prefilled), decode_streams"
    )
    nonisolated(unsafe) static let rate = name(
        "endpoint_rate",
        "tokens_per_second",
        "Token throughput the router assumes per backend (hint refined online), by kind: prefill, decode"
    )
    nonisolated(unsafe) static let score = name(
        "endpoint_expected_ttft",
        "seconds",
        "Expected time to first token on each backend when a request last considered it"
    )
    nonisolated(unsafe) static let stale = name(
        "endpoint_stale",
        "",
        "1 while a backend with a metrics URL has no fresh scraped sample (its load is penalised, "
            + "not read as idle)"
    )
    nonisolated(unsafe) static let usableBackends = name(
        "region_usable_backends",
        "",
        "Backends of each region this node would route to now (breaker not open, not paused), by backend_region"
    )
    nonisolated(unsafe) static let breaker = name(
        "endpoint_breaker",
        "",
        "Circuit breaker of each backend: 0 closed, 1 half-open (one probe admitted), 2 open (passed over); "
            + "paused backends (retry-after) are 2 too"
    )
    nonisolated(unsafe) static let picks = name(
        "picks",
        "total",
        "Attempts sent to each backend, by why it was picked: only (single candidate), best (the policy's "
            + "choice), affinity (holds the prompt prefix, within the TTFT budget), retry (same deployment again)"
    )

    nonisolated(unsafe) static let retries = name(
        "retries",
        "total",
        "Attempts sent again to the same backend after a backoff, by backend and the failure before"
    )
    nonisolated(unsafe) static let forwards = name(
        "forwarded_requests",
        "total",
        "Requests forwarded to a node of another region (direction out, by that node) or received from one "
            + "(direction in), for backends only their own region reaches"
    )
    nonisolated(unsafe) static let fallbacks = name(
        "fallbacks",
        "total",
        "Attempts moved from one backend to another (another deployment of the model, or a fallback "
            + "model's), by the failure that moved them"
    )

    nonisolated(unsafe) static let catchAll = name(
        "catch_all",
        "total",
        "Requests answered by the catch-all because no backend could serve them, by model and answer: busy "
            + "(503), static (the configured answer), cache (the last good answer to the same request)"
    )

    /// A request of `model` was answered by the catch-all with `answer` (busy, static, cache).
    func caughtAll(model: String, answer: String) {
        counter(Self.catchAll, [("model", model), ("answer", answer)]).increment()
    }

    /// An attempt on `backend` failed for `reason` and is tried there again after a backoff.
    func retried(backend: String, reason: String) {
        counter(Self.retries, [("backend", backend), ("reason", reason)])
            .increment()
    }

    /// An attempt on `from` failed for `reason`; the next goes to `to`.
    func fellBack(from: String, to: String, reason: String) {
        counter(Self.fallbacks, [("from", from), ("to", to), ("reason", reason)])
            .increment()
    }

    /// Sets the gauges of one endpoint from the router's view of it.
    /// How many of `region`'s backends this node would route to now.
    func setUsableBackends(region: String, _ count: Int) {
        registry.makeGauge(descriptor: Self.usableBackends, labels: [("backend_region", region)]).set(Int64(count))
    }

    func setEndpoint(_ status: EndpointStatus) {
        let backend = status.backend.rawValue
        setInFlight(backend: backend, status.requests)
        for (kind, value) in [
            ("awaiting_first_token", status.awaitingFirstToken), ("prefill_tokens", status.prefillTokens),
            ("decode_streams", status.decodeStreams),
        ] {
            registry.makeGauge(descriptor: Self.ledger, labels: [("backend", backend), ("kind", kind)])
                .set(Int64(value))
        }
        registry.makeGauge(descriptor: Self.rate, labels: [("backend", backend), ("kind", "prefill")])
            .set(status.prefillRate)
        registry.makeGauge(descriptor: Self.rate, labels: [("backend", backend), ("kind", "decode")])
            .set(status.decodeRate)
        registry.makeGauge(descriptor: Self.score, labels: [("backend", backend)]).set(status.lastScore)
        registry.makeGauge(descriptor: Self.stale, labels: [("backend", backend)]).set(Int64(status.stale ? 1 : 0))
        let breaker: Int64 =
            switch status.breaker {
            case .closed: status.paused ? 2 : 0
            case .halfOpen: status.paused ? 2 : 1
            case .open: 2
            }
        registry.makeGauge(descriptor: Self.breaker, labels: [("backend", backend)]).set(breaker)
    }

    /// An attempt was sent to `backend`, picked for `reason`.
    func forwarded(_ direction: String, node: String) {
        counter(Self.forwards, [("direction", direction), ("node", node)]).increment()
    }

    func picked(backend: String, reason: PickReason) {
        counter(Self.picks, [("backend", backend), ("reason", reason.rawValue)])
            .increment()
    }
}
