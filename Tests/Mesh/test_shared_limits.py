"""Three real `isobar serve` processes sharing one real redis-server (issue 7): a key's 60 requests a
minute are 60 across the three nodes, not 180; a budget is spent once; while Redis is down the nodes keep
serving on their own counters, each a third of the limit, and go back to the shared store when it returns;
a model's response cache kept in Redis answers on every node.
The engine is reachable from region r1 only, so n3 (region r2) forwards every request to n1 or n2, signed
for its key: counted once, at n3. Every process (redis-server, an emulated engine, the nodes) is started
and stopped here, by PID."""
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from processes import BINARY, eventually, free_port, start as start_process, stop as stop_process

NODES = ["n1", "n2", "n3"]
REGIONS = {"n1": "r1", "n2": "r1", "n3": "r2"}
SECRETS = {"alpha": "sk-alpha-test", "beta": "sk-beta-test", "gamma": "sk-gamma-test", "delta": "sk-delta-test",
           "omega": "sk-omega-test"}


class Fleet:
    def __init__(self, directory):
        self.directory = directory
        self.processes = {}
        self.output = {}
        self.redis_port = free_port()
        self.http = {name: free_port() for name in NODES}

    def spawn(self, name, command, ready, env=None):
        self.processes[name] = start_process(name, command, ready, self.output.setdefault(name, []), env=env)

    def start_redis(self):
        self.spawn(
            "redis",
            [shutil.which("redis-server"), "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            r"Ready to accept connections",
        )

    def stop(self, name):
        stop_process(self.processes.pop(name))

    def start(self):
        self.start_redis()
        engine_port = free_port()
        self.spawn(
            "engine",
            [BINARY, "emulate", "--profile", "instant", "--listen", f"127.0.0.1:{engine_port}", "--model", "m",
             "--output-tokens", "16"],
            r"listening on",
        )
        nodes = "\n".join(
            f"  - {{name: {n}, region: {REGIONS[n]}, listen: '127.0.0.1:{self.http[n]}'}}" for n in NODES
        )
        keys = "\n".join(
            f"    - {{id: {key}, secret_env: KEY_{key.upper()}{limits}}}"
            for key, limits in [
                ("alpha", ", rpm: 60"),
                ("beta", ", budget: {usd: 30, period: day}"),
                ("gamma", ", rpm: 30"),
                ("delta", ", tpm: 1000"),
                ("omega", ", rpm: 1200, tpm: 10000000, max_concurrent: 1000"),
            ]
        )
        topology = self.directory / "shared.yaml"
        topology.write_text(
            "mesh: {name: shared}\n"
            "regions: [{name: r1}, {name: r2}]\n"
            f"nodes:\n{nodes}\n"
            "backends:\n"
            f"  - {{name: gpu, region: r1, engine: vllm, url: 'http://127.0.0.1:{engine_port}', models: [m],\n"
            "     reachable_from: region, price: {input_per_mtok: 1000000, output_per_mtok: 1000000}}\n"
            "models:\n"
            "  - {name: chat, deployments: [{backend: gpu, model: m}]}\n"
            "  - {name: cached, deployments: [{backend: gpu, model: m}], cache: {enabled: true, store: redis}}\n"
            "keys:\n"
            "  master: {secret_env: MASTER_KEY}\n"
            f"  virtual_keys:\n{keys}\n"
            f"redis: {{url: 'redis://127.0.0.1:{self.redis_port}', timeout_ms: 100}}\n"
        )
        env = dict(os.environ, MASTER_KEY="sk-master-test")
        env.update({f"KEY_{k.upper()}": v for k, v in SECRETS.items()})
        for name in NODES:
            self.spawn(
                name,
                [BINARY, "serve", "--topology", str(topology), "--node", name, "--log-level", "notice"],
                r"node \S+ listening on http://",
                env=env,
            )

    def redis(self, *command):
        """What redis-cli prints for one command to the fleet's Redis."""
        return subprocess.run([shutil.which("redis-cli"), "-p", str(self.redis_port), *command],
                              capture_output=True, text=True, check=True, timeout=10).stdout.strip()

    def call(self, node, key, path="/v1/chat/completions", body=None):
        """(status, headers, json body) of one request."""
        data = None
        if path == "/v1/chat/completions":
            data = json.dumps(body or {"model": "chat", "max_tokens": 4,
                                       "messages": [{"role": "user", "content": "hi"}]}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http[node]}{path}", data=data,
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.headers, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.headers, json.loads(error.read() or b"null")

    def raw(self, node, key, body):
        """(status, headers, bytes) of one chat completion, the body exactly as sent."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http[node]}/v1/chat/completions", data=json.dumps(body).encode(),
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, answer.read()

    def metrics(self, node):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http[node]}/metrics", timeout=5) as answer:
            return answer.read().decode()

    def logged(self, name, text, timeout=5):
        """Whether `name` logs a line containing `text` within `timeout` seconds."""
        return eventually(lambda: any(text in line for line in list(self.output[name])), timeout)

    def dump(self):
        for name, lines in self.output.items():
            print(f"--- {name}\n" + "".join(lines[-30:]))

    def close(self):
        for name in list(self.processes):
            self.processes[name].send_signal(signal.SIGCONT)
            self.stop(name)


@pytest.fixture
def fleet(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (make bootstrap installs it)")
    fleet = Fleet(tmp_path)
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.close()


def leased(fleet):
    """Requests the three nodes admitted on their leases, without asking Redis."""
    return sum(int(m.group(1)) for n in NODES
               for m in re.finditer(r"^isobar_limit_leased_decisions_total (\d+)$", fleet.metrics(n), re.M))


def burst(fleet, key, count):
    """`count` requests at once, spread over the three nodes; the statuses."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        calls = [pool.submit(fleet.call, NODES[i % 3], key) for i in range(count)]
        return [c.result() for c in calls]


def test_three_nodes_enforce_one_limit_and_spend_a_budget_once(fleet):
    answers = burst(fleet, SECRETS["alpha"], 120)
    accepted = sum(1 for status, _, _ in answers if status == 200)
    refused = [(h, b) for status, h, b in answers if status == 429]
    if not 59 <= accepted <= 61:
        fleet.dump()
    assert 59 <= accepted <= 61, f"{accepted} of 120 accepted across three nodes with 60 RPM"
    assert len(refused) == 120 - accepted
    headers, body = refused[0]
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert 50 <= int(headers["retry-after"]) <= 61
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert headers["x-ratelimit-remaining-requests"] == "0"

    # A dollar a token: each answer costs 20-25 USD (its prompt and 4 completion tokens) of a 30 USD budget, spent
    # once across the nodes: two answers, then refusals everywhere.
    statuses = [fleet.call(node, SECRETS["beta"])[0] for node in NODES * 2]
    assert statuses[:2] == [200, 200] and set(statuses[2:]) == {429}, statuses
    status, _, body = fleet.call("n3", SECRETS["beta"])
    assert status == 429 and body["error"]["code"] == "budget_exceeded"
    spent = []
    for node in NODES:
        status, _, usage = fleet.call(node, "sk-master-test", path="/v1/usage")
        assert status == 200 and usage["store"] == "redis"
        beta = next(k for k in usage["keys"] if k["id"] == "beta")
        spent.append(beta["budget"]["spent_usd"])
    assert len(set(spent)) == 1 and 40 <= spent[0] < 50, f"every node reads one spend: {spent}"
    # n3 served its share through r1's nodes, which accepted the signed hops without counting them again.
    assert re.search(r'^isobar_forwarded_requests_total\{direction="out",node="n[12]"\} [1-9]', fleet.metrics("n3"), re.M)
    received = "".join(fleet.metrics(n) for n in ["n1", "n2"])
    assert re.search(r'^isobar_forwarded_requests_total\{direction="in",node="n3"\} [1-9]', received, re.M)


def test_redis_outage_falls_back_to_a_share_of_the_limit_and_recovers(fleet):
    fleet.stop("redis")
    started = time.monotonic()
    answers = burst(fleet, SECRETS["gamma"], 60)
    elapsed = time.monotonic() - started
    accepted = sum(1 for status, _, _ in answers if status == 200)
    # Each node counts alone, a third of 30 RPM (the first request per node may wait timeout_ms first).
    if not 29 <= accepted <= 31:
        fleet.dump()
        print(fleet.metrics("n1"))
    assert 29 <= accepted <= 31, f"{accepted} accepted while Redis was down"
    assert elapsed < 10, f"requests hung on the store: {elapsed:.1f} s"
    for node in NODES:
        text = fleet.metrics(node)
        assert re.search(r"^isobar_limit_store_up 0", text, re.M)
        assert re.search(r"^isobar_limit_store_outages_total 1$", text, re.M)
        assert re.search(r'^isobar_limit_local_decisions_total\{on_failure="local"\} 20$', text, re.M)
    assert fleet.logged("n1", "limit store unreachable")

    fleet.start_redis()
    def back():
        return all(re.search(r"^isobar_limit_store_up 1", fleet.metrics(n), re.M) for n in NODES)
    assert eventually(back, 10, 0.2), "back on the shared store"
    assert fleet.logged("n1", "limit store back")
    # Shared again: alpha's fresh limit holds across the nodes.
    answers = burst(fleet, SECRETS["alpha"], 90)
    accepted = sum(1 for status, _, _ in answers if status == 200)
    if not 59 <= accepted <= 61:
        fleet.dump()
    assert 59 <= accepted <= 61, f"{accepted} accepted once Redis was back"


def test_token_reservations_are_reconciled_through_the_store(fleet):
    # Each request reserves its prompt and all 700 of its max_tokens out of 1000 a minute, and uses its prompt
    # and 16: once the first is settled in Redis, a second fits, on another node.
    body = {"model": "chat", "max_tokens": 700, "messages": [{"role": "user", "content": "hi"}]}
    status, headers, _ = fleet.call("n1", SECRETS["delta"], body=body)
    assert status == 200
    reserved = 1000 - int(headers["x-ratelimit-remaining-tokens"])
    assert 700 < reserved < 720, headers
    deadline = time.monotonic() + 3
    while True:
        status, headers, answer = fleet.call("n2", SECRETS["delta"], body=body)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200, f"the first request's reservation was never reconciled: {answer}"
    used = 1000 - int(headers["x-ratelimit-remaining-tokens"]) - reserved
    assert 16 < used < 40, f"the first request counts what it used: {used} tokens"
    # What both used is counted: a request reserving nearly the whole minute no longer fits.
    status, headers, answer = fleet.call("n3", SECRETS["delta"], body=dict(body, max_tokens=985))
    assert status == 429 and answer["error"]["code"] == "rate_limit_exceeded", answer
    assert 50 <= int(headers["retry-after"]) <= 61

    # The windows are a hash of at most 61 one-second buckets per key, whatever the rate.
    fields = int(fleet.redis("HLEN", "isobar:shared:win:key:delta"))
    assert 3 <= fields <= 3 + 2 * 61, fields

    # A server that lost its scripts (flushed, or restarted between two calls) is sent them again: no outage.
    assert fleet.redis("SCRIPT", "FLUSH") == "OK"
    assert [fleet.call(node, SECRETS["alpha"])[0] for node in NODES] == [200, 200, 200]
    for node in NODES:
        assert re.search(r"^isobar_limit_store_outages_total 0$", fleet.metrics(node), re.M), node


def test_a_shared_response_cache_answers_on_every_node_and_never_another_key(fleet):
    body = {"model": "cached", "temperature": 0, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    status, headers, first = fleet.raw("n1", SECRETS["alpha"], body)
    assert status == 200 and headers["x-isobar-cache"] == "miss"
    # n2 never saw the request, and n3 cannot even reach the engine: both answer from Redis, byte for byte.
    for node in ["n2", "n3"]:
        status, headers, again = fleet.raw(node, SECRETS["alpha"], dict(reversed(list(body.items()))))
        assert status == 200 and headers["x-isobar-cache"] == "hit", node
        assert again == first, node
    # Another key's identical request is its own.
    status, headers, _ = fleet.raw("n2", SECRETS["gamma"], body)
    assert headers["x-isobar-cache"] == "miss"
    # A stream is replayed as the same events elsewhere.
    stream = dict(body, stream=True)
    _, headers, events = fleet.raw("n2", SECRETS["alpha"], stream)
    assert headers["x-isobar-cache"] == "miss" and events.endswith(b"data: [DONE]\n\n")
    _, headers, replayed = fleet.raw("n1", SECRETS["alpha"], stream)
    assert headers["x-isobar-cache"] == "hit" and headers["content-type"].startswith("text/event-stream")
    assert replayed == events
    assert re.search(r'^isobar_response_cache_total\{model="cached",result="hit"\} 1', fleet.metrics("n3"), re.M)
    # Without Redis the cache is a miss (after at most timeout_ms), not an error.
    fleet.stop("redis")
    started = time.monotonic()
    status, headers, _ = fleet.raw("n2", SECRETS["alpha"], dict(body, max_tokens=9))
    assert status == 200 and headers["x-isobar-cache"] == "miss"
    assert time.monotonic() - started < 2


def test_a_busy_key_is_admitted_on_leases_and_still_gets_exactly_its_limit(fleet):
    # Far from its 1200 a minute, each node admits omega on leases Redis granted (counted there at once);
    # near it, Redis decides every request. Never more than the limit.
    answers = burst(fleet, SECRETS["omega"], 1300)
    accepted = sum(1 for status, _, _ in answers if status == 200)
    assert accepted <= 1200, f"{accepted} of 1300 accepted with 1200 RPM"
    assert leased(fleet) >= 200, f"only {leased(fleet)} requests were admitted on leases"
    # A lease lasts a second; what it did not use is given back: the rest of the minute's 1200 is there.
    time.sleep(2.5)
    more = burst(fleet, SECRETS["omega"], 1200 - accepted + 30)
    total = accepted + sum(1 for status, _, _ in more if status == 200)
    if total != 1200:
        fleet.dump()
    assert total == 1200, f"{total} accepted in all with 1200 RPM"
    # Redis counted each admitted request once, leased or not.
    assert fleet.redis("HGET", "isobar:shared:win:key:omega", "r") == "1200"
    # The slots the nodes held for their leases are given back once the requests are done.
    assert eventually(lambda: fleet.redis("HLEN", "isobar:shared:held:key:omega") == "0", 5, 0.2)
