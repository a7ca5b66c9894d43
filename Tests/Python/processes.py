"""The real processes of the Python suites (Tests/Mesh, Tests/Conformance): free loopback ports, starting a
process until it says it is ready while its output keeps being collected, and stopping it by PID."""
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

# The isobar binary under test: ISOBAR_BIN (the Makefile sets it), else the debug build.
BINARY = os.environ.get("ISOBAR_BIN", str(Path(__file__).resolve().parents[2] / ".build" / "debug" / "isobar"))


# Ports handed out by this process: the kernel may give a port just released to the next bind, so two
# calls before anything listens could otherwise return the same port (two nodes on one gossip address).
_handed_out = set()


def free_port():
    """A port free for TCP and UDP on 127.0.0.1 (gossip uses both), never one handed out before."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            if port in _handed_out:
                continue
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port


def start(name, command, ready, lines, env=None, timeout=60, cwd=None):
    """Starts `command` and waits up to `timeout` s for an output line matching `ready`; fails the test
    with what it printed if none comes. Its output, from the start, goes on into `lines`."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               cwd=cwd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(ready, line):
            threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
            return process
    process.kill()
    process.wait()
    pytest.fail(f"{name} did not start:\n" + "".join(lines))


def stop(process, sig=signal.SIGTERM, timeout=20):
    """Sends `sig` and waits up to `timeout` s for the process to exit, then kills it: its exit status, None
    when it had to be killed."""
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def eventually(condition, timeout=5, interval=0.05):
    """Whether `condition()` holds within `timeout` seconds, asked every `interval` seconds (and once more
    at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
