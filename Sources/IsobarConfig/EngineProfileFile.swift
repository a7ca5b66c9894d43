import Foundation
import IsobarModel

/// Engine profile files: one `EngineProfile` as YAML, the format `isobar calibrate` writes and a scenario's
/// `profiles:` section loads (simulator/README.md, "Profile files").
///
/// ```yaml
/// name: rtx4090-llama-3.1-8b
/// max_num_seqs: 256
/// max_num_batched_tokens: 8192
/// block_size: 16
/// num_blocks: 2588
/// prefix_caching: true
/// step_time:                 # either {fixed_s: 0.01} or the roofline coefficients, all in seconds
///   overhead_s: 0.0012
///   weight_read_s: 0.006
///   linear_per_token_s: 2.7e-05
///   prefill_attention_s: 2.0e-11
///   decode_attention_s: 6.0e-10
/// ```
public enum EngineProfileFile {
    /// Reads and validates the profile file at `path`.
    ///
    /// - Parameter path: The file; diagnostics name it as given. A file without `name:` names the profile
    ///   after the file (without its extension).
    /// - Throws: `ConfigError` with every problem found, sorted by line.
    public static func load(path: String) throws(ConfigError) -> EngineProfile {
        guard let text = TopologyLoader.readText(path) else { throw ConfigLoader.unreadable(path) }
        return try load(text: text, file: path)
    }

    /// Validates profile text; `file` names it in diagnostics and gives the default name.
    ///
    /// - Throws: `ConfigError` with every problem found, sorted by line.
    public static func load(text: String, file: String) throws(ConfigError) -> EngineProfile {
        let log = DiagnosticLog(file: file)
        let profile = YAMLDocument.compose(text, log: log).flatMap { root in
            validate(
                YAMLValue(root, at: .document(line: root.mark?.line ?? 1), log: log),
                defaultName: ConfigLoader.baseName(file)
            )
        }
        guard let profile, log.count == 0 else { throw ConfigError(diagnostics: log.sorted) }
        return profile
    }

    /// The profile as profile-file YAML; `load(text:file:)` reads it back as an equal value.
    ///
    /// - Parameters:
    ///   - profile: The profile to write.
    ///   - comment: Lines put first as `#` comments, such as how the profile was fitted.
    public static func yaml(_ profile: EngineProfile, comment: String? = nil) -> String {
        var lines = (comment.map { $0.split(separator: "\n", omittingEmptySubsequences: false) } ?? [])
            .map { $0.isEmpty ? "#" : "# \($0)" }
        lines += [
            "name: \(quoted(profile.name))",
            "max_num_seqs: \(profile.maxNumSeqs)",
            "max_num_batched_tokens: \(profile.maxNumBatchedTokens)",
            "block_size: \(profile.blockSize)",
            "num_blocks: \(profile.numBlocks)",
            "prefix_caching: \(profile.prefixCaching)",
            "step_time:",
        ]
        switch profile.stepTime {
        case .fixed(let seconds):
            lines.append("  fixed_s: \(number(seconds))")
        case .roofline(let formula):
            lines += [
                "  overhead_s: \(number(formula.overhead))",
                "  weight_read_s: \(number(formula.weightRead))",
                "  linear_per_token_s: \(number(formula.linearPerToken))",
                "  prefill_attention_s: \(number(formula.prefillAttention))",
                "  decode_attention_s: \(number(formula.decodeAttention))",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - Validation

    static let keys = [
        "name", "max_num_seqs", "max_num_batched_tokens", "block_size", "num_blocks", "prefix_caching", "step_time",
    ]
    static let rooflineKeys = [
        "overhead_s", "weight_read_s", "linear_per_token_s", "prefill_attention_s", "decode_attention_s",
    ]

    /// The profile a document describes, or `nil` after logging its problems to the log of `root`.
    static func validate(_ root: YAMLValue, defaultName: String) -> EngineProfile? {
        let before = root.log.count
        let check = ProfileCheck(log: root.log)
        guard let fields = root.fields(keys) else { return nil }
        var names = NameTable(kind: "profile", log: root.log)
        let name = names.claim(
            fields.string("name") ?? Sourced(value: defaultName, location: root.location),
            in: root.location
        )
        let maxNumSeqs = check.count(fields, "max_num_seqs")
        let maxNumBatchedTokens = check.count(fields, "max_num_batched_tokens")
        let blockSize = check.integer(fields.integer("block_size"), in: 1...Int.max) ?? 16
        let numBlocks = check.count(fields, "num_blocks")
        let prefixCaching = fields.boolean("prefix_caching")?.value ?? true
        let stepTime = check.stepTime(fields)
        if let seqs = maxNumSeqs, let tokens = fields.integer("max_num_batched_tokens"), tokens.value < seqs {
            root.log.error(
                tokens.location,
                "must be at least max_num_seqs (\(seqs)): every sequence of a full batch needs a token of the budget"
            )
        }
        guard root.log.count == before, let name, let maxNumSeqs, let maxNumBatchedTokens, let numBlocks, let stepTime
        else { return nil }
        return EngineProfile(
            name: name,
            maxNumSeqs: maxNumSeqs,
            maxNumBatchedTokens: maxNumBatchedTokens,
            blockSize: blockSize,
            numBlocks: numBlocks,
            prefixCaching: prefixCaching,
            stepTime: stepTime
        )
    }

    /// A YAML double-quoted string.
    private static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// The shortest text that reads back as `value`, with a `.` before any exponent, as YAML 1.1 floats
    /// need one (`2e-11` would be read as a string).
    private static func number(_ value: Double) -> String {
        let text = "\(value)"
        guard !text.contains("."), let exponent = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else {
            return text
        }
        return text[..<exponent] + ".0" + text[exponent...]
    }
}

/// The checks of one profile document.
private struct ProfileCheck: Validating {
    let log: DiagnosticLog

    /// A required count of at least 1.
    func count(_ fields: Fields, _ key: String) -> Int? {
        integer(required(fields.integer(key), key, in: fields.location), in: 1...Int.max)
    }

    /// `step_time`: `{fixed_s}` or every roofline coefficient, each at least 0.
    func stepTime(_ fields: Fields) -> StepTime? {
        let keys = ["fixed_s"] + EngineProfileFile.rooflineKeys
        guard let value = fields.value("step_time") else {
            log.missing(fields.location.key("step_time"))
            return nil
        }
        guard let step = value.fields(keys) else { return nil }
        let given = EngineProfileFile.rooflineKeys.filter { step.value($0) != nil }
        if step.value("fixed_s") != nil {
            if let other = given.first, let location = step.value(other)?.location {
                log.error(location, "step_time is either {fixed_s} or the roofline coefficients, not both")
                return nil
            }
            return nonNegative(step.number("fixed_s")).map { .fixed(seconds: $0) }
        }
        guard !given.isEmpty else {
            log.error(
                step.location,
                "expected {fixed_s: SECONDS} or the roofline coefficients "
                    + EngineProfileFile.rooflineKeys.joined(separator: ", ")
            )
            return nil
        }
        let values = EngineProfileFile.rooflineKeys.map { key in
            nonNegative(required(step.number(key), key, in: step.location))
        }
        let coefficients = values.compactMap { $0 }
        guard coefficients.count == values.count else { return nil }
        return .roofline(
            RooflineStepTime(
                overhead: coefficients[0],
                weightRead: coefficients[1],
                linearPerToken: coefficients[2],
                prefillAttention: coefficients[3],
                decodeAttention: coefficients[4]
            )
        )
    }
}
