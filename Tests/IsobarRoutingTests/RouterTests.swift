import IsobarModel
import IsobarRouting
import Testing

@Suite("Router")
struct RouterTests {
    static func topology(policy: PolicyKind = .roundRobin, attempts: Int = 2) -> Topology {
        let url = UpstreamURL(tls: false, host: "127.0.0.1", port: 9000)
        return Topology(
            mesh: Mesh(name: "test"),
            regions: [Region(name: "r1")],
            nodes: [Node(name: "n1", region: "r1", listen: HostPort(host: "127.0.0.1", port: 8080))],
            backends: [
                Backend(name: "a", region: "r1", engine: .vllm, url: url, models: ["m-a"]),
                Backend(name: "b", region: "r1", engine: .vllm, url: url, models: ["m-b"]),
                Backend(name: "claude", region: "r1", engine: .anthropic, url: url, models: ["c"]),
            ],
            models: [
                ModelGroup(
                    name: "chat",
                    deployments: [Deployment(backend: "a", model: "m-a"), Deployment(backend: "b", model: "m-b")]
                ),
                ModelGroup(name: "solo", deployments: [Deployment(backend: "a", model: "m-a")]),
                ModelGroup(
                    name: "mixed",
                    deployments: [Deployment(backend: "claude", model: "c"), Deployment(backend: "b", model: "m-b")]
                ),
            ],
            routing: RoutingSettings(
                policy: policy,
                retries: RetrySettings(attempts: attempts, backoffBaseMs: 100, backoffMaxMs: 1000)
            )
        )
    }

    static func router(policy: PolicyKind = .roundRobin, attempts: Int = 2) -> Router {
        let topology = topology(policy: policy, attempts: attempts)
        return Router(topology: topology, node: "n1", configuration: RoutingConfiguration(topology: topology))
    }

    static func request(_ n: Int, model: ModelName = "chat", operation: Operation = .chatCompletions) -> RequestProfile
    {
        RequestProfile(id: RequestID("r\(n)"), model: model, operation: operation)
    }

    static func plan(_ action: RouteAction) -> AttemptPlan? {
        switch action {
        case .send(let plan), .retry(let plan, _): plan
        default: nil
        }
    }

    @Test("a node prefers deployments in its own region while one of them is usable")
    func localFirst() {
        let url = UpstreamURL(tls: false, host: "127.0.0.1", port: 9000)
        let topology = Topology(
            mesh: Mesh(name: "t"),
            regions: [Region(name: "east"), Region(name: "west")],
            nodes: [Node(name: "n-east", region: "east", listen: HostPort(host: "127.0.0.1", port: 1))],
            backends: [
                Backend(name: "w1", region: "west", engine: .vllm, url: url, models: ["m"]),
                Backend(name: "e1", region: "east", engine: .vllm, url: url, models: ["m"]),
                Backend(name: "w2", region: "west", engine: .vllm, url: url, models: ["m"]),
            ],
            models: [
                ModelGroup(
                    name: "chat",
                    deployments: ["w1", "e1", "w2"].map { Deployment(backend: BackendID($0), model: "m") }
                )
            ],
            routing: RoutingSettings(policy: .roundRobin, retries: RetrySettings(attempts: 0))
        )
        var router = Router(topology: topology, node: "n-east", configuration: RoutingConfiguration(topology: topology))
        var rng = Xoshiro256(seed: 1)
        for n in 0..<5 {
            let plan = Self.plan(router.requestArrived(Self.request(n), now: .zero, rng: &rng))!
            #expect(plan.deployment.backend == "e1")
            router.completed(plan.attempt, usage: nil, now: .zero)
        }
        // East unreachable: the request fails over west, and the next ones go west while east cools down.
        let plan = Self.plan(router.requestArrived(Self.request(10), now: .zero, rng: &rng))!
        let next = Self.plan(router.failed(plan.attempt, .connect("refused"), now: .zero, rng: &rng))!
        #expect(next.region == "west")
        router.completed(next.attempt, usage: nil, now: .zero)
        let later = Self.plan(router.requestArrived(Self.request(11), now: Instant.zero + .seconds(1), rng: &rng))!
        #expect(later.region == "west")
    }

    @Test("an unknown model is rejected with the list of known models")
    func unknownModel() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 1)
        let action = router.requestArrived(Self.request(1, model: "gpt-9"), now: .zero, rng: &rng)
        #expect(action == .reject(.unknownModel("gpt-9", known: ["chat", "mixed", "solo"]), retryAfter: nil))
        #expect(router.activeRequests == 0)
    }

    @Test("each deployment rewrites the model name to the backend's")
    func deploymentRewritesModel() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 1)
        let first = Self.plan(router.requestArrived(Self.request(1), now: .zero, rng: &rng))!
        let second = Self.plan(router.requestArrived(Self.request(2), now: .zero, rng: &rng))!
        #expect(
            [first.deployment, second.deployment] == [
                Deployment(backend: "a", model: "m-a"), Deployment(backend: "b", model: "m-b"),
            ]
        )
        #expect(first.decision.reason == "initial")
        #expect(first.attemptNumber == 1)
    }

    @Test("embeddings and completions skip Anthropic deployments; none left is a 400-class rejection")
    func operationFilter() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 1)
        for n in 0..<10 {
            let plan = Self.plan(
                router.requestArrived(Self.request(n, model: "mixed", operation: .embeddings), now: .zero, rng: &rng)
            )
            #expect(plan?.deployment.backend == "b")
        }
        let onlyAnthropic = Topology(
            mesh: Mesh(name: "t"),
            regions: [Region(name: "r1")],
            nodes: Self.topology().nodes,
            backends: [Self.topology().backends[2]],
            models: [ModelGroup(name: "c", deployments: [Deployment(backend: "claude", model: "c")])]
        )
        var anthropic = Router(
            topology: onlyAnthropic,
            node: "n1",
            configuration: RoutingConfiguration(topology: onlyAnthropic)
        )
        let action = anthropic.requestArrived(
            Self.request(1, model: "c", operation: .embeddings),
            now: .zero,
            rng: &rng
        )
        #expect(action == .reject(.unsupportedOperation("c", .embeddings), retryAfter: nil))
    }

    @Test("the ledger counts in-flight requests from pick to completion")
    func ledger() {
        var router = Self.router(policy: .leastRequest)
        var rng = Xoshiro256(seed: 4)
        let plans = (0..<6).map { Self.plan(router.requestArrived(Self.request($0), now: .zero, rng: &rng))! }
        #expect(router.inFlight(on: "a") == 3)
        #expect(router.inFlight(on: "b") == 3)
        for plan in plans { router.completed(plan.attempt, usage: nil, now: .zero) }
        #expect(router.inFlight(on: "a") == 0)
        #expect(router.activeRequests == 0)
    }

    @Test("a retryable failure retries the same deployment with backoff, then fails over, then goes to the catch-all")
    func waterfall() {
        var router = Self.router(attempts: 2)
        var rng = Xoshiro256(seed: 8)
        let now = Instant.zero
        var plan = Self.plan(router.requestArrived(Self.request(1), now: now, rng: &rng))!
        let first = plan.deployment
        var sequence: [String] = []
        let failure = UpstreamFailure.status(503, retryAfter: nil, body: .init(message: "overloaded"))
        while true {
            let action = router.failed(plan.attempt, failure, now: now, rng: &rng)
            switch action {
            case .retry(let next, let delay):
                #expect(next.deployment == plan.deployment)
                #expect(delay <= .milliseconds(1000))
                sequence.append("retry")
                plan = next
            case .send(let next):
                #expect(next.deployment != first)
                sequence.append("failover")
                plan = next
            case .catchAll(let answer):
                #expect(answer.mode == .busy)
                #expect(answer.reason.contains("backend '\(plan.deployment.backend)' failed (HTTP 503: overloaded)"))
                sequence.append("catch-all")
            case .reject, .hold:
                Issue.record("unexpected \(action)")
            }
            if sequence.last == "catch-all" || sequence.count > 10 { break }
        }
        #expect(sequence == ["retry", "retry", "failover", "retry", "retry", "catch-all"])
        #expect(plan.attemptNumber == 6)
        #expect(router.activeRequests == 0)
        #expect(router.inFlight(on: "a") == 0 && router.inFlight(on: "b") == 0)
    }

    @Test(
        "client errors are never retried on the same deployment: the request's own pass through, the rest end in the catch-all"
    )
    func clientErrorsNotRetried() {
        for status in [400, 401, 403, 404, 413, 422] {
            var router = Self.router()
            var rng = Xoshiro256(seed: 2)
            let plan = Self.plan(router.requestArrived(Self.request(1, model: "solo"), now: .zero, rng: &rng))!
            let failure = UpstreamFailure.status(status, retryAfter: nil, body: .init(message: "no"))
            let action = router.failed(plan.attempt, failure, now: .zero, rng: &rng)
            if [400, 413, 422].contains(status) {
                #expect(
                    action
                        == .reject(
                            .upstream(failure, backend: plan.deployment.backend, retriesSpent: false),
                            retryAfter: nil
                        )
                )
            } else {
                // The provider refused the gateway (its key, its model list): not the client's fault.
                guard case .catchAll(let answer) = action else {
                    Issue.record("HTTP \(status): expected the catch-all, got \(action)")
                    continue
                }
                #expect(answer.reason.contains("HTTP \(status)"))
            }
            #expect(router.activeRequests == 0)
        }
    }

    @Test("a deployment's own refusal (401/403/404) fails over; a bad request (400/413/422) does not")
    func failoverOnDeploymentErrors() {
        for (status, failsOver) in [(401, true), (403, true), (404, true), (400, false), (413, false), (422, false)] {
            var router = Self.router()
            var rng = Xoshiro256(seed: 2)
            let plan = Self.plan(router.requestArrived(Self.request(1), now: .zero, rng: &rng))!
            let failure = UpstreamFailure.status(status, retryAfter: nil, body: .init(message: "no"))
            let action = router.failed(plan.attempt, failure, now: .zero, rng: &rng)
            if failsOver {
                #expect(
                    Self.plan(action)?.deployment.backend == (plan.deployment.backend == "a" ? "b" : "a"),
                    "\(status)"
                )
            } else {
                #expect(Self.plan(action) == nil, "\(status)")
            }
        }
    }

    @Test("a response cut before commit is not retried on its deployment but fails over")
    func cutBeforeCommitFailsOver() {
        var router = Self.router()
        var rng = Xoshiro256(seed: 2)
        let plan = Self.plan(router.requestArrived(Self.request(1), now: .zero, rng: &rng))!
        let action = router.failed(plan.attempt, .reset(responseStarted: true), now: .zero, rng: &rng)
        guard case .send(let next) = action else {
            Issue.record("expected an immediate failover, got \(action)")
            return
        }
        #expect(next.deployment != plan.deployment)
        #expect(next.decision.reason == "reset")
    }

    @Test("retry-after is honoured as the backoff floor and a wait past the deadline is not taken")
    func retryAfter() {
        var router = Self.router(attempts: 1)
        var rng = Xoshiro256(seed: 2)
        let plan = Self.plan(router.requestArrived(Self.request(1, model: "solo"), now: .zero, rng: &rng))!
        let failure = UpstreamFailure.status(429, retryAfter: .seconds(5), body: .init(message: "slow down"))
        guard case .retry(_, let delay) = router.failed(plan.attempt, failure, now: .zero, rng: &rng) else {
            Issue.record("expected a retry")
            return
        }
        #expect(delay == .seconds(5))

        var late = Self.router(attempts: 1)
        let latePlan = Self.plan(late.requestArrived(Self.request(2, model: "solo"), now: .zero, rng: &rng))!
        let tooLate = UpstreamFailure.status(429, retryAfter: .seconds(59), body: .init(message: "later"))
        let action = late.failed(latePlan.attempt, tooLate, now: Instant.zero + .seconds(599), rng: &rng)
        guard case .catchAll(let answer) = action else {
            Issue.record("expected the catch-all, got \(action)")
            return
        }
        #expect(answer.retryAfter == .seconds(59))
    }

    @Test("an unreachable backend is passed over until a call succeeds or its cooldown runs out")
    func passiveHealth() {
        var router = Self.router(attempts: 0)
        var rng = Xoshiro256(seed: 3)
        let t0 = Instant(nanoseconds: 10)
        let plan = Self.plan(router.requestArrived(Self.request(1, model: "solo"), now: .zero, rng: &rng))!
        #expect(router.isUsable("a", now: .zero))
        _ = router.failed(plan.attempt, .connect("refused"), now: t0, rng: &rng)
        #expect(!router.isUsable("a", now: t0 + .seconds(29)))
        #expect(router.isUsable("a", now: t0 + .seconds(30)))
        // While `a` cools down, `chat` goes to `b` only; `solo`, which has nothing else, still tries `a`.
        for n in 2..<12 {
            let next = Self.plan(router.requestArrived(Self.request(n), now: t0 + .seconds(1), rng: &rng))!
            #expect(next.deployment.backend == "b")
        }
        let only = Self.plan(router.requestArrived(Self.request(20, model: "solo"), now: t0 + .seconds(1), rng: &rng))!
        #expect(only.deployment.backend == "a")
        router.completed(only.attempt, usage: nil, now: t0 + .seconds(2))
        #expect(router.isUsable("a", now: t0 + .seconds(2)))
    }

    @Test("an unreachable, silent or paused deployment is not waited for while another can serve")
    func failoverFirst() {
        let failures: [UpstreamFailure] = [
            .connect("refused"), .timeout(.firstToken),
            .status(429, retryAfter: .seconds(30), body: .init(message: "later")),
        ]
        for failure in failures {
            var router = Self.router(attempts: 2)
            var rng = Xoshiro256(seed: 6)
            let plan = Self.plan(router.requestArrived(Self.request(1), now: .zero, rng: &rng))!
            guard case .send(let next) = router.failed(plan.attempt, failure, now: .zero, rng: &rng) else {
                Issue.record("\(failure): expected an immediate failover")
                continue
            }
            #expect(next.deployment != plan.deployment, "\(failure)")
            // The last deployment standing is retried after a backoff (at least the retry-after).
            guard case .retry(let again, let delay) = router.failed(next.attempt, failure, now: .zero, rng: &rng) else {
                Issue.record("\(failure): expected a retry of the last deployment")
                continue
            }
            #expect(again.deployment == next.deployment)
            #expect(delay >= (failure.retryAfter ?? .zero))
        }
    }

    @Test("whatever the outcomes, every request ends with the ledger empty (seeded random walk)")
    func invariantsUnderRandomOutcomes() {
        var router = Self.router(policy: .powerOfTwo, attempts: 1)
        var rng = Xoshiro256(seed: 2024)
        var live: [AttemptPlan] = []
        var now = Instant.zero
        let failures: [UpstreamFailure] = [
            .connect("refused"), .reset(responseStarted: false), .timeout(.firstToken),
            .status(500, retryAfter: nil, body: .init(message: "x")),
            .status(400, retryAfter: nil, body: .init(message: "x")),
            .malformed("bad"),
        ]
        for n in 0..<5_000 {
            now = now + .milliseconds(1)
            if Int.random(in: 0..<3, using: &rng) == 0 || live.isEmpty {
                if let plan = Self.plan(router.requestArrived(Self.request(n), now: now, rng: &rng)) {
                    live.append(plan)
                }
            } else {
                let plan = live.remove(at: Int.random(in: 0..<live.count, using: &rng))
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: router.completed(plan.attempt, usage: nil, now: now)
                case 1: router.abandoned(plan.attempt, now: now)
                default:
                    let failure = failures[Int.random(in: 0..<failures.count, using: &rng)]
                    if let next = Self.plan(router.failed(plan.attempt, failure, now: now, rng: &rng)) {
                        live.append(next)
                    }
                }
            }
            #expect(router.inFlight(on: "a") + router.inFlight(on: "b") == live.count)
        }
        for plan in live { router.completed(plan.attempt, usage: nil, now: now) }
        #expect(router.activeRequests == 0)
        #expect(router.inFlight(on: "a") == 0 && router.inFlight(on: "b") == 0)
    }
}
