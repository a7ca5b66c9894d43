import IsobarConfig
import IsobarModel
import Testing

/// `network:`, `faults:`, `policies:` and `slo:` of a scenario: what each problem reports.
@Suite("Scenario network, faults, policies and SLOs")
struct ScenarioFaultsTests {
    @Test func rttMatrix() {
        let yaml =
            ScenarioFixture.minimal + """
                network:
                  default_ms: -1
                  rtt_ms:
                    - {between: [us-east, eu-west], ms: 80}
                    - {between: [eu-west, us-east], ms: 90}
                    - {between: [us-east, us-east], ms: 1}
                    - {between: [us-east, eu-wset], ms: 1}
                    - {between: [us-east], ms: -2}
                """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:11: network.default_ms: must not be negative, got -1",
                "sims/test.yaml:14: network.rtt_ms[1]: the RTT between eu-west and us-east is already given on line 13",
                "sims/test.yaml:15: network.rtt_ms[2].between: expected two different regions (a region to itself is "
                    + "same_region_ms)",
                "sims/test.yaml:16: network.rtt_ms[3].between[1]: unknown region 'eu-wset' (did you mean 'eu-west'?)",
                "sims/test.yaml:17: network.rtt_ms[4].between: expected two regions, got 1",
                "sims/test.yaml:17: network.rtt_ms[4].ms: must not be negative, got -2",
            ]
        )
    }

    @Test func faultTargetsAndTimes() {
        let yaml =
            ScenarioFixture.minimal + """
                faults:
                  - {at_s: 10, until_s: 5, down: [use-h10]}
                  - {at_s: 1, down: [use-h100-4], slow: [euw-4090]}
                  - {at_s: 1, slow: [euw-4090]}
                  - {until_s: 3, partition: [us-east, ap-south], factor: 2}
                  - {at_s: 1, down: []}
                  - {at_s: 1}
                  - {at_s: 1, slow: [gone], factor: 0}
                """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:11: faults[0].until_s: must be after at_s (10)",
                "sims/test.yaml:11: faults[0].down[0]: unknown backend 'use-h10' (did you mean 'use-h100'?)",
                "sims/test.yaml:12: faults[1].slow: a fault is one of down, partition or slow; give slow its own item",
                "sims/test.yaml:12: faults[1].down[0]: unknown backend 'use-h100-4' (did you mean 'use-h100'?)",
                "sims/test.yaml:13: faults[2].factor: required key is missing",
                "sims/test.yaml:14: faults[3].at_s: required key is missing",
                "sims/test.yaml:14: faults[3].factor: factor is only for slow",
                "sims/test.yaml:14: faults[3].partition[1]: unknown region 'ap-south'; defined: us-east, eu-west",
                "sims/test.yaml:15: faults[4].down: at least one backend is needed",
                "sims/test.yaml:16: faults[5]: a fault needs one of down: [BACKEND, ...], partition: [REGION, REGION] "
                    + "or slow: [BACKEND, ...]",
                "sims/test.yaml:17: faults[6].factor: must be greater than 0, got 0",
                "sims/test.yaml:17: faults[6].slow[0]: unknown backend 'gone'; defined: euw-4090, use-h100",
            ]
        )
    }

    @Test func aFaultAfterTheRunIsReported() {
        let yaml =
            ScenarioFixture.minimal.replacingOccurrences(of: "requests: 1000", with: "duration_s: 60") + """
                faults: [{at_s: 61, down: [euw-4090]}]
                """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:10: faults[0].at_s: the fault would start after the run (duration_s: 60)"
            ]
        )
    }

    @Test func policiesMustBeKnownAndListedOnce() {
        let available = "use one of isobar, round-robin, random, least-request, power-of-two, least-tokens, peak-ewma"
        let yaml =
            ScenarioFixture.minimal + """
                policies: [least-request, least-requests, peak-ewma, least-request]
                slo: {ttft_ms: 0, tpot_ms: -80, e2e_s: 1}
                """
        #expect(
            ScenarioFixture.problems(yaml) == [
                "sims/test.yaml:10: policies[1]: unknown policy 'least-requests' (did you mean 'least-request'?); "
                    + available,
                "sims/test.yaml:10: policies[3]: policy 'least-request' is already listed (line 10)",
                "sims/test.yaml:11: slo.e2e_s: unknown key 'e2e_s' (did you mean 'e2e_ms'?)",
                "sims/test.yaml:11: slo.ttft_ms: must be greater than 0, got 0",
                "sims/test.yaml:11: slo.tpot_ms: must be greater than 0, got -80",
            ]
        )
        #expect(
            ScenarioFixture.problems(ScenarioFixture.minimal + "policies: []\n") == [
                "sims/test.yaml:10: policies: at least one policy is needed"
            ]
        )
    }
}
