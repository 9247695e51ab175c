#!/usr/bin/env bash
# The main job: set up, start the broker (or use KAFKA_BOOTSTRAP_SERVERS), run `spillway run`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SPILLWAY_HOME="${SPILLWAY_HOME:-$PWD/.spillway}"
bash infra/setup.sh
exec .venv/bin/spillway run "$@"
