#!/usr/bin/env bash
# Installs the Debian packages Isobar's tests, demo and benchmarks need, only when one is missing.
# (prometheus: its promtool checks deploy/prometheus/.)
set -euo pipefail

packages=(libhiredis-dev redis-server python3-venv wrk curl zlib1g-dev iproute2 iptables prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "bootstrap: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
