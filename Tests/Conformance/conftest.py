"""Starts `isobar up` on the conformance topologies (one open, one with virtual keys) for the whole session
and stops each by PID."""
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


KEYS = {
    "CONFORMANCE_MASTER": "sk-conformance-master",
    "CONFORMANCE_APP": "sk-conformance-app",
    "CONFORMANCE_CHAT_ONLY": "sk-conformance-chat-only",
    "CONFORMANCE_THRIFTY": "sk-conformance-thrifty",
}


def run_node(topology):
    """Runs `isobar up` on `topology` (with the keys' secrets in its environment) and yields its base URL;
    stops it by PID and checks it exited cleanly."""
    binary = os.environ.get("ISOBAR_BIN", str(ROOT / ".build" / "debug" / "isobar"))
    process = subprocess.Popen(
        [binary, "up", str(HERE / topology), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, **KEYS),
    )
    url = None
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"node gw \(local\) listening on (http://\S+)/v1", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        process.kill()
        process.wait()
        pytest.fail("isobar up did not start:\n" + "".join(seen))
    # Keep reading the node's output so a full pipe never blocks it.
    threading.Thread(target=lambda: seen.extend(process.stdout), daemon=True).start()
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.returncode == 0, f"isobar up exited with {process.returncode}:\n" + "".join(seen[-40:])


@pytest.fixture(scope="session")
def base_url():
    yield from run_node("topology.yaml")


@pytest.fixture(scope="session")
def keyed_url():
    """A node whose API needs a virtual key (topology-keys.yaml)."""
    yield from run_node("topology-keys.yaml")
