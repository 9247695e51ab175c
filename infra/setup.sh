#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a venv with Spillway and its dev tools, and the Kafka jars.
# Needs python3.11 (with venv), Java 17+ and Maven on PATH; everything else is fetched here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SPILLWAY_HOME="${SPILLWAY_HOME:-$PWD/.spillway}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "setup: $tool not found (needs Java 17+ and Maven)" >&2; exit 1; }
done
# Headless Chromium for the dashboard's browser test (Debian's packages; no download at run time).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "• installing Debian's chromium and chromium-driver (browser test)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver fonts-dejavu-core >/dev/null
  else
    echo "setup: chromium and chromedriver missing; the browser test will fail until they are installed" >&2
  fi
fi
if [ ! -x .venv/bin/python ]; then
  echo "• creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
# Exactly the locked versions (requirements.lock, with hashes), then Spillway itself without
# resolving anything; re-run whenever pyproject.toml or the lock changes.
stamp=.venv/.spillway-installed
want="$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "• installing the locked dependencies into .venv (first time: about 2 minutes)" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
    -r requirements.lock
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    -e .
  .venv/bin/python -m pip check >&2
  echo "$want" > "$stamp"
fi
.venv/bin/spillway broker fetch >/dev/null
