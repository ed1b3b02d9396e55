#!/usr/bin/env bash
# Installs the Debian 12 packages whale's build and tests need, and the end-to-end tests' npm
# packages. Idempotent: installs only what is missing, so a second run changes nothing and needs
# no network.
set -euo pipefail

packages=(
  cmake ninja-build g++ make pkg-config
  clang-14 libclang-rt-14-dev        # sanitizer build and libFuzzer targets
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libpcre2-dev libhwy-dev
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev   # the HTTP server (httplib.pc needs the TLS/zlib/brotli headers)
  chromium                           # the web UI's end-to-end test (headless, via playwright-core)
)
# Node runs the end-to-end tests; Debian's nodejs and npm unless a node is already installed
# (a NodeSource nodejs bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The end-to-end tests' npm packages (openai, playwright-core), exactly as locked. npm ci wipes
# and reinstalls, so run it only when node_modules is missing or older than the lock file.
e2e="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e"
stamp="$e2e/node_modules/.package-lock.json"  # npm writes it on every install
if [ ! -f "$stamp" ] || [ "$e2e/package-lock.json" -nt "$stamp" ]; then
  echo "install-deps: npm ci in tests/e2e"
  (cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "install-deps: tests/e2e/node_modules up to date"
fi
