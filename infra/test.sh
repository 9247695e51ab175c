#!/usr/bin/env bash
# The test command: set up, start the project's Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS
# names one that answers), run lint, types and the whole test suite, stop what it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SPILLWAY_HOME="${SPILLWAY_HOME:-$PWD/.spillway}"
bash infra/setup.sh
started=0
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  .venv/bin/spillway broker start
  started=1
fi
stop_broker() { if [ "$started" = 1 ]; then .venv/bin/spillway broker stop || true; fi; }
trap stop_broker EXIT
echo "• lock" >&2; bash infra/lock.sh --check
echo "• ruff" >&2; .venv/bin/ruff check .
echo "• mypy" >&2; .venv/bin/mypy .
echo "• pytest" >&2
.venv/bin/pytest -p no:cacheprovider "$@"
