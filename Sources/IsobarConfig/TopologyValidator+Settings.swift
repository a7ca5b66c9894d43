import IsobarModel

extension TopologyValidator {
    // MARK: - Routing, catch-all, limits

    func checkRouting() -> RoutingSettings {
        let defaults = RoutingSettings()
        guard let routing = file.routing else { return defaults }
        let retries = RetrySettings(
            attempts: integer(routing.attempts, in: 0...10) ?? defaults.retries.attempts,
            backoffBaseMs: nonNegative(routing.backoffBaseMs) ?? defaults.retries.backoffBaseMs,
            backoffMaxMs: nonNegative(routing.backoffMaxMs) ?? defaults.retries.backoffMaxMs
        )
        if retries.backoffBaseMs > retries.backoffMaxMs,
            let location = routing.backoffBaseMs?.location ?? routing.backoffMaxMs?.location
        {
            log.error(
                location,
                "backoff_base_ms (\(format(retries.backoffBaseMs))) must not exceed backoff_max_ms "
                    + "(\(format(retries.backoffMaxMs)))"
            )
        }
        let timeouts = defaults.timeouts.overridden(by: checkTimeouts(routing.timeouts))
        let breaker = CircuitBreakerSettings(
            consecutiveFailures: integer(routing.consecutiveFailures, in: 1...Int.max)
                ?? defaults.circuitBreaker.consecutiveFailures,
            cooldownSeconds: positive(routing.cooldownSeconds) ?? defaults.circuitBreaker.cooldownSeconds,
            window: integer(routing.breakerWindow, in: 2...64, units: " attempts") ?? defaults.circuitBreaker.window,
            errorRate: fraction(routing.errorRate) ?? defaults.circuitBreaker.errorRate
        )
        return RoutingSettings(
            policy: routing.policy.flatMap(policy) ?? defaults.policy,
            proximity: ProximitySettings(
                hysteresisMs: nonNegative(routing.hysteresisMs) ?? defaults.proximity.hysteresisMs,
                spillOver: routing.spillOver?.value ?? defaults.proximity.spillOver,
                sessionTTLSeconds: nonNegative(routing.sessionTTLSeconds) ?? defaults.proximity.sessionTTLSeconds
            ),
            retries: retries,
            timeouts: timeouts,
            circuitBreaker: breaker,
            balancing: checkBalancing(routing.balancing),
            admission: checkAdmission(routing.admission),
            debugHeader: routing.debugHeader?.value ?? defaults.debugHeader,
            idleProbeSeconds: nonNegative(routing.idleProbeSeconds) ?? defaults.idleProbeSeconds
        )
    }

    /// A share, above 0 and at most 1.
    private func fraction(_ value: Sourced<Double>?) -> Double? {
        guard let value else { return nil }
        guard value.value > 0, value.value <= 1 else {
            log.error(value.location, "must be above 0 and at most 1, got \(format(value.value))")
            return nil
        }
        return value.value
    }

    /// A `timeouts:` mapping: each a positive number of milliseconds.
    func checkTimeouts(_ fields: Fields?) -> TimeoutOverrides {
        guard let fields else { return TimeoutOverrides() }
        return TimeoutOverrides(
            connectMs: positive(fields.number("connect_ms")),
            firstTokenMs: positive(fields.number("first_token_ms")),
            idleMs: positive(fields.number("idle_ms")),
            totalMs: positive(fields.number("total_ms"))
        )
    }

    /// `routing.balancing`: milliseconds in the file, seconds in the value.
    private func checkBalancing(_ fields: Fields?) -> BalancingSettings {
        let defaults = BalancingSettings()
        guard let fields else { return defaults }
        func ms(_ key: String, _ fallback: Double, positiveOnly: Bool = false) -> Double {
            let value = positiveOnly ? positive(fields.number(key)) : nonNegative(fields.number(key))
            return value.map { $0 / 1000 } ?? fallback
        }
        var quantile = defaults.outputQuantile
        if let q = fields.number("output_quantile") {
            if q.value > 0, q.value < 1 {
                quantile = q.value
            } else {
                log.error(q.location, "must be between 0 and 1 (exclusive), got \(format(q.value))")
            }
        }
        return BalancingSettings(
            scrapeIntervalSeconds: ms("scrape_interval_ms", defaults.scrapeIntervalSeconds, positiveOnly: true),
            staleAfterSeconds: ms("stale_after_ms", defaults.staleAfterSeconds, positiveOnly: true),
            stalePenaltySeconds: ms("stale_penalty_ms", defaults.stalePenaltySeconds),
            affinityBudgetSeconds: ms("affinity_budget_ms", defaults.affinityBudgetSeconds),
            outputQuantile: quantile,
            kvPressureSeconds: ms("kv_pressure_ms", defaults.kvPressureSeconds)
        )
    }

    /// `routing.admission`.
    private func checkAdmission(_ fields: Fields?) -> AdmissionSettings {
        let defaults = AdmissionSettings()
        guard let fields else { return defaults }
        return AdmissionSettings(
            maxQueuePerEndpoint: integer(fields.integer("max_queue_per_endpoint"), in: 1...Int.max),
            maxPredictedTTFTSeconds: positive(fields.number("max_predicted_ttft_ms")).map { $0 / 1000 },
            waitQueueRequests: integer(fields.integer("wait_queue_requests"), in: 0...1_000_000)
                ?? defaults.waitQueueRequests,
            maxWaitSeconds: positive(fields.number("max_wait_ms")).map { $0 / 1000 } ?? defaults.maxWaitSeconds
        )
    }

    func checkCatchAll() -> CatchAll {
        let defaults = CatchAll()
        guard let catchAll = file.catchAll else { return defaults }
        let mode = catchAll.mode.flatMap { choice($0, "catch_all.mode") as CatchAll.Mode? } ?? defaults.mode
        if let content = catchAll.content, content.value.allSatisfy(\.isWhitespace) {
            log.error(content.location, "must not be empty: it is the answer clients get in static mode")
        }
        return CatchAll(
            mode: mode,
            retryAfterSeconds: integer(catchAll.retryAfterSeconds, in: 0...3600, units: " seconds")
                ?? defaults.retryAfterSeconds,
            content: catchAll.content?.value ?? defaults.content,
            cacheMaxBytes: integer(catchAll.cacheMaxBytes, in: 0...(16 << 30), units: " bytes (0 to 16 GiB)")
                ?? defaults.cacheMaxBytes
        )
    }

    func checkLimits() -> Limits {
        let defaults = Limits()
        let body = integer(file.limits?.maxRequestBodyBytes, in: 1024...(1 << 30), units: " bytes (1 KiB to 1 GiB)")
        let cache = integer(file.limits?.responseCacheMaxBytes, in: 0...(1 << 34), units: " bytes (up to 16 GiB)")
        return Limits(
            maxRequestBodyBytes: body ?? defaults.maxRequestBodyBytes,
            responseCacheMaxBytes: cache ?? defaults.responseCacheMaxBytes
        )
    }
}
