import IsobarModel

/// `workload:`: who sends requests, to which model, when and how long.
extension ScenarioValidator {
    /// The arrival processes `arrivals.process` names.
    enum ArrivalProcess: String, CaseIterable {
        case poisson, gamma, diurnal
    }

    func checkWorkloads(_ fleet: Fleet?) -> [Workload] {
        guard let list = file.workload else {
            log.error(file.location, "workload is required: at least one {region, model, arrivals or trace}")
            return []
        }
        if list.value.isEmpty { log.error(list.location, "at least one workload is needed") }
        return list.value.compactMap { checkWorkload($0, fleet) }
    }

    private func checkWorkload(_ workload: WorkloadFile, _ fleet: Fleet?) -> Workload? {
        let before = log.count
        let region = clientRegion(workload, fleet)
        let model = requestedModel(workload, fleet)
        let source = checkSource(workload)
        guard log.count == before, let region, let model, let source else { return nil }
        return Workload(region: region, model: model, source: source, stream: workload.stream?.value ?? true)
    }

    /// The region the clients are in: it exists and has a gateway node for them to call.
    private func clientRegion(_ workload: WorkloadFile, _ fleet: Fleet?) -> RegionID? {
        guard let topology = fleet?.topology else {
            return required(workload.region, "region", in: workload.location).map { RegionID($0.value) }
        }
        let names = topology.regions.map(\.name.rawValue)
        guard let name = reference(workload.region, "region", in: workload.location, kind: "region", among: names)
        else { return nil }
        let region = RegionID(name)
        if !topology.nodes.contains(where: { $0.region == region }), let location = workload.region?.location {
            log.error(location, "region '\(name)' has no gateway node for its clients to call; add a node in it")
            return nil
        }
        return region
    }

    private func requestedModel(_ workload: WorkloadFile, _ fleet: Fleet?) -> ModelName? {
        guard let topology = fleet?.topology else {
            return required(workload.model, "model", in: workload.location).map { ModelName($0.value) }
        }
        let names = topology.models.map(\.name.rawValue)
        return reference(workload.model, "model", in: workload.location, kind: "model", among: names)
            .map(ModelName.init)
    }

    // MARK: - Sources

    private func checkSource(_ workload: WorkloadFile) -> Workload.Source? {
        if let trace = workload.trace {
            let synthetic: [(String, Location?)] = [
                ("arrivals", workload.arrivals?.location), ("prompt_tokens", workload.promptTokens?.location),
                ("output_tokens", workload.outputTokens?.location), ("lengths", workload.lengths?.location),
            ]
            for case (let key, let location?) in synthetic {
                log.error(location, "a replayed trace brings its own arrivals and lengths; remove \(key) or trace")
            }
            return checkReplay(trace).map { .trace($0) }
        }
        guard let arrivals = workload.arrivals else {
            log.missing(
                workload.location.key("arrivals"),
                "required key is missing: give arrivals (with prompt_tokens and output_tokens, or lengths), "
                    + "or a trace to replay"
            )
            return nil
        }
        let process = checkArrivals(arrivals)
        let lengths = checkLengths(workload)
        guard let process, let lengths else { return nil }
        return .synthetic(arrivals: process, lengths: lengths)
    }

    private func checkArrivals(_ arrivals: ArrivalsFile) -> Arrivals? {
        let rate = positive(required(arrivals.rate, "rate_rps", in: arrivals.location))
        let kind = arrivals.process.map { choice($0, "process") as ArrivalProcess? } ?? .poisson
        let only: [(Sourced<Double>?, ArrivalProcess)] = [
            (arrivals.cv, .gamma), (arrivals.periodSeconds, .diurnal), (arrivals.amplitude, .diurnal),
        ]
        for case (let value?, let owner) in only where kind != nil && kind != owner {
            let key = value.location.path.split(separator: ".").last ?? ""
            log.error(value.location, "\(key) is only for process: \(owner.rawValue)")
        }
        let process: Arrivals.Process?
        switch kind {
        case .poisson: process = .poisson
        case .gamma:
            process = positive(required(arrivals.cv, "cv", in: arrivals.location)).map { .gamma(cv: $0) }
        case .diurnal:
            let period = positive(required(arrivals.periodSeconds, "period_s", in: arrivals.location))
            let amplitude = fraction(required(arrivals.amplitude, "amplitude", in: arrivals.location))
            process = period.flatMap { period in amplitude.map { .diurnal(periodSeconds: period, amplitude: $0) } }
        case nil: process = nil
        }
        guard let rate, let process else { return nil }
        return Arrivals(rate: rate, process: process)
    }

    /// An amplitude: from 0 to 1, so that the rate never goes below zero.
    private func fraction(_ value: Sourced<Double>?) -> Double? {
        guard let value else { return nil }
        guard (0...1).contains(value.value) else {
            log.error(value.location, "must be from 0 to 1 (the rate swings between (1 ± amplitude) × rate_rps)")
            return nil
        }
        return value.value
    }

    private func checkLengths(_ workload: WorkloadFile) -> Lengths? {
        if let lengths = workload.lengths {
            for case let distribution? in [workload.promptTokens, workload.outputTokens] {
                log.error(distribution.location, "lengths draws prompt and output lengths together; remove this key")
            }
            return checkLengthPairs(lengths).map { .pairs($0) }
        }
        let prompt = distribution(workload.promptTokens, "prompt_tokens", in: workload.location)
        let output = distribution(workload.outputTokens, "output_tokens", in: workload.location)
        guard let prompt, let output else { return nil }
        return .independent(prompt: prompt, output: output)
    }

    // MARK: - Trace files

    private func checkLengthPairs(_ lengths: LengthsFile) -> TraceFile? {
        let format = lengths.format.map { choice($0, "format") as TraceFile.Format? } ?? .lengths
        let path = required(lengths.trace, "trace", in: lengths.location).flatMap { existingFile($0, "trace file") }
        guard let format, let path else { return nil }
        return TraceFile(format: format, path: path)
    }

    private func checkReplay(_ trace: ReplayFile) -> TraceFile? {
        let format = required(trace.format, "format", in: trace.location).flatMap {
            choice($0, "format") as TraceFile.Format?
        }
        let path = required(trace.file, "file", in: trace.location).flatMap { existingFile($0, "trace file") }
        let timeScale = positive(trace.timeScale) ?? 1
        let hashBlockTokens = integer(trace.hashBlockTokens, in: 1...Int.max) ?? 512
        if let tokens = trace.hashBlockTokens, let format, format != .mooncake {
            log.error(tokens.location, "hash_block_tokens is only for format: mooncake (the others have no hash ids)")
        }
        guard let format, let path else { return nil }
        return TraceFile(format: format, path: path, timeScale: timeScale, hashBlockTokens: hashBlockTokens)
    }
}
