#!/usr/bin/env bash
# Installs what latch needs to build, test, demo and bench on Debian 12: Debian packages with
# apt-get (as root; otherwise prints the exact line to run), and npm test tools into
# tests/node_modules. Does nothing when everything is present. Used by `make demo/test/bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential pkg-config clang libclang-rt-14-dev
      libssl-dev libsodium-dev libjansson-dev libyaml-dev libcurl4-openssl-dev libhiredis-dev
      libnghttp2-dev nghttp2-client python3-h2 python3-hpack h2o
      libcmocka-dev python3 python3-pytest python3-pytest-xdist python3-jwt python3-aiosmtpd python3-websockets
      python3-cryptography python3-yaml curl openssl nginx-light haproxy wrk hyperfine redis-server
      openssh-server openssh-client
      nghttp2-server python3-grpcio python3-grpc-tools
      groff-base man-db
      chromium nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
# nodejs from another origin (e.g. nodesource) ships npm itself.
if [[ " ${missing[*]} " == *" npm "* ]] && command -v npm >/dev/null; then
  missing=("${missing[@]/npm}")
fi
if [[ " ${missing[*]} " == *" nodejs "* ]] && command -v node >/dev/null; then
  missing=("${missing[@]/nodejs}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "deps: missing Debian packages; run:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
# nginx-light's package starts a system nginx on port 80; latch's tests and bench start their own.
if [[ -f tests/package.json ]] && [[ ! -d tests/node_modules ]]; then
  echo "deps: npm install (tests/)"
  (cd tests && npm install --no-audit --no-fund --loglevel=error)
fi
