"""One real `isobar serve` process operated as systemd and Kubernetes operate it (issue 8): SIGHUP reloads
its topology file while a stream is in flight (the stream ends whole, new requests see the new models), a
broken file is refused with its error logged and the running topology kept, and SIGTERM lets a stream in
flight finish before the process exits 0. Every process is started and stopped here, by PID."""
import json
import os
import signal
import threading
import time
import urllib.request

import pytest
from processes import BINARY, eventually, free_port, start, stop


def topology(http, engine, models):
    lines = "\n".join(f"  - {{name: {m}, deployments: [{{backend: engine, model: m}}]}}" for m in models)
    return (
        "mesh: {name: reload}\n"
        "regions: [{name: local}]\n"
        f"nodes: [{{name: n1, region: local, listen: '127.0.0.1:{http}'}}]\n"
        f"backends:\n  - {{name: engine, region: local, engine: vllm, url: 'http://127.0.0.1:{engine}', models: [m]}}\n"
        f"models:\n{lines}\n"
    )


def models(http):
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/v1/models", timeout=5) as answer:
        return sorted(m["id"] for m in json.load(answer)["data"])


def stream(http, results):
    """A streamed chat completion of 40 tokens (about 2 s on the emulated engine); its SSE data lines."""
    body = json.dumps({"model": "chat", "stream": True, "max_tokens": 40,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{http}/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        results.extend(line.decode().strip() for line in answer if line.startswith(b"data: "))


@pytest.fixture
def node(tmp_path):
    engine_port, http = free_port(), free_port()
    output = {"engine": [], "node": []}
    engine = start("engine", [BINARY, "emulate", "--profile", "fixed", "--tokens-per-second", "20",
                              "--listen", f"127.0.0.1:{engine_port}", "--model", "m"], r"listening on", output["engine"])
    path = tmp_path / "topology.yaml"
    path.write_text(topology(http, engine_port, ["chat"]))
    process = start("node", [BINARY, "serve", "--topology", str(path), "--node", "n1"],
                    r"node \S+ listening on http://", output["node"])
    try:
        yield process, path, http, engine_port, output["node"]
    finally:
        if process.poll() is None:
            stop(process)
        stop(engine)


def test_sighup_reloads_the_topology_without_dropping_a_stream(node):
    process, path, http, engine_port, log = node
    assert models(http) == ["chat"]
    streamed = []
    client = threading.Thread(target=stream, args=(http, streamed))
    client.start()
    time.sleep(0.3)
    path.write_text(topology(http, engine_port, ["chat", "extra"]))
    process.send_signal(signal.SIGHUP)
    assert eventually(lambda: models(http) == ["chat", "extra"]), "".join(log)
    assert eventually(lambda: any("topology reloaded" in line for line in log)), "".join(log)
    client.join(timeout=30)
    assert streamed and streamed[-1] == "data: [DONE]", streamed[-3:]
    assert len(streamed) > 40, "every token of the stream that began before the reload arrived"

    # A broken file is refused with its position, and the node goes on serving the topology it has.
    path.write_text(topology(http, engine_port, ["chat"]).replace("deployments:", "deploymints:", 1))
    process.send_signal(signal.SIGHUP)
    assert eventually(lambda: any("topology reload rejected" in line for line in log)), "".join(log)
    assert f"{path}:7: models[0].deployments: required key is missing" in "".join(log), "".join(log)
    assert process.poll() is None and models(http) == ["chat", "extra"]


def test_sigterm_lets_a_stream_finish_then_exits_0(node):
    process, _, http, _, log = node
    streamed = []
    client = threading.Thread(target=stream, args=(http, streamed))
    client.start()
    time.sleep(0.3)
    status = stop(process, signal.SIGTERM, timeout=20)
    client.join(timeout=30)
    assert status == 0, "".join(log)
    assert streamed and streamed[-1] == "data: [DONE]", streamed[-3:]
    assert len(streamed) > 40
