#!/usr/bin/env python3
"""Tier (d) of the tests: the shipped scenarios against their checked-in baselines, the calibration
fidelity targets, and a capacity plan. Runs the release binary (simulations are slow in debug).

    scripts/check_simulator.py --isobar .build/release/isobar            # compare
    scripts/check_simulator.py --isobar .build/release/isobar --update   # rewrite simulator/baselines/
"""
import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "simulator" / "scenarios"
BASELINES = ROOT / "simulator" / "baselines"
CALIBRATION = ROOT / "simulator" / "traces" / "calibration"
REL_TOL = 1e-3


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode not in (0,):
        sys.exit(f"check_simulator: {' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return result.stdout


def differences(expected, actual, path=""):
    """Every place where `actual` differs from `expected` beyond the tolerance."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                out.append(f"{path}.{key}: missing")
            elif key not in expected:
                out.append(f"{path}.{key}: unexpected ({actual[key]!r})")
            else:
                out += differences(expected[key], actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)) and not isinstance(expected, bool):
        if math.isclose(expected, actual, rel_tol=REL_TOL, abs_tol=1e-6):
            return []
        return [f"{path}: expected {expected}, got {actual}"]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


def check_scenarios(isobar, update):
    failed = False
    for scenario in sorted(SCENARIOS.glob("*.yaml")):
        start = time.monotonic()
        summary = json.loads(run([isobar, "simulate", scenario, "--json"]))
        wall = summary.pop("wall_seconds", None)
        baseline = BASELINES / (scenario.stem + ".json")
        if update:
            baseline.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
            print(f"  {scenario.stem}: baseline written ({wall:.2f} s of simulation)")
            continue
        if not baseline.exists():
            print(f"  {scenario.stem}: no baseline in {baseline.relative_to(ROOT)}; run make baselines")
            failed = True
            continue
        diffs = differences(json.loads(baseline.read_text()), summary)
        if diffs:
            failed = True
            print(f"  {scenario.stem}: DIFFERS from its baseline:")
            for line in diffs[:20]:
                print(f"    {line}")
        else:
            print(f"  {scenario.stem}: matches its baseline ({summary['requests']} requests, {time.monotonic() - start:.1f} s)")
    return failed


def check_calibration(isobar, out):
    text = run([
        isobar, "calibrate",
        "--requests", CALIBRATION / "llmservingsim_vllm_groundtruth_RTX4090_llama31_8b_requests.jsonl",
        "--meta", CALIBRATION / "llmservingsim_vllm_groundtruth_RTX4090_llama31_8b_meta.json",
        "--out", out, "--name", "llama-3.1-8b-rtx4090",
    ])
    verdicts = [line.strip() for line in text.splitlines() if "(target within" in line]
    for line in verdicts:
        print(f"  calibrate: {line}")
    return len(verdicts) != 4 or any(not line.endswith(": ok") for line in verdicts)


def check_plan(isobar):
    text = run([isobar, "plan", SCENARIOS / "capacity-plan.yaml", "--slo", "ttft_p99=2s,tpot_p99=80ms"])
    replicas = [line for line in text.splitlines() if line.startswith("  ") and "replicas" not in line]
    print("  plan: " + " | ".join(line.strip() for line in text.splitlines() if "total cost" in line or "margin" in line))
    return "total cost" not in text or not replicas


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--isobar", default=str(ROOT / ".build" / "release" / "isobar"))
    parser.add_argument("--update", action="store_true")
    args = parser.parse_args()
    BASELINES.mkdir(exist_ok=True)
    print("simulator scenarios:")
    failed = check_scenarios(args.isobar, args.update)
    if not args.update:
        print("calibration:")
        failed |= check_calibration(args.isobar, "/tmp/isobar-check-calibrated.yaml")
        print("capacity plan:")
        failed |= check_plan(args.isobar)
    if failed:
        sys.exit("check_simulator: FAILED")
    print("check_simulator: ok")


if __name__ == "__main__":
    main()
