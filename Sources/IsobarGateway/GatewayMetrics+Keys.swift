import IsobarModel
import IsobarRouting
import Prometheus

/// Per key, team and model: requests, tokens and US dollars, and the requests limits refused.
extension GatewayMetrics {
    nonisolated(unsafe) static let keyRequests = name(
        "key_requests",
        "total",
        "Requests of virtual keys counted against their limits here, by key, team and model"
    )
    nonisolated(unsafe) static let keyTokens = name(
        "key_tokens",
        "total",
        "Tokens used by virtual keys, by key, team, model and kind (prompt or completion)"
    )
    nonisolated(unsafe) static let keySpend = name(
        "key_spend_usd",
        "total",
        "US dollars spent by virtual keys at each deployment's price, by key, team and model"
    )
    nonisolated(unsafe) static let limitRefusals = name(
        "limit_refusals",
        "total",
        "Requests refused for a key's or team's limit, by key and limit (requests, tokens, concurrent, budget)"
    )

    nonisolated(unsafe) static let limitStoreUp = name(
        "limit_store_up",
        "",
        "Whether the shared limit store (redis:) answers (1), or the node counts limits on its own (0)"
    )
    nonisolated(unsafe) static let limitStoreOutages = name(
        "limit_store_outages",
        "total",
        "Times the shared limit store stopped answering (unreachable, failed or slower than timeout_ms)"
    )

    nonisolated(unsafe) static let limitLocalDecisions = name(
        "limit_local_decisions",
        "total",
        "Keyed requests decided without the shared limit store (on_failure: local counts them here, closed refuses)"
    )

    nonisolated(unsafe) static let limitLeasedDecisions = name(
        "limit_leased_decisions",
        "total",
        "Keyed requests admitted on this node's leases of the shared limit store's limits, without asking it"
    )

    nonisolated(unsafe) static let budgetSpent = name(
        "budget_spent",
        "ratio",
        "Part of each key's and team's budget spent in the current period (1: spent), by kind (key, team) and name"
    )

    nonisolated(unsafe) static let responseCache = name(
        "response_cache",
        "total",
        "Cacheable requests of models with a response cache, by model and result (hit or miss)"
    )

    func responseCache(model: String, hit: Bool) {
        counter(
            Self.responseCache,
            [("model", model), ("result", hit ? "hit" : "miss")]
        )
        .increment()
    }

    func limitDecidedLocally(onFailure: String) {
        counter(Self.limitLocalDecisions, [("on_failure", onFailure)]).increment()
    }

    /// The counter of requests admitted on leases (made once: it counts most keyed requests of a busy node).
    func limitLeasedDecisions() -> Counter { counter(Self.limitLeasedDecisions) }

    func setBudgetSpent(_ subject: QuotaSubject, ratio: Double) {
        registry.makeGauge(
            descriptor: Self.budgetSpent,
            labels: [("kind", subject.kind.rawValue), ("name", subject.name)]
        )
        .set(ratio)
    }

    func limitStoreUp(_ up: Bool) {
        registry.makeGauge(descriptor: Self.limitStoreUp).set(Int64(up ? 1 : 0))
        // Shown from the start (at 0), so that an alert on its increase sees the first outage.
        let outages = counter(Self.limitStoreOutages)
        if !up { outages.increment() }
    }

    func keyUsage(key: String, team: String?, model: String, usage: Usage?, usd: Double) {
        let labels = [("key", key), ("team", team ?? ""), ("model", model)]
        counter(Self.keyRequests, labels).increment()
        if let usage {
            counter(Self.keyTokens, labels + [("kind", "prompt")])
                .increment(by: Int64(usage.promptTokens))
            counter(Self.keyTokens, labels + [("kind", "completion")])
                .increment(by: Int64(usage.completionTokens))
        }
        counter(Self.keySpend, labels).increment(by: usd)
    }

    func limitRefused(key: String, limit: String) {
        counter(Self.limitRefusals, [("key", key), ("limit", limit)]).increment()
    }
}
