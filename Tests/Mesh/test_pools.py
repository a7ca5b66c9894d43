"""A pool of interchangeable nodes (`pool: true`), as a Kubernetes Deployment runs them (issue 8): real
`isobar serve` processes of one pool, each bound to its own loopback address as pods have their own IPs,
find each other through the mesh's seeds, a named node of another region learns them by gossip and
forwards to them the requests for a backend only their region reaches; a member that leaves is passed over
and one that starts later (scaling out) is used. Every process is started and stopped here, by PID."""
import base64
import json
import os
import random
import re
import subprocess
import urllib.request

import pytest
from processes import BINARY, eventually, free_port, start, stop


KEY = base64.b64encode(bytes(random.getrandbits(8) for _ in range(32))).decode()
ENV = dict(os.environ, TEST_GOSSIP_KEY=KEY)
# Each member binds its own loopback address (127.0.0.0/8 is all loopback on Linux), like a pod its IP.
MEMBERS = {"a": "127.0.0.2", "b": "127.0.0.3", "c": "127.0.0.4"}


@pytest.fixture
def mesh(tmp_path):
    engine_port, east_http, east_gossip, pool_http, pool_gossip = (free_port() for _ in range(5))
    seeds = ", ".join(f"'{host}:{pool_gossip}'" for host in MEMBERS.values())
    path = tmp_path / "pools.yaml"
    path.write_text(
        f"mesh: {{name: pools, gossip_key_env: TEST_GOSSIP_KEY, seeds: [{seeds}]}}\n"
        "regions: [{name: east}, {name: west}]\n"
        "nodes:\n"
        f"  - {{name: e1, region: east, listen: '127.0.0.1:{east_http}', gossip: '127.0.0.1:{east_gossip}'}}\n"
        f"  - {{name: west-gw, region: west, pool: true, listen: '0.0.0.0:{pool_http}', gossip: '0.0.0.0:{pool_gossip}'}}\n"
        "backends:\n"
        f"  - {{name: w1, region: west, engine: vllm, url: 'http://127.0.0.1:{engine_port}', models: [m], "
        "reachable_from: region}\n"
        "models:\n  - {name: chat, deployments: [{backend: w1, model: m}]}\n"
    )
    processes, output = {}, {}

    def run(name, *arguments):
        processes[name] = start(name, [BINARY, "serve", "--topology", str(path), *arguments, "--log-level", "info"],
                                r"node \S+ listening on http://", output.setdefault(name, []), env=ENV)
        return processes[name]

    processes["engine"] = start("engine", [BINARY, "emulate", "--profile", "instant", "--listen",
                                           f"127.0.0.1:{engine_port}", "--model", "m"], r"listening on", [])
    try:
        yield run, processes, output, path, east_http, pool_http
    finally:
        for process in processes.values():
            if process.poll() is None:
                stop(process)


def get(http, path, host="127.0.0.1"):
    with urllib.request.urlopen(f"http://{host}:{http}{path}", timeout=5) as answer:
        return answer.read().decode()


def members(http, host="127.0.0.1"):
    """The members this node sees alive, by name: their region and pool."""
    body = json.loads(get(http, "/v1/mesh", host))
    return {m["name"]: (m["region"], m.get("pool")) for m in body["members"] if m["status"] == "alive"}


def chat(http):
    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{http}/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def forwarded_out(http):
    match = re.search(r'isobar_forwarded_requests_total\{direction="out",node="([^"]+)"\} (\d+)',
                      get(http, "/metrics"))
    return (match.group(1), int(match.group(2))) if match else (None, 0)


def test_a_pool_scales_in_and_out_behind_a_named_node(mesh):
    run, processes, output, path, east_http, pool_http = mesh
    for name in ("a", "b"):
        run(name, "--node", "west-gw", "--instance", name, "--bind", MEMBERS[name])
    # The members found each other through the seeds alone: the named node is not up yet.
    assert eventually(lambda: "west-gw/b" in members(pool_http, MEMBERS["a"]), timeout=10), "".join(output["a"])
    assert members(pool_http, MEMBERS["b"])["west-gw/a"] == ("west", "west-gw")

    run("e1", "--node", "e1")
    assert eventually(lambda: {"west-gw/a", "west-gw/b"} <= members(east_http).keys(), timeout=10), "".join(output["e1"])
    west = json.loads(get(east_http, "/v1/regions/west/health"))
    assert sorted((n["name"], n["pool"], n["status"]) for n in west["nodes"]) == [
        ("west-gw/a", "west-gw", "alive"), ("west-gw/b", "west-gw", "alive")]

    # w1 is reached from west only: e1 forwards through a member, at the address it gossiped.
    assert all(chat(east_http) == 200 for _ in range(10))
    assert forwarded_out(east_http) == ("west-gw", 10), "forwards are counted by pool, not by pod"

    # Scale in: a leaves the mesh on SIGTERM and e1 goes on through b.
    assert stop(processes.pop("a")) == 0
    assert eventually(lambda: "west-gw/a" not in members(east_http), timeout=10)
    assert all(chat(east_http) == 200 for _ in range(10))

    # Scale out: c, started now, joins and is used once b is gone too.
    run("c", "--node", "west-gw", "--instance", "c", "--bind", MEMBERS["c"])
    assert eventually(lambda: "west-gw/c" in members(east_http), timeout=10), "".join(output["c"])
    assert stop(processes.pop("b")) == 0
    assert eventually(lambda: members(east_http).keys() == {"e1", "west-gw/c"}, timeout=10)
    assert all(chat(east_http) == 200 for _ in range(10))
    assert forwarded_out(east_http) == ("west-gw", 30)


def test_pool_mistakes_are_refused_before_serving(mesh):
    _, _, _, path, _, _ = mesh

    def refused(*arguments):
        result = subprocess.run([BINARY, "serve", "--topology", str(path), *arguments], env=ENV,
                                capture_output=True, text=True, timeout=30)
        assert result.returncode != 0
        return result.stderr

    assert "--instance: 'a/b' cannot name a node" in refused("--node", "west-gw", "--instance", "a/b")
    assert "--instance is for a pool's nodes" in refused("--node", "e1", "--instance", "x")
    assert "--bind and --advertise are for a pool's nodes" in refused("--node", "e1", "--bind", "127.0.0.5")
    assert "west-gw (pool)" in refused("--node", "nobody")
    assert "--advertise: 0.0.0.0 is not an address" in refused("--node", "west-gw", "--advertise", "0.0.0.0")
