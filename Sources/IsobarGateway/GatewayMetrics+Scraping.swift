import Prometheus

/// The scrape metrics of a node: what each backend's engine reported, how old that is, and how scrapes ended.
extension GatewayMetrics {
    nonisolated(unsafe) static let scraped = name(
        "backend_scraped",
        "",
        "Load scraped from each self-hosted backend: waiting, running, kv_usage (0-1), prompt_tps, generation_tps"
    )
    nonisolated(unsafe) static let scrapeAge = name(
        "backend_scrape_age",
        "seconds",
        "Age of each backend's last successful scrape (refreshed every scrape interval)"
    )
    nonisolated(unsafe) static let scrapes = name(
        "scrapes",
        "total",
        "Metric scrapes of each backend, by outcome (ok, error, timeout, malformed)"
    )

    func scrapedGauge(backend: String, metric: String) -> Gauge {
        registry.makeGauge(descriptor: Self.scraped, labels: [("backend", backend), ("metric", metric)])
    }

    func scrapeAgeGauge(backend: String) -> Gauge {
        registry.makeGauge(descriptor: Self.scrapeAge, labels: [("backend", backend)])
    }

    func scrapeCounter(backend: String, outcome: ScrapeOutcome) -> Counter {
        counter(Self.scrapes, [("backend", backend), ("outcome", outcome.rawValue)])
    }
}
