import IsobarConfig
import IsobarModel
import Testing

@Suite struct TopologyKeysTests {
    @Test func keysAndTeamsLoadWithTheirLimitsAndSecretsBecomeHashes() throws {
        let yaml =
            Fixture.minimal + """
                keys:
                  master: {secret_env: MASTER}
                  teams:
                    - {name: search, models: [chat], rpm: 600, tpm: 200000, max_concurrent: 20,
                       budget: {usd: 50, period: day}}
                  virtual_keys:
                    - {id: search-prod, team: search, secret_file: keys/search, rpm: 60}
                    - {id: ops, hash: "sha256:\(String(repeating: "AB", count: 32))", budget: {usd: 1.5, period: month}}
                redis: {url: "redis://:pw@10.0.0.5:6380/2", on_failure: closed, timeout_ms: 20}
                """
        let topology = try Fixture.load(
            yaml,
            file: "/etc/isobar/t.yaml",
            environment: ["MASTER": "master-secret"],
            files: ["/etc/isobar/keys/search": "team-secret-1\n"]
        )
        let keys = try #require(topology.keys)
        #expect(keys.master.description == "sha256:\(Self.sha256("master-secret"))")
        #expect(
            keys.teams == [
                Team(
                    name: "search",
                    allowance: Allowance(
                        models: ["chat"],
                        requestsPerMinute: 600,
                        tokensPerMinute: 200_000,
                        maxConcurrent: 20,
                        budget: Budget(usd: 50, period: .day)
                    )
                )
            ]
        )
        #expect(keys.keys.map(\.id) == ["search-prod", "ops"])
        #expect(keys.keys[0].team == "search")
        #expect(keys.keys[0].hash.description == "sha256:\(Self.sha256("team-secret-1"))")
        #expect(keys.keys[0].allowance == Allowance(requestsPerMinute: 60))
        #expect(keys.keys[1].hash.description == "sha256:" + String(repeating: "ab", count: 32))
        #expect(keys.keys[1].allowance.budget == Budget(usd: 1.5, period: .month))
        let redis = try #require(topology.redis)
        #expect(redis.host == "10.0.0.5" && redis.port == 6380 && redis.database == 2)
        #expect(redis.password == Secret("pw") && redis.onFailure == .closed && redis.timeoutMs == 20)
    }

    @Test func badKeysLimitsAndBudgetsAreLocated() {
        let yaml =
            Fixture.minimal + """
                keys:
                  teams:
                    - {name: a, rpm: 0, tpm: 99999999999, models: [chta]}
                    - {name: a}
                  virtual_keys:
                    - {id: k1, team: b, hash: "sha256:abc"}
                    - {id: k2, secret_env: K, hash: "sha256:\(String(repeating: "0", count: 64))"}
                    - {id: k3, secret_env: UNSET, budget: {usd: -1, period: week}, max_concurrent: 0}
                    - {id: k4}
                    - {id: k5, secret_env: K}
                    - {id: k6, secret_env: K}
                """
        #expect(
            Fixture.problems(yaml, environment: ["K": "same"]) == [
                "test.yaml:9: keys.master: the master key opens the admin endpoints: set master.secret_env, "
                    + "master.secret_file or master.hash",
                "test.yaml:11: keys.teams[0].rpm: must be from 1 to 10000000 requests per minute, got 0",
                "test.yaml:11: keys.teams[0].tpm: must be from 1 to 10000000000 tokens per minute, got 99999999999",
                "test.yaml:11: keys.teams[0].models[0]: unknown model 'chta' (did you mean 'chat'?)",
                "test.yaml:12: keys.teams[1].name: duplicate team 'a' (first defined on line 11)",
                "test.yaml:14: keys.virtual_keys[0].team: unknown team 'b' (did you mean 'a'?)",
                "test.yaml:14: keys.virtual_keys[0].hash: expected sha256: and 64 hexadecimal digits "
                    + "(the output of `printf %s \"$KEY\" | sha256sum`)",
                "test.yaml:15: keys.virtual_keys[1].secret_env: set only one of hash, secret_env or secret_file",
                "test.yaml:16: keys.virtual_keys[2].max_concurrent: must be from 1 to 1000000 requests, got 0",
                "test.yaml:16: keys.virtual_keys[2].budget.usd: must be above 0 and at most 1000000000 US dollars, "
                    + "got -1",
                "test.yaml:16: keys.virtual_keys[2].budget.period: unknown budget period 'week'; use one of day, month",
                "test.yaml:16: keys.virtual_keys[2].secret_env: environment variable UNSET is not set",
                "test.yaml:17: keys.virtual_keys[3]: the key needs one of hash, secret_env or secret_file",
                "test.yaml:19: keys.virtual_keys[5]: key 'k6' has the same secret as key 'k5'; every key needs its own",
            ]
        )
    }

    @Test func redisURLsThatCannotBeParsedSayWhy() {
        let cases: [(String, String)] = [
            ("rediss://cache:6379", "TLS (rediss://) is not supported"),
            ("http://cache:6379", "expected a URL of the form redis://"),
            ("redis://cache:99999", "expected redis://host[:port][/database]: port must be a number from 0 to 65535"),
            ("redis://cache/16", "the database must be a number from 0 to 15, got '16'"),
            ("redis://user@cache", "credentials in the URL must be user:password or :password"),
            ("redis://", "expected redis://host[:port][/database]: empty host"),
        ]
        for (url, message) in cases {
            let problems = Fixture.problems(Fixture.minimal + "redis: {url: \"\(url)\"}\n")
            #expect(
                problems.count == 1 && problems[0].hasPrefix("test.yaml:9: redis.url: \(message)"),
                "\(url): \(problems)"
            )
        }
        let good = try? Fixture.load(Fixture.minimal + "redis: {url: \"redis://[::1]\"}\n")
        #expect(good?.redis?.host == "::1" && good?.redis?.port == 6379 && good?.redis?.onFailure == .local)
    }

    @Test func responseCachesAreSetPerModel() throws {
        let yaml = Fixture.minimal.replacingOccurrences(
            of: "deployments: [{backend: b1, model: m1}]}",
            with: "deployments: [{backend: b1, model: m1}], cache: {enabled: true, ttl_s: 60}}"
        )
        let topology = try Fixture.load(yaml + "limits: {response_cache_max_bytes: 1048576}\n")
        #expect(topology.models[0].cache == ResponseCacheSettings(ttlSeconds: 60, force: false))
        #expect(topology.limits.responseCacheMaxBytes == 1_048_576)
        let bad = Fixture.minimal.replacingOccurrences(
            of: "deployments: [{backend: b1, model: m1}]}",
            with: "deployments: [{backend: b1, model: m1}], cache: {ttl_s: 0, force: yes}}"
        )
        #expect(
            Fixture.problems(bad) == [
                "test.yaml:8: models[0].cache.ttl_s: must be above 0 and at most 2592000 seconds (30 days), got 0",
                "test.yaml:8: models[0].cache.enabled: required key is missing",
            ]
        )
        // Shared through Redis: only with a redis: section, and only the stores there are.
        func cache(_ settings: String) -> String {
            Fixture.minimal.replacingOccurrences(
                of: "deployments: [{backend: b1, model: m1}]}",
                with: "deployments: [{backend: b1, model: m1}], cache: {enabled: true, \(settings)}}"
            )
        }
        let shared = try Fixture.load(cache("store: redis") + "redis: {url: \"redis://cache:6380\"}\n")
        #expect(shared.models[0].cache?.store == .redis)
        #expect(
            Fixture.problems(cache("store: redis")) == [
                "test.yaml:8: models[0].cache.store: a shared response cache needs the redis: section"
            ]
        )
        #expect(
            Fixture.problems(cache("store: redi")) == [
                "test.yaml:8: models[0].cache.store: unknown cache store 'redi' (did you mean 'redis'?); use one of memory, redis"
            ]
        )
    }

    /// `printf %s SECRET | sha256sum`, computed outside the code under test.
    static func sha256(_ text: String) -> String {
        switch text {
        case "master-secret": "0a8363b3bad871b85ae52da4cc33db4a62c245c48e67271274edf5f93037fb5c"
        default: "f74103e2f36ae1720566edd8f29f1fa5d54000dcb9f35b047ee7a529bbe1d9bc"
        }
    }
}
