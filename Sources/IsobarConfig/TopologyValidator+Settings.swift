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
        let timeouts = TimeoutSettings(
            connectMs: positive(routing.connectMs) ?? defaults.timeouts.connectMs,
            firstTokenMs: positive(routing.firstTokenMs) ?? defaults.timeouts.firstTokenMs,
            idleMs: positive(routing.idleMs) ?? defaults.timeouts.idleMs,
            totalMs: positive(routing.totalMs) ?? defaults.timeouts.totalMs
        )
        let breaker = CircuitBreakerSettings(
            consecutiveFailures: integer(routing.consecutiveFailures, in: 1...Int.max)
                ?? defaults.circuitBreaker.consecutiveFailures,
            cooldownSeconds: positive(routing.cooldownSeconds) ?? defaults.circuitBreaker.cooldownSeconds
        )
        return RoutingSettings(
            policy: routing.policy.flatMap(policy) ?? defaults.policy,
            proximityHysteresisMs: nonNegative(routing.hysteresisMs) ?? defaults.proximityHysteresisMs,
            retries: retries,
            timeouts: timeouts,
            circuitBreaker: breaker,
            balancing: checkBalancing(routing.balancing),
            admission: checkAdmission(routing.admission),
            debugHeader: routing.debugHeader?.value ?? defaults.debugHeader
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
        return CatchAll(
            mode: catchAll.mode.flatMap(catchAllMode) ?? defaults.mode,
            retryAfterSeconds: integer(catchAll.retryAfterSeconds, in: 0...Int.max) ?? defaults.retryAfterSeconds
        )
    }

    private func catchAllMode(_ value: Sourced<String>) -> CatchAll.Mode? {
        let available = CatchAll.Mode.allCases.filter(\.isAvailable).map(\.rawValue).joined(separator: ", ")
        guard let mode = CatchAll.Mode(rawValue: value.value) else {
            let hint = suggestion(for: value.value, among: CatchAll.Mode.allCases.map(\.rawValue))
            log.error(value.location, "unknown catch_all.mode '\(value.value)'\(hint); use \(available)")
            return nil
        }
        guard mode.isAvailable else {
            log.error(
                value.location,
                "catch_all.mode '\(value.value)' is not available in this version; use \(available)"
            )
            return nil
        }
        return mode
    }

    func checkLimits() -> Limits {
        let bytes = integer(file.limits?.maxRequestBodyBytes, in: 1024...(1 << 30), units: " bytes (1 KiB to 1 GiB)")
        return bytes.map(Limits.init) ?? Limits()
    }
}
