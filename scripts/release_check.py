#!/usr/bin/env python3
"""Checks a release build of isobar (`make release`): it must run without a Swift toolchain, so it may link
dynamically only against the system libraries deploy/README.md lists (glibc, libstdc++/libgcc, zlib,
hiredis). Prints its size and how long a node takes from exec to serving. Standard library only."""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

# Shared objects a release binary may need on the machine that runs it (Debian package in parentheses in
# deploy/README.md); anything else (libswiftCore, libFoundation, ...) means the Swift runtime leaked in.
ALLOWED = re.compile(
    r"^(linux-vdso|ld-linux[-\w.]*|libc|libm|libdl|libpthread|librt|libutil|libresolv|libstdc\+\+|libgcc_s"
    r"|libz|libhiredis)\.so"
)


def fail(message):
    print(f"release_check: {message}", file=sys.stderr)
    sys.exit(1)


def linked_libraries(binary):
    """The shared objects `ldd` resolves for `binary`, by file name."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    names = []
    for line in out.splitlines():
        name = line.strip().split(" ")[0]
        if "not found" in line:
            fail(f"{binary}: {name} not found")
        names.append(os.path.basename(name))
    return names


def start_up_seconds(binary):
    """Seconds from exec until `isobar serve` says it listens, on a one-node topology (best of three)."""
    best = None
    with tempfile.TemporaryDirectory() as work:
        # Port 0: the node binds a free port and says which.
        topology = os.path.join(work, "t.yaml")
        with open(topology, "w") as f:
            f.write(
                "mesh: {name: release}\nregions: [{name: r}]\n"
                "nodes: [{name: n, region: r, listen: '127.0.0.1:0'}]\n"
                "backends: [{name: b, region: r, engine: vllm, url: 'http://127.0.0.1:9', models: [m]}]\n"
                "models: [{name: chat, deployments: [{backend: b, model: m}]}]\n"
            )
        for _ in range(3):
            started = time.monotonic()
            process = subprocess.Popen([binary, "serve", "--topology", topology, "--node", "n"],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                for line in process.stdout:
                    if "listening on http://" in line:
                        break
                else:
                    fail(f"{binary} serve exited without listening (status {process.wait()})")
                elapsed = time.monotonic() - started
                best = elapsed if best is None else min(best, elapsed)
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    status = process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    fail(f"{binary} serve did not stop on SIGTERM")
            if status != 0:
                fail(f"{binary} serve exited {status} on SIGTERM, not 0")
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("binary", nargs="?", default=".build/release/isobar")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        fail(f"{args.binary}: no such executable (make release builds it)")
    libraries = linked_libraries(args.binary)
    extra = [name for name in libraries if not ALLOWED.match(name)]
    if extra:
        fail(f"{args.binary} links against {', '.join(extra)}: build it with --static-swift-stdlib")
    size = os.path.getsize(args.binary) / 1e6
    with tempfile.TemporaryDirectory() as work:
        stripped = os.path.join(work, "isobar")
        subprocess.run(["strip", "-o", stripped, args.binary], check=True)
        stripped_size = os.path.getsize(stripped) / 1e6
    print(f"release: {args.binary}: {size:.1f} MB ({stripped_size:.1f} MB stripped, as the image installs it), "
          f"links only {', '.join(sorted(set(libraries)))}")
    print(f"release: start-up to serving {start_up_seconds(args.binary) * 1000:.0f} ms (best of 3)")


if __name__ == "__main__":
    main()
