import Foundation
import IsobarSimulator

/// The fidelity table `isobar calibrate` prints, and the comment it writes into the profile.
struct CalibrationReport {
    let result: Calibrator.Result
    let run: GroundTruth

    /// Targets on the held-out half: (label, error, limit).
    var targets: [(String, Double, Double)] {
        let e = result.validation.simulated.errors(against: result.validation.measured)
        return [
            ("TPOT mean", e.tpotMean, 0.05), ("E2E mean", e.e2eMean, 0.10), ("E2E p90", e.e2eP90, 0.10),
            ("TTFT p90", e.ttftP90, 0.20),
        ]
    }

    var text: String {
        var lines = [
            "Calibrated \(result.profile.name) from \(run.requests.count) requests of \(run.model) on \(run.device)",
            "(fit on every other request, validated on the rest; \(result.evaluations) replays of the whole run)", "",
            "  metric       half          measured   simulated     error",
        ]
        for (label, half) in [("fit", result.calibration), ("held out", result.validation)] {
            let m = half.measured
            let s = half.simulated
            let rows: [(String, Double, Double)] = [
                ("TTFT mean", m.ttftMean, s.ttftMean), ("TTFT p90", m.ttftP90, s.ttftP90),
                ("TPOT mean", m.tpotMean, s.tpotMean), ("TPOT p90", m.tpotP90, s.tpotP90),
                ("E2E mean", m.e2eMean, s.e2eMean), ("E2E p90", m.e2eP90, s.e2eP90),
            ]
            for (metric, measured, simulated) in rows {
                lines.append(
                    String(
                        format: "  %@ %@ %9.3f s %9.3f s  %+7.1f %%",
                        metric.padding(12),
                        label.padding(10),
                        measured,
                        simulated,
                        (simulated / measured - 1) * 100
                    )
                )
            }
        }
        lines.append("")
        for (label, error, limit) in targets {
            let verdict = abs(error) <= limit ? "ok" : "MISSED"
            lines.append(
                String(
                    format: "  %@ error %+.1f %% (target within %.0f %%): %@",
                    label.padding(10),
                    error * 100,
                    limit * 100,
                    verdict
                )
            )
        }
        return lines.joined(separator: "\n")
    }

    var comment: String {
        let summary = targets.map { String(format: "%@ %+.1f%%", $0.0, $0.1 * 100) }.joined(separator: ", ")
        return "Fitted by isobar calibrate from \(run.requests.count) requests of \(run.model) on \(run.device). "
            + "Held-out fidelity: \(summary)."
    }
}
