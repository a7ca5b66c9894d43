import IsobarModel
import IsobarWire

extension ReportWriter {
    /// summary.json: the DESIGN.md §8 contract, keys always in this order.
    ///
    /// Top level: `scenario`, `seed`, `requests`, `wall_seconds` (only when `includeWallTime`; the one
    /// value that differs between identical runs), `slo`, `policies`. `slo` holds `ttft_ms`, `tpot_ms`
    /// and `e2e_ms`, each `null` when not set. `policies` maps each policy name to:
    ///
    /// - `ttft_ms`, `tpot_ms`, `e2e_ms`: `p50`, `p90`, `p99` and `mean` in milliseconds (3 decimals);
    /// - `goodput_rps`: completed requests meeting every SLO per second of the measured window (3);
    /// - `throughput_tokens_per_s`: output tokens per second of the measured window (3);
    /// - `completed`, `rejected`, `preemptions`: counts;
    /// - `cross_region_share`: fraction of completed requests served outside the client's region (4);
    /// - `cost_per_mtok`: US dollars per million prompt plus output tokens (4);
    ///
    /// and these extras: `arrived` and `cut` (streams cut after their first token) counts,
    /// `utilisation_mean` and `utilisation_max` (busy fraction of backends, 4), `prefix_hit_rate`
    /// (fraction of looked-up prompt tokens found in a prefix cache, 4), `prompt_tokens`,
    /// `output_tokens`, and `window_seconds` (the measured window, 3).
    ///
    /// Numbers are rounded to the stated decimals, so identical results give identical bytes.
    public static func summaryJSON(_ result: ScenarioResult, includeWallTime: Bool = true) -> JSON {
        var top: JSONObject = [
            "scenario": .string(result.scenario),
            "seed": exact(result.seed),
            "requests": .int(result.requests),
        ]
        if includeWallTime { top["wall_seconds"] = number(result.wallSeconds, 3) }
        top["slo"] = .object([
            "ttft_ms": result.slo.ttftSeconds.map { number($0 * 1000, 3) } ?? .null,
            "tpot_ms": result.slo.tpotSeconds.map { number($0 * 1000, 3) } ?? .null,
            "e2e_ms": result.slo.e2eSeconds.map { number($0 * 1000, 3) } ?? .null,
        ])
        var policies = JSONObject()
        for policy in result.policies {
            policies.fields.append((key: policy.policy.rawValue, value: policyJSON(policy)))
        }
        top["policies"] = .object(policies)
        return .object(top)
    }

    private static func policyJSON(_ policy: PolicyResult) -> JSON {
        [
            "ttft_ms": latencyJSON(policy.ttft),
            "tpot_ms": latencyJSON(policy.tpot),
            "e2e_ms": latencyJSON(policy.e2e),
            "goodput_rps": number(policy.goodput, 3),
            "throughput_tokens_per_s": number(policy.throughput, 3),
            "completed": .int(policy.completed),
            "rejected": .int(policy.rejected),
            "preemptions": .int(policy.preemptions),
            "cross_region_share": number(policy.crossRegionShare, 4),
            "cost_per_mtok": number(policy.costPerMTok, 4),
            "arrived": .int(policy.arrived),
            "cut": .int(policy.failedAfterFirstToken),
            "utilisation_mean": number(policy.meanUtilisation, 4),
            "utilisation_max": number(policy.maxUtilisation, 4),
            "prefix_hit_rate": number(policy.prefixHitRate, 4),
            "prompt_tokens": .int(policy.promptTokens),
            "output_tokens": .int(policy.outputTokens),
            "window_seconds": number(policy.windowSeconds, 3),
        ]
    }

    private static func latencyJSON(_ histogram: LatencyHistogram) -> JSON {
        [
            "p50": number(histogram.quantile(0.5) * 1000, 3),
            "p90": number(histogram.quantile(0.9) * 1000, 3),
            "p99": number(histogram.quantile(0.99) * 1000, 3),
            "mean": number(histogram.mean * 1000, 3),
        ]
    }

    private static func number(_ value: Double, _ decimals: Int) -> JSON {
        .double(ReportFormat.rounded(value, decimals: decimals))
    }

    /// A 64-bit seed as an exact JSON integer (a `Double` would lose digits above 2^53).
    private static func exact(_ value: UInt64) -> JSON {
        (try? JSON(parsing: String(value))) ?? .int(Int(truncatingIfNeeded: value))
    }

    /// `json` as indented text (two spaces a level) ending in a newline. Objects and arrays whose
    /// members are all scalars stay on one line when short, which keeps the percentiles readable.
    public static func prettyJSON(_ json: JSON) -> String {
        var out = ""
        appendPretty(json, indent: 0, into: &out)
        return out + "\n"
    }

    private static func appendPretty(_ json: JSON, indent: Int, into out: inout String) {
        let inline = json.text
        if inline.utf8.count <= 80 && isFlat(json) {
            out += inline.spacedAfterSeparators()
            return
        }
        let pad = String(repeating: "  ", count: indent + 1)
        switch json {
        case .object(let object):
            out += "{\n"
            for (index, field) in object.fields.enumerated() {
                out += pad + String(decoding: JSON.quoted(field.key), as: UTF8.self) + ": "
                appendPretty(field.value, indent: indent + 1, into: &out)
                out += index + 1 < object.fields.count ? ",\n" : "\n"
            }
            out += String(repeating: "  ", count: indent) + "}"
        case .array(let array):
            out += "[\n"
            for (index, element) in array.enumerated() {
                out += pad
                appendPretty(element, indent: indent + 1, into: &out)
                out += index + 1 < array.count ? ",\n" : "\n"
            }
            out += String(repeating: "  ", count: indent) + "]"
        default:
            out += inline
        }
    }

    private static func isFlat(_ json: JSON) -> Bool {
        switch json {
        case .object(let object): object.fields.allSatisfy { !$0.value.isContainer }
        case .array(let array): array.allSatisfy { !$0.isContainer }
        default: true
        }
    }
}

extension JSON {
    fileprivate var isContainer: Bool {
        switch self {
        case .object, .array: true
        default: false
        }
    }
}

extension String {
    /// Compact JSON of a flat container with a space after each `,` and `:` outside strings.
    fileprivate func spacedAfterSeparators() -> String {
        var out = ""
        var inString = false
        var escaped = false
        for character in self {
            out.append(character)
            if inString {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    inString = false
                }
            } else if character == "\"" {
                inString = true
            } else if character == "," || character == ":" {
                out.append(" ")
            }
        }
        return out
    }
}
