import IsobarConfig
import IsobarModel
import Testing

/// Engine profile files: what `isobar calibrate` writes reads back as the same profile.
@Suite("Engine profile files")
struct ScenarioProfileFileTests {
    @Test(arguments: EngineProfile.presets)
    func everyPresetRoundTrips(_ preset: EngineProfile) throws {
        let text = EngineProfileFile.yaml(preset)
        #expect(try EngineProfileFile.load(text: text, file: "p.yaml") == preset)
    }

    @Test func awkwardValuesRoundTrip() throws {
        let profile = EngineProfile(
            name: "true",
            maxNumSeqs: 1,
            maxNumBatchedTokens: 1,
            blockSize: 32,
            numBlocks: 7,
            prefixCaching: false,
            stepTime: .roofline(
                RooflineStepTime(
                    overhead: 0,
                    weightRead: 1e-300,
                    linearPerToken: 2.2250738585072014e-308,
                    prefillAttention: 1e20,
                    decodeAttention: 0.1 + 0.2
                )
            )
        )
        let text = EngineProfileFile.yaml(profile, comment: "fitted by a test\n\nsecond paragraph")
        #expect(text.hasPrefix("# fitted by a test\n#\n# second paragraph\nname: \"true\"\n"))
        #expect(try EngineProfileFile.load(text: text, file: "p.yaml") == profile)
    }

    @Test func theNameDefaultsToTheFileName() throws {
        let text = "max_num_seqs: 1\nmax_num_batched_tokens: 16\nnum_blocks: 10\nstep_time: {fixed_s: 0.02}\n"
        let profile = try EngineProfileFile.load(text: text, file: "profiles/single.yaml")
        #expect(
            profile
                == EngineProfile(
                    name: "single",
                    maxNumSeqs: 1,
                    maxNumBatchedTokens: 16,
                    numBlocks: 10,
                    stepTime: .fixed(seconds: 0.02)
                )
        )
    }

    @Test func problemsOfAProfileFile() {
        let text = """
            name: p
            max_num_seqs: 64
            max_num_batched_tokens: 32
            block_size: 0
            prefix_caching: sometimes
            step_time: {fixed_s: 0.01, overhead_s: 0.001}
            num_bloks: 5
            """
        #expect(
            problems(text) == [
                "p.yaml:1: num_blocks: required key is missing",
                "p.yaml:3: max_num_batched_tokens: must be at least max_num_seqs (64): every sequence of a full batch "
                    + "needs a token of the budget",
                "p.yaml:4: block_size: must be at least 1, got 0",
                "p.yaml:5: prefix_caching: expected true or false, got a string",
                "p.yaml:6: step_time.overhead_s: step_time is either {fixed_s} or the roofline coefficients, not both",
                "p.yaml:7: num_bloks: unknown key 'num_bloks' (did you mean 'num_blocks'?)",
            ]
        )
        let roofline = "max_num_seqs: 1\nmax_num_batched_tokens: 1\nnum_blocks: 1\nstep_time: {overhead_s: -1}\n"
        #expect(
            problems(roofline) == [
                "p.yaml:4: step_time.overhead_s: must not be negative, got -1",
                "p.yaml:4: step_time.weight_read_s: required key is missing",
                "p.yaml:4: step_time.linear_per_token_s: required key is missing",
                "p.yaml:4: step_time.prefill_attention_s: required key is missing",
                "p.yaml:4: step_time.decode_attention_s: required key is missing",
            ]
        )
        #expect(
            problems("max_num_seqs: 1\nmax_num_batched_tokens: 1\nnum_blocks: 1\nstep_time: {}\n") == [
                "p.yaml:4: step_time: expected {fixed_s: SECONDS} or the roofline coefficients overhead_s, weight_read_s, "
                    + "linear_per_token_s, prefill_attention_s, decode_attention_s"
            ]
        )
    }

    private func problems(_ text: String) -> [String] {
        do {
            _ = try EngineProfileFile.load(text: text, file: "p.yaml")
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }
}
