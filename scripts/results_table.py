#!/usr/bin/env python3
"""Writes the policy comparison table of simulator/README.md from simulator/baselines/*.json, between
the markers <!-- results:begin --> and <!-- results:end -->. Run by `make simulator-results` after
`make baselines`."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "simulator" / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def table():
    lines = [
        "| scenario | policy | TTFT p50 | TTFT p99 | TPOT p99 | E2E p99 | goodput (req/s) | throughput (tok/s) | preemptions |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for baseline in sorted((ROOT / "simulator" / "baselines").glob("*.json")):
        summary = json.loads(baseline.read_text())
        for policy, r in summary["policies"].items():
            lines.append(
                f"| {summary['scenario']} | {policy} | {r['ttft_ms']['p50']:,.0f} ms | {r['ttft_ms']['p99']:,.0f} ms "
                f"| {r['tpot_ms']['p99']:,.1f} ms | {r['e2e_ms']['p99'] / 1000:,.1f} s | {r['goodput_rps']:,.1f} "
                f"| {r['throughput_tokens_per_s']:,.0f} | {r['preemptions']:,} |"
            )
    return "\n".join(lines)


def main():
    text = README.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(text[:start] + "\n" + table() + "\n" + text[end:])
    print(f"updated {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
