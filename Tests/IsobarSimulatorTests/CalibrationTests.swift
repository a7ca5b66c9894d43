import Foundation
import IsobarConfig
import IsobarModel
import IsobarSimulator
import Testing

@Suite("Calibration from a real vLLM run")
struct CalibrationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let directory = root.appendingPathComponent("simulator/traces/calibration")

    static func run() throws -> GroundTruth {
        try GroundTruth.load(
            requests: directory.appendingPathComponent(
                "llmservingsim_vllm_groundtruth_RTX4090_llama31_8b_requests.jsonl"
            ).path,
            meta: directory.appendingPathComponent("llmservingsim_vllm_groundtruth_RTX4090_llama31_8b_meta.json").path
        )
    }

    @Test("the RTX 4090 run loads with the engine's settings")
    func loads() throws {
        let run = try Self.run()
        #expect(run.requests.count == 300)
        #expect(run.maxNumSeqs == 256 && run.maxNumBatchedTokens == 2048)
        #expect(run.numBlocks == 2588 && run.blockSize == 16)
        #expect(run.device == "NVIDIA GeForce RTX 4090")
        #expect(run.requests.allSatisfy { $0.ttft >= 0 && $0.e2e >= $0.ttft })
    }

    @Test("the shipped profile fitted by isobar calibrate meets the fidelity targets on the held-out half")
    func shippedProfileFidelity() throws {
        let run = try Self.run()
        let profile = try EngineProfileFile.load(
            path: Self.root.appendingPathComponent("simulator/profiles/llama-3.1-8b-rtx4090.yaml").path
        )
        #expect(profile.maxNumSeqs == run.maxNumSeqs && profile.numBlocks == run.numBlocks)
        let held = Calibrator.fidelity(run, profile: profile).validation
        let e = held.simulated.errors(against: held.measured)
        #expect(abs(e.tpotMean) < 0.05, "TPOT mean \(e.tpotMean)")
        #expect(abs(e.e2eMean) < 0.10, "E2E mean \(e.e2eMean)")
        #expect(abs(e.e2eP90) < 0.10, "E2E p90 \(e.e2eP90)")
        #expect(abs(e.ttftP90) < 0.20, "TTFT p90 \(e.ttftP90)")
    }

    @Test("a profile far off the run is clearly unfaithful (the check can fail)")
    func wrongProfileMisses() throws {
        let run = try Self.run()
        var profile = EngineProfile.llama31_8B_H100
        profile.maxNumSeqs = run.maxNumSeqs
        profile.numBlocks = run.numBlocks
        let held = Calibrator.fidelity(run, profile: profile).validation
        #expect(abs(held.simulated.errors(against: held.measured).tpotMean) > 0.2)
    }

    @Test("a short fit moves the coefficients toward the run")
    func shortFitImproves() throws {
        let run = try Self.run()
        let result = Calibrator.fit(run, name: "quick", maxEvaluations: 30)
        let start = Calibrator.fidelity(run, profile: Calibrator.startingProfile(run, name: "start")).calibration
        let startError = start.simulated.errors(against: start.measured)
        let fitError = result.calibration.simulated.errors(against: result.calibration.measured)
        #expect(abs(fitError.tpotMean) < abs(startError.tpotMean))
        #expect(result.evaluations <= 30 + 5)
    }
}
