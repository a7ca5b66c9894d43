#!/usr/bin/env python3
"""Gateway overhead benchmark (`make bench`).

Runs a zero-latency emulated upstream (`isobar emulate --profile instant`) and one gateway node
(`isobar serve`) as separate processes, drives both with wrk, and reports in the same run:

* gateway CPU time per request (non-streaming, and a 16-token stream), read from /proc;
* added p50/p99 latency at concurrency 1 and 64 (through the gateway minus direct to the upstream);
* throughput at concurrency 64, through the gateway and direct, and their ratio;
* gateway resident memory while 1,000 streams are open at once;
* what a virtual key's limits cost: a node counting them in memory against one sharing them through a
  real redis-server, both measured in the same run (issue 7: at most +30 µs CPU and +0.2 ms p50).

The baseline is the direct call to the same upstream in the same run. Numbers depend on the machine
and its load; quote them with `nproc` and the load average printed at the top.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")
if os.getenv("BENCH_AUTH") then wrk.headers["authorization"] = os.getenv("BENCH_AUTH") end
done = function(summary, latency, requests)
  io.write(string.format("RESULT {\"requests\": %d, \"errors\": %d, \"seconds\": %f, \"p50_us\": %f, \"p99_us\": %f}\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99)))
end
"""


def free_port():
    return free_ports(1)[0]


def free_ports(count):
    """`count` distinct free loopback ports: every socket stays bound until all are chosen, so the kernel
    cannot hand the same port out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def start(cmd, ready_pattern, env=None):
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if re.search(ready_pattern, line):
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process
    process.kill()
    sys.exit(f"bench: {' '.join(cmd)} did not start")


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def serve_node(isobar, work, name, topology, env=None):
    """Writes a one-node topology `name` (mesh `name`, region `local`, node `gw` on a free port, then
    `topology`: its backends, models and the rest) and starts `isobar serve` on it: (process, port)."""
    port = free_port()
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(f"mesh: {{name: {name}}}\nregions: [{{name: local}}]\n"
                f'nodes: [{{name: gw, region: local, listen: "127.0.0.1:{port}"}}]\n' + topology)
    process = start([isobar, "serve", "--topology", path, "--node", "gw", "--log-level", "error"], "listening on",
                    env=env)
    return process, port


def wrk(url, body, connections, seconds, script, auth=None):
    threads = min(2, connections)
    env = {**os.environ, "BENCH_BODY": body, **({"BENCH_AUTH": auth} if auth else {})}
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script, url],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    match = re.search(r"RESULT (\{.*\})", out)
    if not match:
        sys.exit("bench: wrk printed no result:\n" + out)
    return json.loads(match.group(1))


def measure(url, body, connections, seconds, script, pid=None, auth=None):
    before = cpu_seconds(pid) if pid else 0
    result = wrk(url, body, connections, seconds, script, auth)
    if pid:
        result["cpu_us_per_request"] = (cpu_seconds(pid) - before) / max(1, result["requests"]) * 1e6
    result["rps"] = result["requests"] / result["seconds"]
    return result


METRICS_SERVER = r"""
import asyncio, sys, urllib.parse
text = open(sys.argv[1]).read()
honour = sys.argv[2] == "filter"


def restricted(names):
    # What Prometheus's Python client (vLLM's and SGLang's /metrics) answers to name[] parameters: the
    # samples with those names, under their families' HELP and TYPE lines.
    out, header, after_sample = [], [], True
    for line in text.splitlines():
        if line.startswith("#"):
            header = [line] if after_sample else header + [line]
            after_sample = False
        elif line:
            after_sample = True
            if line.split("{", 1)[0].split(" ", 1)[0] in names:
                out += header + [line]
                header = []
    return "\n".join(out) + "\n"


answers = {}


def answer(target):
    if target not in answers:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        names = set(query.get("name[]", []))
        body = (restricted(names) if honour and names else text).encode()
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: %d\r\n\r\n"
        answers[target] = head % len(body) + body
    return answers[target]


async def serve(reader, writer):
    try:
        while True:
            request = await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(request.split(b" ", 2)[1].decode()))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main():
    servers = [await asyncio.start_server(serve, "127.0.0.1", int(p)) for p in sys.argv[3:]]
    print("listening", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


asyncio.run(main())
"""


def gateway_cpu_share(isobar, work, ports, engine, seconds):
    """CPU share of one core a node uses over `seconds` with `ports` as backends of kind `engine`."""
    backends = "\n".join(
        f'  - {{name: b{i}, region: local, engine: {engine}, url: "http://127.0.0.1:{p}", models: [m]}}'
        for i, p in enumerate(ports))
    gateway, _ = serve_node(isobar, work, f"scrape-{engine}", f"""backends:
{backends}
models:
  - {{name: m, deployments: [{{backend: b0, model: m}}]}}
""")
    try:
        time.sleep(2)
        before, start_time = cpu_seconds(gateway.pid), time.monotonic()
        time.sleep(seconds)
        return (cpu_seconds(gateway.pid) - before) / (time.monotonic() - start_time)
    finally:
        stop(gateway)


def scrape_cost(isobar, work, seconds, endpoints=64):
    """Gateway CPU spent scraping `endpoints` vLLM /metrics endpoints every 250 ms (a real vLLM exposition of
    68 KB, kept-alive connections), as a share of one core, against the same node with the backends declared
    `openai-compatible` (never scraped), measured in the same run. Twice: served as vLLM serves it, honouring
    the `name[]` filter the scraper sends, and in full, as an engine that ignores the filter would."""
    ports = free_ports(endpoints)
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "IsobarWireTests", "Fixtures",
                           "vllm-v1.txt")
    server_script = os.path.join(work, "metrics_server.py")
    with open(server_script, "w") as f:
        f.write(METRICS_SERVER)
    shares = {}
    for mode in ("filter", "full"):
        server = start([sys.executable, server_script, fixture, mode] + [str(p) for p in ports], "listening")
        try:
            if mode == "filter":
                shares["unscraped"] = gateway_cpu_share(isobar, work, ports, "openai-compatible", seconds)
            shares[mode] = gateway_cpu_share(isobar, work, ports, "vllm", seconds) - shares["unscraped"]
        finally:
            stop(server)
    return shares


def limits_cost(isobar, work, upstream_port, script, seconds, rounds=3):
    """One node per store, the same key with generous limits (requests per minute, tokens per minute, a
    concurrency cap and a budget, so every check runs): (memory rows, redis rows) of non-streaming requests at
    concurrency 1 and 64. Both nodes run side by side and are measured in turn, `rounds` times each; each
    figure is the median of its rounds (two cores shared by wrk, the upstream, the node and redis-server make
    single runs swing by a third)."""
    redis_port = free_port()
    redis = start([shutil.which("redis-server"), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no"], "Ready to accept connections")
    body = '{"model": "bench", "messages": [{"role": "user", "content": "Benchmark the limits."}], "max_tokens": 16}'
    gateways, urls = {}, {}
    try:
        for store in ("memory", "redis"):
            gateways[store], port = serve_node(isobar, work, f"limits-{store}", f"""backends:
  - {{name: upstream, region: local, engine: vllm, url: "http://127.0.0.1:{upstream_port}", models: [m],
     price: {{input_per_mtok: 0.1, output_per_mtok: 0.2}}}}
models:
  - {{name: bench, deployments: [{{backend: upstream, model: m}}]}}
keys:
  master: {{secret_env: BENCH_MASTER}}
  teams: [{{name: t, rpm: 10000000, tpm: 10000000000, max_concurrent: 100000, budget: {{usd: 1000000, period: day}}}}]
  virtual_keys:
    - {{id: bench, team: t, secret_env: BENCH_KEY, rpm: 10000000, tpm: 10000000000, max_concurrent: 100000}}
""" + (f"redis: {{url: 'redis://127.0.0.1:{redis_port}'}}\n" if store == "redis" else ""),
                env={**os.environ, "BENCH_MASTER": "sk-bench-master", "BENCH_KEY": "sk-bench"})
            urls[store] = f"http://127.0.0.1:{port}/v1/chat/completions"
            measure(urls[store], body, 8, 2, script, auth="Bearer sk-bench")
        runs = {store: [[], []] for store in gateways}
        for _ in range(rounds):
            for store, gateway in gateways.items():
                for i, connections in enumerate((1, 64)):
                    runs[store][i].append(measure(urls[store], body, connections, seconds, script, pid=gateway.pid,
                                                  auth="Bearer sk-bench"))
        return {store: [{key: statistics.median(r[key] for r in rows) for key in rows[0]} for rows in by_concurrency]
                for store, by_concurrency in runs.items()}
    finally:
        for gateway in gateways.values():
            stop(gateway)
        stop(redis)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--isobar", default=".build/release/isobar")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--limits-only", action="store_true", help="only the cost of shared limits")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is missing; run make bootstrap")

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    work = tempfile.mkdtemp(prefix="isobar-bench-")
    script = os.path.join(work, "post.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)

    upstream_port, slow_port = free_ports(2)
    isobar = args.isobar
    upstream = start([isobar, "emulate", "--profile", "instant", "--listen", f"127.0.0.1:{upstream_port}",
                      "--model", "m", "--log-level", "error"], "listening on")
    slow = start([isobar, "emulate", "--profile", "instant", "--tokens-per-second", "4", "--listen",
                  f"127.0.0.1:{slow_port}", "--model", "m", "--log-level", "error"], "listening on")
    gateway, gateway_port = serve_node(isobar, work, "bench", f"""backends:
  - {{name: upstream, region: local, engine: vllm, url: "http://127.0.0.1:{upstream_port}", models: [m]}}
  - {{name: slow, region: local, engine: vllm, url: "http://127.0.0.1:{slow_port}", models: [m]}}
models:
  - {{name: bench, deployments: [{{backend: upstream, model: m}}]}}
  - {{name: hold, deployments: [{{backend: slow, model: m}}]}}
""")
    try:
        direct = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
        through = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
        messages = '"messages": [{"role": "user", "content": "Benchmark the gateway, please."}]'
        plain = '{"model": "%s", ' + messages + ', "max_tokens": 16}'
        stream = '{"model": "%s", ' + messages + ', "max_tokens": 16, "stream": true}'

        # Warm up connection pools and code paths.
        measure(through, plain % "bench", 8, 2, script)
        measure(direct, plain % "m", 8, 2, script)

        limits = limits_cost(isobar, work, upstream_port, script, args.seconds)
        print(f"\nvirtual-key limits (non-streaming): {'store':<7} {'conc':>4} {'p50':>8} {'p99':>8} {'rps':>7} {'CPU/req':>9}")
        for store, rows in limits.items():
            for connections, r in zip((1, 64), rows):
                print(f"{'':<35} {store:<7} {connections:>4} {r['p50_us']/1000:>6.3f}ms {r['p99_us']/1000:>6.3f}ms "
                      f"{r['rps']:>7.0f} {r['cpu_us_per_request']:>7.1f}µs" + (f"  errors {r['errors']}" if r["errors"] else ""))
        limit_targets = [
            ("redis limits: added CPU per request", limits["redis"][1]["cpu_us_per_request"]
             - limits["memory"][1]["cpu_us_per_request"], 30, "µs"),
            ("redis limits: added p50 at concurrency 1", (limits["redis"][0]["p50_us"]
             - limits["memory"][0]["p50_us"]) / 1000, 0.2, "ms"),
        ]
        if args.limits_only:
            for label, value, target, unit in limit_targets:
                print(f"{label:<40} {value:>8.2f} {unit}  target {target} {unit}  {'ok' if value <= target else 'OVER'}")
            return

        rows = []
        for name, body in [("non-streaming", plain), ("16-token stream", stream)]:
            for connections in (1, 64):
                d = measure(direct, body % "m", connections, args.seconds, script, pid=upstream.pid)
                g = measure(through, body % "bench", connections, args.seconds, script, pid=gateway.pid)
                rows.append((name, connections, d, g))

        print()
        print(f"{'workload':<16} {'conc':>4} {'direct p50':>10} {'gw p50':>8} {'added p50':>9} {'added p99':>9} "
              f"{'direct rps':>10} {'gw rps':>8} {'ratio':>5} {'gw CPU/req':>10} {'upstream CPU/req':>16}")
        for name, connections, d, g in rows:
            print(f"{name:<16} {connections:>4} {d['p50_us']/1000:>8.3f}ms {g['p50_us']/1000:>6.3f}ms "
                  f"{(g['p50_us']-d['p50_us'])/1000:>7.3f}ms {(g['p99_us']-d['p99_us'])/1000:>7.3f}ms "
                  f"{d['rps']:>10.0f} {g['rps']:>8.0f} {g['rps']/d['rps']:>5.2f} "
                  f"{g['cpu_us_per_request']:>8.1f}µs {d['cpu_us_per_request']:>14.1f}µs")
            if g["errors"] or d["errors"]:
                print(f"  errors: direct {d['errors']}, gateway {g['errors']}")

        # 1,000 streams open at once: each lasts ~4 s on the slow upstream.
        peak = 0.0
        body = stream % "hold"
        runner = threading.Thread(target=lambda: wrk(through, body, 1000, 6, script))
        runner.start()
        while runner.is_alive():
            peak = max(peak, rss_mb(gateway.pid))
            time.sleep(0.1)
        print(f"\ngateway resident memory: {peak:.1f} MB peak with 1,000 concurrent streams "
              f"(target < 100 MB); idle after: {rss_mb(gateway.pid):.1f} MB")

        targets = [
            ("gateway CPU per non-streaming request", rows[1][3]["cpu_us_per_request"], 100, "µs"),
            ("gateway CPU per 16-token stream", rows[3][3]["cpu_us_per_request"], 250, "µs"),
            ("added p50 at concurrency 1", (rows[0][3]["p50_us"] - rows[0][2]["p50_us"]) / 1000, 0.3, "ms"),
            ("resident memory at 1,000 streams", peak, 100, "MB"),
        ] + limit_targets
        scraping = scrape_cost(isobar, work, max(10, args.seconds))
        print(f"\nscraping 64 vLLM endpoints every 250 ms: {scraping['filter'] * 100:.2f} % of one core; "
              f"{scraping['full'] * 100:.2f} % if the engine ignored name[] and sent all 68 KB "
              f"(same node unscraped: {scraping['unscraped'] * 100:.2f} %)")
        targets.append(("scraping 64 vLLM endpoints every 250 ms", scraping["filter"] * 100, 2, "% core"))
        print()
        for label, value, target, unit in targets:
            print(f"{label:<40} {value:>8.2f} {unit}  target {target} {unit}  {'ok' if value <= target else 'OVER'}")
    finally:
        for process in (gateway, upstream, slow):
            stop(process)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
