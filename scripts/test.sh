#!/usr/bin/env bash
# One command on a fresh machine: set everything up, then lint and run the whole test suite.
#   scripts/test.sh                 # lint + the default suite (slow tests excluded)
#   scripts/test.sh --slow          # lint + the slow tests only (training runs, long benchmarks)
#   scripts/test.sh -- -k hand      # extra arguments after -- go to pytest
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
marker="not slow"
if [ "${1:-}" = "--slow" ]; then marker="slow"; shift; fi
[ "${1:-}" = "--" ] && shift
bash scripts/setup.sh
# shellcheck disable=SC1091
source .ros_ws/env.sh
echo "[test] ruff check ."
ruff check .
# The ROS integration tests must run here, never skip: the set-up env has rclpy and the built messages.
export HAND_RECON_REQUIRE_ROS=1
echo "[test] pytest -m \"$marker\""
set +e
python -m pytest -m "$marker" "$@"
rc=$?
set -e
# pytest exits 5 when the selection is empty (e.g. no slow test yet): that is not a failure of the suite.
if [ "$rc" -eq 5 ]; then echo "[test] no test selected by -m \"$marker\""; exit 0; fi
exit "$rc"
