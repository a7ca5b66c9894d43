"""Five real `isobar serve` processes gossiping on loopback: they find each other, a killed node is
declared dead everywhere, a paused (SIGSTOP) node is declared dead and comes back when resumed, a restarted
node rejoins with a higher incarnation, garbage datagrams are dropped and counted, and a node stopped with
SIGTERM leaves the mesh. Every process is started and stopped by this test, by PID."""
import base64
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from processes import BINARY, free_port, start as start_process, stop as stop_process

NODES = [("n1", "r1"), ("n2", "r1"), ("n3", "r2"), ("n4", "r2"), ("n5", "r3")]
KEY = base64.b64encode(bytes(random.getrandbits(8) for _ in range(32))).decode()


class Mesh:
    def __init__(self, directory, backends="", models=""):
        self.http = {name: free_port() for name, _ in NODES}
        self.gossip = {name: free_port() for name, _ in NODES}
        nodes = "\n".join(
            f"  - {{name: {name}, region: {region}, listen: '127.0.0.1:{self.http[name]}', "
            f"gossip: '127.0.0.1:{self.gossip[name]}'}}"
            for name, region in NODES
        )
        self.topology = directory / "mesh.yaml"
        self.topology.write_text(
            "mesh: {name: five, gossip_key_env: TEST_GOSSIP_KEY}\n"
            "regions: [{name: r1}, {name: r2}, {name: r3}]\n"
            f"nodes:\n{nodes}\n"
            "backends:\n"
            "  - {name: b1, region: r1, engine: openai-compatible, url: 'http://127.0.0.1:9', models: [m]}\n"
            f"{backends}"
            "models:\n"
            "  - {name: chat, deployments: [{backend: b1, model: m}]}\n"
            f"{models}"
        )
        self.processes = {}
        self.output = {}

    def start(self, name):
        self.processes[name] = start_process(
            name,
            [BINARY, "serve", "--topology", str(self.topology), "--node", name, "--log-level", "notice"],
            r"node \S+ listening on http://",
            self.output.setdefault(name, []),
            env=dict(os.environ, TEST_GOSSIP_KEY=KEY),
        )

    def get(self, name, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http[name]}{path}", timeout=5) as answer:
            return json.loads(answer.read())

    def view(self, observer):
        """Member name -> (status, incarnation) as `observer` sees the mesh."""
        body = self.get(observer, "/v1/mesh")
        return {m["name"]: (m["status"], m.get("incarnation")) for m in body["members"] if not m["self"]}

    def wait(self, what, condition, timeout):
        start = time.monotonic()
        last = None
        while time.monotonic() - start < timeout:
            try:
                last = condition()
                if last is True:
                    return time.monotonic() - start
            except OSError as error:
                last = error
            time.sleep(0.1)
        self.dump()
        pytest.fail(f"not within {timeout} s: {what} (last: {last})")

    def all_see(self, observers, member, status):
        def check():
            views = {o: self.view(o).get(member, ("unknown", None))[0] for o in observers}
            return True if all(v == status for v in views.values()) else views
        return check

    def stop(self, name, sig=signal.SIGTERM):
        return stop_process(self.processes.pop(name), sig)

    def dump(self):
        for name, lines in self.output.items():
            print(f"--- {name}\n" + "".join(lines[-30:]))

    def close(self):
        for name, process in list(self.processes.items()):
            process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait()
        self.processes.clear()


@pytest.fixture
def mesh(tmp_path):
    mesh = Mesh(tmp_path)
    try:
        yield mesh
    finally:
        mesh.close()


def test_five_processes_detect_failures_pauses_and_restarts(mesh):
    names = [name for name, _ in NODES]
    for name in names:
        mesh.start(name)
    took = mesh.wait("all five nodes see each other alive", lambda: all(
        (lambda v: len(v) == 4 and all(s == "alive" for s, _ in v.values()))(mesh.view(n)) for n in names
    ), 15)
    print(f"joined in {took:.1f} s")
    assert mesh.get("n1", "/v1/mesh")["encrypted"] is True
    # Nobody healthy is declared dead (under packet loss too): watch for a while. A lost probe may make
    # a member suspect for a moment; it refutes, which is the point of suspicion.
    until = time.monotonic() + float(os.environ.get("ISOBAR_MESH_WATCH_S", "3"))
    while time.monotonic() < until:
        for n in names:
            assert all(s in ("alive", "suspect") for s, _ in mesh.view(n).values()), (n, mesh.view(n))
        time.sleep(0.25)
    assert all(mesh.get(n, "/v1/mesh")["counters"]["deaths"] == 0 for n in names)

    # Kill -9: suspected, then declared dead by every other node.
    old_incarnation = mesh.view("n1")["n5"][1]
    mesh.processes["n5"].kill()
    mesh.processes.pop("n5").wait()
    took = mesh.wait("n5 dead everywhere after kill -9", mesh.all_see(names[:4], "n5", "dead"), 20)
    print(f"killed node dead everywhere in {took:.1f} s")

    # SIGSTOP long enough to be declared dead; resumed, it refutes and is alive again everywhere.
    paused = mesh.processes["n4"]
    paused.send_signal(signal.SIGSTOP)
    took = mesh.wait("paused n4 dead everywhere", mesh.all_see(names[:3], "n4", "dead"), 20)
    print(f"paused node dead everywhere in {took:.1f} s")
    paused.send_signal(signal.SIGCONT)
    took = mesh.wait("resumed n4 alive everywhere", mesh.all_see(names[:3], "n4", "alive"), 15)
    print(f"resumed node alive again in {took:.1f} s")
    mesh.wait("n4 sees the others alive", lambda: all(
        mesh.view("n4").get(n, ("?",))[0] == "alive" for n in names[:3]), 10)

    # Restarted: rejoins with a higher incarnation (its boot time).
    time.sleep(1.1)
    mesh.start("n5")
    mesh.wait("restarted n5 alive everywhere", mesh.all_see(names[:4], "n5", "alive"), 15)
    assert mesh.view("n1")["n5"][1] > old_incarnation

    # Per-region health shows node states; isobar status prints them as a table.
    health = mesh.get("n1", "/v1/regions/r3/health")
    assert [(n["name"], n["status"]) for n in health["nodes"]] == [("n5", "alive")]
    status = subprocess.run(
        [BINARY, "status", "--node", f"http://127.0.0.1:{mesh.http['n2']}"],
        capture_output=True, text=True, timeout=30,
    )
    assert status.returncode == 0, status.stderr
    assert re.search(r"^n5\s+r3\s+alive", status.stdout, re.M), status.stdout

    # Garbage is dropped and counted; the node stays up and in the mesh. Each kind goes 10 times: under
    # packet loss some copies are lost on the way.
    target = ("127.0.0.1", mesh.gossip["n1"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for _ in range(10):
            udp.sendto(b"", target)
            udp.sendto(b"\x07hello", target)
            udp.sendto(b"\x01" + os.urandom(80), target)
            udp.sendto(b"\x00" + os.urandom(40), target)
            udp.sendto(b"\x01" + os.urandom(3000), target)
    def dropped():
        counts = mesh.get("n1", "/v1/mesh")["counters"]["dropped"]
        ok = counts["malformed"] >= 2 and counts["unauthenticated"] >= 2 and counts["oversized"] >= 1
        return True if ok else counts
    mesh.wait("garbage counted as dropped", dropped, 5)
    with urllib.request.urlopen(f"http://127.0.0.1:{mesh.http['n1']}/metrics", timeout=5) as answer:
        metrics = answer.read().decode()
    malformed = re.search(r'^isobar_gossip_packets_dropped_total\{reason="malformed"\} (\d+)', metrics, re.M)
    assert malformed and int(malformed.group(1)) >= 2, metrics
    assert re.search(r'^isobar_mesh_members\{status="alive"\} 5(\.0)?$', metrics, re.M), metrics
    assert mesh.view("n1")["n2"][0] == "alive"

    # SIGTERM: the node announces it leaves and exits 0.
    assert mesh.stop("n3") == 0
    mesh.wait("n3 left everywhere", mesh.all_see(["n1", "n2", "n4", "n5"], "n3", "left"), 10)


def test_the_same_under_packet_loss_in_a_network_namespace():
    """Runs the test above again inside a network namespace of its own whose loopback drops 10 % of UDP
    packets (netem when the kernel has it, else an iptables random-drop rule), watching for false deaths
    for 20 s after the join."""
    if os.environ.get("ISOBAR_MESH_INSIDE"):
        pytest.skip("already inside the namespace")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    namespace = f"isobar-loss-{os.getpid()}"
    def ip(*args, check=True):
        return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)
    try:
        ip("netns", "add", namespace)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot create a network namespace: {error}")
    try:
        inside = ["ip", "netns", "exec", namespace]
        subprocess.run(inside + ["ip", "link", "set", "lo", "up"], check=True)
        netem = subprocess.run(inside + ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "10%"],
                               capture_output=True, text=True)
        how = "netem loss 10%"
        if netem.returncode != 0:
            drop = subprocess.run(inside + ["iptables", "-A", "INPUT", "-p", "udp", "-m", "statistic",
                                            "--mode", "random", "--probability", "0.1", "-j", "DROP"],
                                  capture_output=True, text=True)
            if drop.returncode != 0:
                pytest.skip(f"no way to drop packets here: {netem.stderr.strip()}; {drop.stderr.strip()}")
            how = "iptables random drop of 10 % of UDP (no netem in this kernel)"
        print(f"packet loss: {how}")
        run = subprocess.run(
            inside + [os.sys.executable, "-m", "pytest", "-q", "-s", str(Path(__file__)), "-k", "five_processes"],
            env=dict(os.environ, ISOBAR_MESH_INSIDE="1", ISOBAR_MESH_WATCH_S="20"),
            capture_output=True, text=True, timeout=300,
        )
        print(run.stdout[-3000:])
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        counted = subprocess.run(inside + ["iptables", "-L", "INPUT", "-v", "-x", "-n"], capture_output=True, text=True)
        if how.startswith("iptables"):
            dropped = int(counted.stdout.splitlines()[2].split()[0])
            print(f"packets dropped: {dropped}")
            assert dropped > 0
    finally:
        ip("netns", "del", namespace, check=False)


def test_a_node_whose_gossip_port_is_taken_refuses_to_start(tmp_path):
    mesh = Mesh(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", mesh.gossip["n1"]))
        run = subprocess.run(
            [BINARY, "serve", "--topology", str(mesh.topology), "--node", "n1"],
            capture_output=True, text=True, timeout=60, env=dict(os.environ, TEST_GOSSIP_KEY=KEY),
        )
    assert run.returncode != 0
    assert f"gossip cannot listen on udp 127.0.0.1:{mesh.gossip['n1']}: address already in use" in run.stderr, run.stderr


def test_a_backend_only_its_region_reaches_is_served_through_a_node_there(tmp_path):
    """n1 (region r1) gets requests for `near`, served only by an engine in r2 that only r2 reaches
    (`reachable_from: region`): it forwards them to n3, the live node of r2, with the hop header; the
    stream passes through both hops as it is generated. A forwarded request is never forwarded again."""
    engine_port = free_port()
    engine = subprocess.Popen(
        [BINARY, "emulate", "--profile", "fixed", "--listen", f"127.0.0.1:{engine_port}",
         "--tokens-per-second", "20", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    mesh = Mesh(
        tmp_path,
        backends=(
            f"  - {{name: e3, region: r2, engine: vllm, url: 'http://127.0.0.1:{engine_port}', models: [m], "
            "reachable_from: region}\n"
            f"  - {{name: e1, region: r1, engine: vllm, url: 'http://127.0.0.1:{engine_port}', models: [m], "
            "reachable_from: region}\n"
        ),
        models="  - {name: near, deployments: [{backend: e3, model: m}]}\n"
               "  - {name: far, deployments: [{backend: e1, model: m}]}\n",
    )
    try:
        mesh.wait("the engine listens", lambda: socket.create_connection(("127.0.0.1", engine_port), 1).close() or True, 30)
        mesh.start("n1")
        mesh.start("n3")
        mesh.wait("n1 sees n3 alive", lambda: mesh.view("n1").get("n3", ("?",))[0] == "alive", 15)

        def post(node, body, headers=None):
            request = urllib.request.Request(
                f"http://127.0.0.1:{mesh.http[node]}/v1/chat/completions",
                data=json.dumps(body).encode(),
                headers={"content-type": "application/json", **(headers or {})},
            )
            return urllib.request.urlopen(request, timeout=30)

        # Streaming: 20 tokens at 20 tokens/s reach the client one by one, not in one piece at the end.
        started = time.monotonic()
        arrivals = []
        with post("n1", {"model": "near", "stream": True, "max_tokens": 20,
                         "messages": [{"role": "user", "content": "hi"}]}) as answer:
            assert answer.status == 200
            for line in answer:
                if line.startswith(b"data: {") and b'"content"' in line:
                    arrivals.append(time.monotonic() - started)
                if line.strip() == b"data: [DONE]":
                    break
        assert len(arrivals) >= 10, arrivals
        print(f"forwarded stream: first token at {arrivals[0]:.2f} s, last at {arrivals[-1]:.2f} s")
        assert arrivals[-1] - arrivals[0] > 0.5, arrivals
        assert arrivals[0] < arrivals[-1] / 2, arrivals

        # Not streaming: the whole answer, relayed.
        with post("n1", {"model": "near", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}) as answer:
            body = json.loads(answer.read())
        assert body["choices"][0]["message"]["content"], body

        def counter(node, direction, sender):
            with urllib.request.urlopen(f"http://127.0.0.1:{mesh.http[node]}/metrics", timeout=5) as answer:
                text = answer.read().decode()
            found = re.search(
                r'^isobar_forwarded_requests_total\{direction="%s",node="%s"\} (\d+)' % (direction, sender), text, re.M)
            return int(found.group(1)) if found else 0
        assert counter("n1", "out", "n3") == 2
        assert counter("n3", "in", "n1") == 2

        # n3 must not send a forwarded request on: `far` is only reachable from r1.
        try:
            post("n3", {"model": "far", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]},
                 headers={"x-isobar-hop": "n1"})
            pytest.fail("a forwarded request for another region's private backend was served")
        except urllib.error.HTTPError as error:
            assert error.code == 503, error.code
            assert json.loads(error.read())["error"]["message"]
        with urllib.request.urlopen(f"http://127.0.0.1:{mesh.http['n3']}/metrics", timeout=5) as answer:
            assert 'isobar_forwarded_requests_total{direction="out"' not in answer.read().decode()
    finally:
        mesh.close()
        engine.kill()
        engine.wait()
