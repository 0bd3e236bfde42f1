#!/usr/bin/env bash
# Runs the tests of an aarch64 cross build under qemu-aarch64 -cpu cortex-a76 (ARMv8.2, no SVE:
# a Galaxy S10+'s big core): every GoogleTest through ctest (the toolchain file names qemu as
# the cross-compiling emulator), then the Python suite with the sysroot's arm64 CPython and
# numpy against the cross-built extension.
#
# Python tests start more Pythons (the launcher's ranks, the driver's workers) through
# sys.executable: for those to be arm64 processes too, the kernel must hand aarch64 ELF files
# to qemu (binfmt_misc): run this script under scripts/aarch64_binfmt.sh. QEMU_CPU and
# QEMU_LD_PREFIX, which every qemu started that way reads, fix the CPU model and the sysroot.
#
# Usage: scripts/aarch64_test.sh BUILD_DIR SYSROOT [pytest arguments; default tests/python]
# Environment: AARCH64_CTEST=0 skips the GoogleTests, AARCH64_PYTEST=0 the Python tests;
# PHALANX_TEST_TIME_SCALE (default 10) multiplies the Python tests' wall-clock bounds.
set -euo pipefail
build=$(realpath "$1")
sysroot=$(realpath "$2")
shift 2
root=$(realpath "$(dirname "$0")/..")
[ $# -gt 0 ] || set -- tests/python
export QEMU_CPU=cortex-a76 QEMU_LD_PREFIX="$sysroot"
# Emulated, Python runs 10-30x slower than natively: the tests' wall-clock waits and bounds
# scale by this (tests/python/_spawn.py, TIME_SCALE).
export PHALANX_TEST_TIME_SCALE=${PHALANX_TEST_TIME_SCALE:-10}
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
  { echo "aarch64_test: qemu-aarch64 is not registered; run under scripts/aarch64_binfmt.sh" >&2; exit 1; }

status=0
if [ "${AARCH64_CTEST:-1}" != 0 ]; then
  start=$(date +%s)
  ctest --test-dir "$build" --output-on-failure --timeout 1800 || status=$?
  echo "aarch64_test: GoogleTests under qemu took $(($(date +%s) - start)) s (exit $status)"
fi

if [ "${AARCH64_PYTEST:-1}" != 0 ]; then
  # Next to the sysroot's numpy and pytest: the pure-Python dependencies, and PyTorch's aarch64
  # wheel (scripts/aarch64_torch.sh; AARCH64_TORCH_DIR names where it is cached, AARCH64_TORCH=0
  # leaves it out) as the reference the PyTorch comparisons run against, under qemu like phalanx.
  # pytest too: the sysroot's python3-pytest (arch: all) may be missing from a sysroot
  # assembled before it was listed, and pytest is pure Python like the others.
  pylib="$build/pylib"
  pylib_want="cloudpickle tqdm pytest"
  if [ ! -f "$pylib/.complete" ] || [ "$(cat "$pylib/.complete")" != "$pylib_want" ]; then
    rm -rf "$pylib"
    # shellcheck disable=SC2086 # the list is words
    python3 -m pip install -q --only-binary=:all: --target "$pylib" $pylib_want
    echo "$pylib_want" >"$pylib/.complete"
  fi
  pypath="$pylib"
  ns=()
  if [ "${AARCH64_TORCH:-1}" != 0 ]; then
    torch_dir=${AARCH64_TORCH_DIR:-$build/torch}
    bash "$root/scripts/aarch64_torch.sh" "$torch_dir"
    # Before Debian's packages: torch's own dependency versions (sympy, typing_extensions) win.
    pypath="$pypath:$torch_dir"
    # `import torch` reads /proc/cpuinfo, which qemu-user passes through from the x86-64 host,
    # and crashes on it: the tests see the emulated Cortex-A76's own (scripts/aarch64_cpuinfo.sh),
    # bind-mounted in a private mount namespace (root, as the binfmt registration already is).
    cpuinfo="$build/cpuinfo-cortex-a76"
    bash "$root/scripts/aarch64_cpuinfo.sh" >"$cpuinfo"
    ns=(unshare --mount --propagation private -- sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$cpuinfo")
  fi
  pypath="$pypath:/usr/lib/python3/dist-packages"
  start=$(date +%s)
  py=0
  PYTHON="$sysroot/usr/bin/python3.11" \
    PYTHONPATH="$pypath" \
    ${ns[@]+"${ns[@]}"} "$root/scripts/run_with_extension.sh" "$build" -m pytest -p no:cacheprovider "$@" || py=$?
  echo "aarch64_test: Python tests under qemu took $(($(date +%s) - start)) s (exit $py)"
  [ "$py" = 0 ] || status=$py
fi
exit "$status"
