import Foundation
import IsobarEngineModel
import IsobarModel

/// Fits an engine profile's step-time coefficients to a real run, and says how faithful the fit is.
///
/// The run's own scheduler settings (batch cap, token budget, KV blocks) are taken as measured. The five
/// roofline coefficients are found by Nelder–Mead in log space, minimising the squared log-ratios of
/// simulated to measured mean and p90 TTFT, TPOT and E2E over half the requests (every other request by
/// arrival). Every evaluation replays the *whole* run, so the engine sees the load it really had; the
/// other half's latencies are held out and reported as the validation fidelity.
public enum Calibrator {
    /// Latency statistics of a set of requests.
    public struct Statistics: Sendable, Equatable {
        public var ttftMean = 0.0
        public var ttftP90 = 0.0
        public var tpotMean = 0.0
        public var tpotP90 = 0.0
        public var e2eMean = 0.0
        public var e2eP90 = 0.0

        init(ttft: [Double], tpot: [Double], e2e: [Double]) {
            func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
            ttftMean = mean(ttft)
            ttftP90 = ttft.nearestRank(0.9)
            tpotMean = mean(tpot)
            tpotP90 = tpot.nearestRank(0.9)
            e2eMean = mean(e2e)
            e2eP90 = e2e.nearestRank(0.9)
        }

        /// Relative errors of `self` (simulated) against `measured`, in the same fields.
        public func errors(against measured: Statistics) -> Statistics {
            func e(_ a: Double, _ b: Double) -> Double { b == 0 ? 0 : a / b - 1 }
            var out = self
            out.ttftMean = e(ttftMean, measured.ttftMean)
            out.ttftP90 = e(ttftP90, measured.ttftP90)
            out.tpotMean = e(tpotMean, measured.tpotMean)
            out.tpotP90 = e(tpotP90, measured.tpotP90)
            out.e2eMean = e(e2eMean, measured.e2eMean)
            out.e2eP90 = e(e2eP90, measured.e2eP90)
            return out
        }

        var logRatios: [Double] { [ttftMean, ttftP90, tpotMean, tpotP90, e2eMean, e2eP90] }
    }

    /// The fitted profile and its fidelity on both halves of the run.
    public struct Result: Sendable, Equatable {
        public var profile: EngineProfile
        /// Measured and simulated statistics of the half the fit saw, and of the held-out half.
        public var calibration: (measured: Statistics, simulated: Statistics)
        public var validation: (measured: Statistics, simulated: Statistics)
        public var evaluations: Int

        public static func == (lhs: Result, rhs: Result) -> Bool {
            lhs.profile == rhs.profile && lhs.calibration == rhs.calibration && lhs.validation == rhs.validation
        }
    }

    /// Fits a profile called `name` to `run`.
    public static func fit(_ run: GroundTruth, name: String, maxEvaluations: Int = 600) -> Result {
        let measured = statistics(of: run.requests.map { ($0.ttft, $0.e2e) }, run, where: isFitting)
        var evaluations = 0
        let objective = { (point: [Double]) -> Double in
            evaluations += 1
            let simulated = statistics(of: replay(run, profile: profile(run, name: name, point)), run, where: isFitting)
            return zip(simulated.logRatios, measured.logRatios).reduce(0) { sum, pair in
                guard pair.0 > 0, pair.1 > 0 else { return sum + 100 }
                let l = log(pair.0 / pair.1)
                return sum + l * l
            }
        }
        let (best, _) = NelderMead(maxEvaluations: maxEvaluations).minimise(
            objective,
            start: start,
            steps: Array(repeating: log(3.0), count: 5)
        )
        var result = fidelity(run, profile: profile(run, name: name, best))
        result.evaluations = evaluations
        return result
    }

    /// Requests the fit sees: every other one by arrival. The rest are held out.
    static func isFitting(_ index: Int) -> Bool { index % 2 == 0 }

    /// Where the search starts: a mid-size GPU running an 8B model. Every coefficient may move by orders
    /// of magnitude from here.
    static let start = [0.002, 0.015, 0.000_1, 1e-10, 1e-9].map(log)

    /// The starting profile of a fit (for comparisons).
    public static func startingProfile(_ run: GroundTruth, name: String) -> EngineProfile {
        profile(run, name: name, start)
    }

    /// How faithfully `profile` reproduces the run: measured and simulated statistics of the fitting half
    /// and of the held-out half.
    public static func fidelity(_ run: GroundTruth, profile: EngineProfile) -> Result {
        let simulated = replay(run, profile: profile)
        let all = run.requests.map { ($0.ttft, $0.e2e) }
        return Result(
            profile: profile,
            calibration: (statistics(of: all, run, where: isFitting), statistics(of: simulated, run, where: isFitting)),
            validation: (
                statistics(of: all, run, where: { !isFitting($0) }),
                statistics(of: simulated, run, where: { !isFitting($0) })
            ),
            evaluations: 1
        )
    }

    /// The profile with the run's scheduler settings and the coefficients `exp(point)`.
    static func profile(_ run: GroundTruth, name: String, _ point: [Double]) -> EngineProfile {
        let c = point.map(exp)
        return EngineProfile(
            name: name,
            maxNumSeqs: run.maxNumSeqs,
            maxNumBatchedTokens: run.maxNumBatchedTokens,
            blockSize: run.blockSize,
            numBlocks: run.numBlocks,
            prefixCaching: run.prefixCaching,
            stepTime: .roofline(
                RooflineStepTime(
                    overhead: c[0],
                    weightRead: c[1],
                    linearPerToken: c[2],
                    prefillAttention: c[3],
                    decodeAttention: c[4]
                )
            )
        )
    }

    /// Replays every request of the run, at its arrival time, on one engine; returns (TTFT, E2E) per request.
    public static func replay(_ run: GroundTruth, profile: EngineProfile) -> [(ttft: Double, e2e: Double)] {
        var engine = EngineModel(profile: profile)
        var out = [(ttft: Double, e2e: Double)](repeating: (0, 0), count: run.requests.count)
        var events: [EngineEvent] = []
        var now = 0.0
        var next = 0
        while next < run.requests.count || engine.hasWork {
            if next < run.requests.count, !engine.hasWork || run.requests[next].arrival <= now {
                let request = run.requests[next]
                now = max(now, request.arrival)
                engine.add(
                    EngineRequest(
                        id: UInt64(next),
                        promptTokens: request.promptTokens,
                        outputTokens: request.outputTokens
                    )
                )
                next += 1
                continue
            }
            events.removeAll(keepingCapacity: true)
            now += engine.step(events: &events)
            for event in events {
                switch event {
                case .firstToken(let id): out[Int(id)].ttft = now - run.requests[Int(id)].arrival
                case .finished(let id): out[Int(id)].e2e = now - run.requests[Int(id)].arrival
                case .token, .preempted: break
                }
            }
        }
        return out
    }

    static func statistics(
        of latencies: [(ttft: Double, e2e: Double)],
        _ run: GroundTruth,
        where keep: (Int) -> Bool
    )
        -> Statistics
    {
        var ttft: [Double] = []
        var tpot: [Double] = []
        var e2e: [Double] = []
        for (index, latency) in latencies.enumerated() where keep(index) {
            ttft.append(latency.ttft)
            e2e.append(latency.e2e)
            let tokens = run.requests[index].outputTokens
            if tokens > 1 { tpot.append((latency.e2e - latency.ttft) / Double(tokens - 1)) }
        }
        return Statistics(ttft: ttft, tpot: tpot, e2e: e2e)
    }
}
