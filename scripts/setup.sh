#!/usr/bin/env bash
# Installs everything codey needs from Debian (apt-get) and builds it into
# ./build (Release). Idempotent and non-interactive; runs as root or via sudo.
# Usage: scripts/setup.sh [--sanitize] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build pkg-config
  libfmt-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libpcre2-dev libcpp-httplib-dev zlib1g-dev
  libcurl4-openssl-dev libssl-dev ca-certificates
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-19 libclang-rt-19-dev
  curl python3
  nginx libnginx-mod-http-js yamllint)  # the cluster test (deploy/nginx) and the k8s manifests' lint

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm (only for the end-to-end client tests) are taken as the
# machine has them: a Node.js from another source (e.g. nodesource, which
# bundles npm) conflicts with Debian's npm package, so ask apt only when the
# commands are missing altogether.
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  # Debian starts a service when its package is installed: nginx would take
  # port 80 as the system service. The tests run an nginx of their own, so
  # forbid service starts for this install (unless a policy is in place).
  policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    made_policy=1
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if ((made_policy)); then $SUDO rm -f "$policy"; trap - EXIT; fi
fi

BUILD_DIR=build
CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=Release)
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --sanitize) BUILD_DIR=build-asan; CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCODEY_SANITIZE=ON) ;;
    --no-build) BUILD=0 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done

# npm clients for the end-to-end tests (real OpenAI / Ollama clients).
if [[ -f tests/e2e/package.json && ! -d tests/e2e/node_modules ]]; then
  (cd tests/e2e && npm install --no-audit --no-fund --silent) || echo "setup: npm install failed; e2e client tests will be skipped" >&2
fi

if ((BUILD)); then
  cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}" >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
fi
