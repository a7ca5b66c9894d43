import IsobarConfig
import IsobarModel
import Testing

/// The balancing keys of a topology file: `capacity.kv_cache_tokens`, `routing.balancing`,
/// `routing.admission` and `routing.debug_header` (milliseconds in the file, seconds in the values).
@Suite("Balancing and admission settings of topology files")
struct TopologyBalancingTests {
    /// `Fixture.minimal` with `routing` (and anything else) appended from line 9.
    static func with(_ tail: String) -> String { Fixture.minimal + tail }

    @Test func balancingAdmissionAndDebugHeaderLoad() throws {
        let yaml = Self.with(
            """
            routing:
              policy: isobar
              balancing:
                scrape_interval_ms: 100
                stale_after_ms: 1500
                stale_penalty_ms: 80
                affinity_budget_ms: 300
                output_quantile: 0.9
                kv_pressure_ms: 20
              admission:
                max_queue_per_endpoint: 16
                max_predicted_ttft_ms: 4000
                wait_queue_requests: 50
                max_wait_ms: 2500
              debug_header: true
            """
        )
        let routing = try Fixture.load(yaml).routing
        #expect(routing.policy == .isobar)
        #expect(
            routing.balancing
                == BalancingSettings(
                    scrapeIntervalSeconds: 0.1,
                    staleAfterSeconds: 1.5,
                    stalePenaltySeconds: 0.08,
                    affinityBudgetSeconds: 0.3,
                    outputQuantile: 0.9,
                    kvPressureSeconds: 0.02
                )
        )
        #expect(
            routing.admission
                == AdmissionSettings(
                    maxQueuePerEndpoint: 16,
                    maxPredictedTTFTSeconds: 4,
                    waitQueueRequests: 50,
                    maxWaitSeconds: 2.5
                )
        )
        #expect(routing.debugHeader)
    }

    @Test func kvCacheTokensLoadIntoTheCapacity() throws {
        let yaml = Fixture.minimal.replacingOccurrences(
            of: "models: [m1, m2]}",
            with: "models: [m1, m2], capacity: {kv_cache_tokens: 1200000, max_concurrency: 64}}"
        )
        let backend = try #require(try Fixture.load(yaml).backend("b1"))
        #expect(backend.capacity == Capacity(maxConcurrency: 64, kvCacheTokens: 1_200_000))
    }

    @Test func omittedKeysTakeTheirDefaults() throws {
        let topology = try Fixture.load(Fixture.minimal)
        let balancing = topology.routing.balancing
        // The issue and BalancingSettings: scrape every 250 ms, stale after 2 s.
        #expect(balancing.scrapeIntervalSeconds == 0.25)
        #expect(balancing.staleAfterSeconds == 2)
        #expect(balancing.stalePenaltySeconds == 0.05)
        #expect(balancing.affinityBudgetSeconds == 0.2)
        #expect(balancing.outputQuantile == 0.75)
        #expect(balancing.kvPressureSeconds == 0.05)
        // No admission control unless asked for; a held queue of 1000 for 10 s once a cap is set.
        let admission = topology.routing.admission
        #expect(admission.maxQueuePerEndpoint == nil)
        #expect(admission.maxPredictedTTFTSeconds == nil)
        #expect(admission.waitQueueRequests == 1000)
        #expect(admission.maxWaitSeconds == 10)
        #expect(!topology.routing.debugHeader)
        #expect(topology.backend("b1")?.capacity.kvCacheTokens == nil)
        // A partial section keeps the defaults of the keys it leaves out.
        let partial = try Fixture.load(
            Self.with("routing: {balancing: {affinity_budget_ms: 0}, admission: {max_queue_per_endpoint: 4}}\n")
        )
        #expect(partial.routing.balancing == BalancingSettings(affinityBudgetSeconds: 0))
        #expect(partial.routing.admission == AdmissionSettings(maxQueuePerEndpoint: 4))
    }

    @Test func outOfRangeValuesAreReportedWithTheirKeyPath() {
        let yaml = Self.with(
            """
            routing:
              balancing:
                scrape_interval_ms: 0
                stale_after_ms: -5
                stale_penalty_ms: -1
                affinity_budget_ms: -200
                output_quantile: 1
                kv_pressure_ms: -0.5
              admission:
                max_queue_per_endpoint: 0
                max_predicted_ttft_ms: 0
                wait_queue_requests: -1
                max_wait_ms: 0
            """
        )
        #expect(
            Fixture.problems(yaml) == [
                "test.yaml:11: routing.balancing.scrape_interval_ms: must be greater than 0, got 0",
                "test.yaml:12: routing.balancing.stale_after_ms: must be greater than 0, got -5",
                "test.yaml:13: routing.balancing.stale_penalty_ms: must not be negative, got -1",
                "test.yaml:14: routing.balancing.affinity_budget_ms: must not be negative, got -200",
                "test.yaml:15: routing.balancing.output_quantile: must be between 0 and 1 (exclusive), got 1",
                "test.yaml:16: routing.balancing.kv_pressure_ms: must not be negative, got -0.5",
                "test.yaml:18: routing.admission.max_queue_per_endpoint: must be at least 1, got 0",
                "test.yaml:19: routing.admission.max_predicted_ttft_ms: must be greater than 0, got 0",
                "test.yaml:20: routing.admission.wait_queue_requests: must be from 0 to 1000000, got -1",
                "test.yaml:21: routing.admission.max_wait_ms: must be greater than 0, got 0",
            ]
        )
    }

    @Test func wrongTypesAndUnknownKeysAreReported() {
        let yaml = Fixture.minimal.replacingOccurrences(
            of: "models: [m1, m2]}",
            with: "models: [m1, m2], capacity: {kv_cache_tokens: 0}}"
        )
        let tail = """
            routing:
              balancing:
                affinity_budget_s: 0.1
                stale_after_ms: "2s"
              admission:
                max_queue_per_endpoint: 2.5
              debug_header: "yes"
            """
        #expect(
            Fixture.problems(yaml + tail) == [
                "test.yaml:6: backends[0].capacity.kv_cache_tokens: must be at least 1, got 0",
                "test.yaml:11: routing.balancing.affinity_budget_s: unknown key 'affinity_budget_s' "
                    + "(did you mean 'affinity_budget_ms'?)",
                "test.yaml:12: routing.balancing.stale_after_ms: expected a number, got a string",
                "test.yaml:14: routing.admission.max_queue_per_endpoint: expected a whole number, got 2.5",
                "test.yaml:15: routing.debug_header: expected true or false, got a string",
            ]
        )
    }
}
