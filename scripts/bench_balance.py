#!/usr/bin/env python3
"""Live balancing benchmark (`make bench-balance`).

Runs `isobar up` on a topology of emulated engines of unequal speed (one Llama-3.1-70B on four H100s and
two Llama-2-70B on two A100s each, timed in real time by the engine model), once per policy, and drives
each with the same open-loop, skewed-length load: Poisson arrivals, 90 % short prompts and 10 % long ones
(lognormal), lognormal output lengths, every request streamed. Prints p50/p99 time to first token,
output throughput and errors per policy side by side, with each policy's p99 as a ratio to
least-request's in the same run.

The arrival schedule and lengths are drawn from one seed, so every policy sees the same requests.
Numbers depend on the machine and its load; quote them with the core count and load average printed
at the top.
"""
import argparse
import asyncio
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

import httpx

from bench import stop

TOPOLOGY = """
mesh: {{name: bench-balance}}
regions: [{{name: local}}]
nodes: [{{name: gw, region: local, listen: "127.0.0.1:0"}}]
backends:
  - {{name: h100, region: local, engine: emulated, models: [llama-70b], emulate: {{profile: llama-3.1-70b-h100}}}}
  - {{name: a100-1, region: local, engine: emulated, models: [llama-70b], emulate: {{profile: llama-2-70b-a100}}}}
  - {{name: a100-2, region: local, engine: emulated, models: [llama-70b], emulate: {{profile: llama-2-70b-a100}}}}
models:
  - name: chat
    policy: {policy}
    deployments:
      - {{backend: h100, model: llama-70b}}
      - {{backend: a100-1, model: llama-70b}}
      - {{backend: a100-2, model: llama-70b}}
"""

# Llama-2-70B's context is 4,096 tokens: prompt + output stays under it.
MAX_TOKENS = 3_800


def workload(seed, rate, seconds):
    """(arrival offset s, prompt tokens, output tokens) for every request."""
    rng = random.Random(seed)
    t, requests = 0.0, []
    while True:
        t += rng.expovariate(rate)
        if t >= seconds:
            return requests
        if rng.random() < 0.1:
            prompt = int(min(3_000, rng.lognormvariate(math.log(1_800), 0.4)))
        else:
            prompt = int(min(3_000, rng.lognormvariate(math.log(160), 0.6)))
        output = int(min(MAX_TOKENS - prompt, max(4, rng.lognormvariate(math.log(90), 0.7))))
        requests.append((t, max(8, prompt), output))


def body(prompt_tokens, output_tokens):
    # The emulator and the gateway both estimate a prompt at 4 bytes per token.
    text = "lorem " * max(1, (prompt_tokens * 4 - 120) // 6)
    return {
        "model": "chat",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": output_tokens,
        "stream": True,
    }


async def one(client, url, offset, prompt, output, start, results):
    await asyncio.sleep(max(0.0, start + offset - time.monotonic()))
    sent = time.monotonic()
    first, tokens = None, 0
    try:
        async with client.stream("POST", url, json=body(prompt, output)) as response:
            if response.status_code != 200:
                await response.aread()
                results.append({"error": response.status_code})
                return
            async for line in response.aiter_lines():
                if line.startswith("data: {") and '"content"' in line:
                    if first is None:
                        first = time.monotonic()
                    tokens += 1
    except httpx.HTTPError as error:
        results.append({"error": type(error).__name__})
        return
    if first is None:
        results.append({"error": "no token"})
        return
    results.append({"ttft": first - sent, "tokens": tokens, "end": time.monotonic()})


async def drive(base, requests):
    url = f"{base}/v1/chat/completions"
    limits = httpx.Limits(max_connections=2_000, max_keepalive_connections=2_000)
    results = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0), limits=limits) as client:
        start = time.monotonic() + 0.5
        await asyncio.gather(*(one(client, url, t, p, o, start, results) for t, p, o in requests))
        elapsed = max(r.get("end", start) for r in results) - start if results else 1
    return results, elapsed


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def run_policy(isobar, policy, requests, work):
    path = os.path.join(work, f"{policy}.yaml")
    with open(path, "w") as f:
        f.write(TOPOLOGY.format(policy=policy))
    process = subprocess.Popen([isobar, "up", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = None
    deadline = time.time() + 30
    while time.time() < deadline and base is None:
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(r"listening on (http://\S+)/v1", line)
        if match:
            base = match.group(1)
    if base is None:
        process.kill()
        sys.exit(f"bench-balance: isobar up {path} did not start")
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    time.sleep(1.0)  # a few scrapes before the first request
    try:
        results, elapsed = asyncio.run(drive(base, requests))
    finally:
        stop(process)
    ttfts = [r["ttft"] for r in results if "ttft" in r]
    return {
        "p50": percentile(ttfts, 0.5),
        "p99": percentile(ttfts, 0.99),
        "tokens_per_s": sum(r.get("tokens", 0) for r in results) / elapsed,
        "errors": sum(1 for r in results if "error" in r),
        "done": len(ttfts),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--isobar", default=".build/release/isobar")
    parser.add_argument("--seconds", type=float, default=60, help="arrival window per policy")
    parser.add_argument("--rate", type=float, default=11, help="requests per second (the fleet drains ~14)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policies", default="round-robin,least-request,least-tokens,isobar")
    args = parser.parse_args()

    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f}")
    requests = workload(args.seed, args.rate, args.seconds)
    prompts = sorted(p for _, p, _ in requests)
    print(
        f"workload: {len(requests)} streamed requests over {args.seconds:.0f} s ({args.rate} req/s, seed {args.seed}); "
        f"prompt tokens p50 {percentile(prompts, 0.5)}, p99 {percentile(prompts, 0.99)}; "
        "fleet: 1 x llama-3.1-70b-h100 + 2 x llama-2-70b-a100 (emulated)"
    )
    work = tempfile.mkdtemp(prefix="isobar-bench-balance-")
    rows = {}
    for policy in args.policies.split(","):
        rows[policy] = run_policy(args.isobar, policy, requests, work)
        r = rows[policy]
        print(f"  {policy}: done ({r['done']} answered, {r['errors']} errors)", flush=True)

    baseline = rows.get("least-request")
    print()
    print(f"{'policy':<15} {'TTFT p50':>10} {'TTFT p99':>10} {'p99/LR':>7} {'tok/s':>8} {'errors':>7}")
    for policy, r in rows.items():
        ratio = r["p99"] / baseline["p99"] if baseline and baseline["p99"] > 0 else float("nan")
        print(
            f"{policy:<15} {r['p50'] * 1000:>8.0f}ms {r['p99'] * 1000:>8.0f}ms {ratio:>7.2f} "
            f"{r['tokens_per_s']:>8.0f} {r['errors']:>7}"
        )
    best = min(rows, key=lambda p: rows[p]["p99"])
    print(f"\nlowest p99 TTFT: {best}")
    if "isobar" in rows and best != "isobar":
        print("bench-balance: isobar did not have the lowest p99 TTFT", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
