"""Starts `isobar up` on the conformance topology for the whole session and stops it by PID."""
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


@pytest.fixture(scope="session")
def base_url():
    binary = os.environ.get("ISOBAR_BIN", str(ROOT / ".build" / "debug" / "isobar"))
    process = subprocess.Popen(
        [binary, "up", str(HERE / "topology.yaml"), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
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
