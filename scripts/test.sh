#!/usr/bin/env bash
# `make test` after lint: the debug build and every test tier. After the unit tests (whose elapsed-time
# checks missed by up to 0.5 s with a build beside them), the release binary (static Swift runtime) and the
# simulator checks that need it run in the background at the lowest priority, in a build directory of their
# own (SwiftPM locks one per process): the soak, conformance and mesh tests wait on timers and sockets much
# of the time, and the release build takes that idle CPU instead of running after them. Simulations are
# deterministic, so their checks do not mind being slowed. The background job's output is printed once the tests are done; it is
# stopped if they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
MAKE=${MAKE:-make}
background=.build-release

"$SWIFT" build --build-tests
scripts/soundness.sh

"$SWIFT" test --skip-build --skip SoakTests
mkdir -p "$background"
# Job control puts the job in a process group of its own, so that stopping it stops the compilers it
# started. Not setsid: a new session is a scheduler autogroup of its own, which gets half the CPU whatever
# its nice value (the soak then made 29,000 requests instead of 72,000).
set -m
nice -n 19 "$MAKE" --no-print-directory release simulator-check RELEASE_SCRATCH="$background" \
    > "$background/make.log" 2>&1 &
job=$!
set +m
trap 'kill -- -"$job" 2>/dev/null || true' EXIT

"$SWIFT" test --skip-build --filter SoakTests
"$MAKE" --no-print-directory conformance mesh deploy-check

echo "test.sh: waiting for the release build and simulator checks (running since the soak began)"
status=0
wait "$job" || status=$?
trap - EXIT
cat "$background/make.log"
exit "$status"
