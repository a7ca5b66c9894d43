import Crypto
import IsobarModel

extension TopologyValidator {
    // MARK: - Virtual keys and teams

    /// The most a per-minute or concurrency limit may be: anything larger is a typo, not a limit.
    static let limitCeilings = (rpm: 10_000_000, tpm: 10_000_000_000, concurrent: 1_000_000, usd: 1e9)

    func checkKeys(models: [ModelName]) -> KeySettings? {
        guard let file = file.keys else { return nil }
        let master = file.master.flatMap { keyHash($0, what: "master key") }
        if file.master == nil {
            log.missing(
                file.location.key("master"),
                "the master key opens the admin endpoints: set master.secret_env, master.secret_file or master.hash"
            )
        }
        let modelNames = models.map(\.rawValue)
        var teams: [Team] = []
        var teamNames = NameTable(kind: "team", log: log, identifier: false)
        for team in file.teams?.value ?? [] {
            let allowance = checkAllowance(team.allowance, models: modelNames)
            guard let name = teamNames.claim(team.name, in: team.location) else { continue }
            teams.append(Team(name: name, allowance: allowance))
        }
        var keys: [VirtualKey] = []
        var ids = NameTable(kind: "key id", log: log, identifier: false)
        var owners: [KeyHash: String] = master.map { [$0: "the master key"] } ?? [:]
        for key in file.virtualKeys?.value ?? [] {
            let allowance = checkAllowance(key.allowance, models: modelNames)
            let team = key.team.flatMap {
                reference($0, "team", in: key.location, kind: "team", among: teams.map(\.name))
            }
            let hash = keyHash(key.credential, what: "key")
            guard let id = ids.claim(key.id, in: key.location, key: "id") else { continue }
            guard let hash, key.team == nil || team != nil else { continue }
            if let owner = owners[hash] {
                log.error(key.location, "key '\(id)' has the same secret as \(owner); every key needs its own")
                continue
            }
            owners[hash] = "key '\(id)'"
            keys.append(VirtualKey(id: id, team: team, hash: hash, allowance: allowance))
        }
        guard let master else { return nil }
        return KeySettings(master: master, teams: teams, keys: keys)
    }

    /// The hash of a key: its stored `hash`, or the SHA-256 of the secret its variable or file holds.
    private func keyHash(_ credential: CredentialFile, what: String) -> KeyHash? {
        let given = [credential.hash, credential.secretEnv, credential.secretFile].compactMap { $0 }
        guard given.count == 1 else {
            let message =
                given.isEmpty
                ? "the \(what) needs one of hash, secret_env or secret_file"
                : "set only one of hash, secret_env or secret_file"
            log.error(given.dropFirst().first?.location ?? credential.location, message)
            return nil
        }
        if let text = credential.hash {
            guard let hash = KeyHash(text: text.value) else {
                log.error(
                    text.location,
                    "expected sha256: and 64 hexadecimal digits (the output of `printf %s \"$KEY\" | sha256sum`)"
                )
                return nil
            }
            return hash
        }
        let value =
            if let variable = credential.secretEnv {
                secret(fromEnvironment: variable)
            } else {
                credential.secretFile.flatMap { secret(fromFile: $0, what: what) }
            }
        return value.flatMap { KeyHash(bytes: Array(SHA256.hash(data: Array($0.value.utf8)))) }
    }

    private func checkAllowance(_ file: AllowanceFile, models: [String]) -> Allowance {
        let ceilings = Self.limitCeilings
        var allowance = Allowance(
            requestsPerMinute: integer(file.rpm, in: 1...ceilings.rpm, units: " requests per minute"),
            tokensPerMinute: integer(file.tpm, in: 1...ceilings.tpm, units: " tokens per minute"),
            maxConcurrent: integer(file.maxConcurrent, in: 1...ceilings.concurrent, units: " requests")
        )
        if let list = file.models {
            var seen = Set<String>()
            allowance.models = list.value.compactMap { model in
                guard reference(model, "models", in: list.location, kind: "model", among: models) != nil else {
                    return nil
                }
                guard seen.insert(model.value).inserted else {
                    log.error(model.location, "duplicate model '\(model.value)'")
                    return nil
                }
                return ModelName(model.value)
            }
        }
        if let budget = file.budget {
            let usd = required(budget.number("usd"), "usd", in: budget.location)
            if let usd, !(usd.value > 0 && usd.value <= ceilings.usd) {
                log.error(
                    usd.location,
                    "must be above 0 and at most \(format(ceilings.usd)) US dollars, got \(format(usd.value))"
                )
            }
            let period = required(budget.string("period"), "period", in: budget.location).flatMap {
                choice($0, "budget period") as Budget.Period?
            }
            if let usd, let period, usd.value > 0, usd.value <= ceilings.usd {
                allowance.budget = Budget(usd: usd.value, period: period)
            }
        }
        return allowance
    }

    // MARK: - Redis

    func checkRedis() -> RedisSettings? {
        guard let file = file.redis else { return nil }
        guard let url = required(file.url, "url", in: file.location) else { return nil }
        guard var settings = Self.parseRedisURL(url.value, log: { log.error(url.location, $0) }) else { return nil }
        if let variable = file.passwordEnv {
            if settings.password != nil {
                log.error(variable.location, "the url already holds a password; give it in one place")
            }
            settings.password = secret(fromEnvironment: variable)
        }
        if let mode = file.onFailure {
            settings.onFailure = choice(mode, "failure mode") ?? settings.onFailure
        }
        if let timeout = file.timeoutMs {
            if timeout.value > 0, timeout.value <= 10_000 {
                settings.timeoutMs = timeout.value
            } else {
                log.error(
                    timeout.location,
                    "must be above 0 and at most 10000 milliseconds, got \(format(timeout.value))"
                )
            }
        }
        settings.pool = integer(file.pool, in: 1...64, units: " connections") ?? settings.pool
        return settings
    }

    /// Parses `redis://[[user]:password@]host[:port][/database]`; logs what is wrong through `log`.
    static func parseRedisURL(_ text: String, log: (String) -> Void) -> RedisSettings? {
        guard text.hasPrefix("redis://") else {
            if text.hasPrefix("rediss://") {
                log("TLS (rediss://) is not supported; reach Redis over a private network or a local TLS tunnel")
            } else {
                log("expected a URL of the form redis://[:password@]host[:port][/database], got '\(text)'")
            }
            return nil
        }
        var rest = Substring(text.dropFirst(8))
        var username: String?
        var password: Secret?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                username = credentials[..<colon].isEmpty ? nil : String(credentials[..<colon])
                password = Secret(String(credentials[credentials.index(after: colon)...]))
            } else {
                log("credentials in the URL must be user:password or :password")
                return nil
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), (0...15).contains(number) else {
                    log("the database must be a number from 0 to 15, got '\(path)'")
                    return nil
                }
                database = number
            }
        }
        let hasPort = rest.hasPrefix("[") ? rest.contains("]:") : rest.contains(":")
        switch HostPort.parse(hasPort ? String(rest) : "\(rest):6379") {
        case .failure(let error):
            log("expected redis://host[:port][/database]: \(error.message)")
            return nil
        case .success(let address) where address.port == 0:
            log("the port must be from 1 to 65535")
            return nil
        case .success(let address):
            return RedisSettings(
                host: address.host,
                port: address.port,
                database: database,
                username: username,
                password: password
            )
        }
    }
}
