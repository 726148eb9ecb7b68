#!/usr/bin/env bash
# One command on a fresh machine: set everything up, then run the demo (hand-recon ros-demo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
source "$ROOT/.ros_ws/env.sh"
exec hand-recon ros-demo "$@"
