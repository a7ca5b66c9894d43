#!/usr/bin/env bash
# Checks the architecture rules the compiler cannot: pure targets stay pure, build output stays out of
# git, topology examples validate. Prints every violation, exits 1 if any.
set -uo pipefail
cd "$(dirname "$0")/.."

fail=0
report() { echo "soundness: $*"; fail=1; }

# 1. Pure targets (STYLE §1-2): no NIO, no Foundation, no clocks, no unseeded randomness.
pure=(Sources/IsobarModel Sources/IsobarWire Sources/IsobarRouting Sources/IsobarGossip Sources/IsobarEngineModel)
while IFS= read -r hit; do report "pure target imports a shell module: $hit"; done < <(
  grep -rnE '^\s*(@preconcurrency )?import (NIO[A-Za-z]*|Foundation|FoundationNetworking|Dispatch|Glibc|Darwin|AsyncHTTPClient|Logging)\b' "${pure[@]}")
while IFS= read -r hit; do report "pure target reads a clock: $hit"; done < <(
  grep -rnE '\b(Date\(\)|ContinuousClock|SuspendingClock|DispatchTime|clock_gettime|NIODeadline|time\(nil\))' "${pure[@]}")
while IFS= read -r hit; do report "pure target uses unseeded randomness: $hit"; done < <(
  grep -rnE 'SystemRandomNumberGenerator|\.random\((in: [^)]*)?\)|\.shuffled\(\)|\.randomElement\(\)' "${pure[@]}" | grep -v 'using:')

# 2. Libraries log through swift-log, they do not print.
while IFS= read -r hit; do report "library prints instead of logging: $hit"; done < <(
  grep -rnE '^\s*print\(' Sources/IsobarModel Sources/IsobarWire Sources/IsobarRouting Sources/IsobarGossip Sources/IsobarConfig \
    Sources/IsobarEngineModel Sources/IsobarSimulator Sources/IsobarGateway Sources/IsobarEmulator)

# 3. Build output and resolved pins stay out of git.
if git ls-files | grep -qE '(^|/)\.build|Package\.resolved$'; then report ".build or Package.resolved is tracked"; fi
for pattern in '.build/' 'Package.resolved'; do
  grep -qxF "$pattern" .gitignore || report ".gitignore lacks $pattern"
done

# 4. Every example topology validates.
if [ -x .build/debug/isobar ]; then
  ISOBAR_GOSSIP_KEY=${ISOBAR_GOSSIP_KEY:-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=} \
  OPENAI_API_KEY=${OPENAI_API_KEY:-sk-soundness} ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY:-sk-ant-soundness} \
    .build/debug/isobar check topology/*.yaml simulator/scenarios/*.yaml >/dev/null \
      || report "a topology example or shipped scenario does not validate"
fi

if [ $fail -ne 0 ]; then exit 1; fi
echo "soundness: ok"
