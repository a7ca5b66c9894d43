"""Starts `isobar up` on the conformance topologies (one open, one with virtual keys) for the whole session
and stops each by PID."""
import os
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "Tests" / "Python"))
from processes import BINARY, start, stop  # noqa: E402

# What `isobar up` prints once its node listens, with its base URL.
LISTENING = r"node gw \(local\) listening on (http://\S+)/v1"


KEYS = {
    "CONFORMANCE_MASTER": "sk-conformance-master",
    "CONFORMANCE_APP": "sk-conformance-app",
    "CONFORMANCE_CHAT_ONLY": "sk-conformance-chat-only",
    "CONFORMANCE_THRIFTY": "sk-conformance-thrifty",
}


def run_node(topology):
    """Runs `isobar up` on `topology` (with the keys' secrets in its environment) and yields its base URL;
    stops it by PID and checks it exited cleanly."""
    seen = []
    process = start(
        "isobar up",
        [BINARY, "up", str(HERE / topology), "--log-level", "warning"],
        LISTENING,
        seen,
        env=dict(os.environ, **KEYS),
        cwd=ROOT,
    )
    url = next(match.group(1) for line in seen if (match := re.search(LISTENING, line)))
    try:
        yield url
    finally:
        status = stop(process, timeout=15)
        assert status == 0, f"isobar up exited with {status}:\n" + "".join(seen[-40:])


@pytest.fixture(scope="session")
def base_url():
    yield from run_node("topology.yaml")


@pytest.fixture(scope="session")
def keyed_url():
    """A node whose API needs a virtual key (topology-keys.yaml)."""
    yield from run_node("topology-keys.yaml")
