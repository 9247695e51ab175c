#!/usr/bin/env bash
# The lock file: requirements.lock, every package Spillway installs (runtime, dev tools, build
# tools) at an exact version with its hashes, resolved by uv for Python 3.11 and 3.12 on every
# platform. infra/setup.sh installs from it with pip --require-hashes.
#
#   bash infra/lock.sh                          re-resolve after pyproject.toml changed,
#                                               keeping every pin that still satisfies it
#   bash infra/lock.sh --upgrade                every package to its newest allowed version
#   bash infra/lock.sh --upgrade-package duckdb one package (repeatable)
#   bash infra/lock.sh --check                  fail if requirements.lock is not what
#                                               pyproject.toml resolves to (pins kept)
#
# After moving the lock: bash infra/test.sh (tests/platform/test_lock.py and
# tests/faust_runtime/test_private_hooks.py check the result), then commit both files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
UV_VERSION=0.13.9
tools="${SPILLWAY_HOME:-$PWD/.spillway}/tools/uv-$UV_VERSION"
if [ ! -x "$tools/bin/uv" ]; then
  echo "• installing uv $UV_VERSION (the lock tool) into $tools" >&2
  "${PYTHON:-python3.11}" -m venv "$tools"
  "$tools/bin/python" -m pip install -q "uv==$UV_VERSION"
fi
# uv reads the existing output file as its preferences: pins move only when they must.
compile() {
  "$tools/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --extra dev --custom-compile-command "bash infra/lock.sh" \
    pyproject.toml infra/build-requirements.in "$@"
}
if [ "${1:-}" = "--check" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cp requirements.lock "$tmp/requirements.lock"
  compile -o "$tmp/requirements.lock"
  if ! diff -u requirements.lock "$tmp/requirements.lock"; then
    echo "lock: requirements.lock does not match pyproject.toml; run: bash infra/lock.sh" >&2
    exit 1
  fi
  echo "lock: requirements.lock matches pyproject.toml" >&2
  exit 0
fi
compile -o requirements.lock "$@"
echo "lock: requirements.lock written ($(grep -c '==' requirements.lock) packages pinned)" >&2
