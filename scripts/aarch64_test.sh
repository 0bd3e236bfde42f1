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
# Environment: AARCH64_CTEST=0 skips the GoogleTests, AARCH64_PYTEST=0 the Python tests.
set -euo pipefail
build=$(realpath "$1")
sysroot=$(realpath "$2")
shift 2
root=$(realpath "$(dirname "$0")/..")
[ $# -gt 0 ] || set -- tests/python
export QEMU_CPU=cortex-a76 QEMU_LD_PREFIX="$sysroot"
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
  { echo "aarch64_test: qemu-aarch64 is not registered; run under scripts/aarch64_binfmt.sh" >&2; exit 1; }

status=0
if [ "${AARCH64_CTEST:-1}" != 0 ]; then
  start=$(date +%s)
  ctest --test-dir "$build" --output-on-failure --timeout 1800 || status=$?
  echo "aarch64_test: GoogleTests under qemu took $(($(date +%s) - start)) s (exit $status)"
fi

if [ "${AARCH64_PYTEST:-1}" != 0 ]; then
  # Next to the sysroot's numpy and pytest: the pure-Python dependencies. No PyTorch: PyPI's
  # aarch64 torch wheel is the CUDA build (it needs NVIDIA's libraries to import), so tests
  # that compare with PyTorch skip here, saying so; golden outputs from the x86-64 run are not
  # written yet.
  pylib="$build/pylib"
  if [ ! -f "$pylib/.complete" ]; then
    python3 -m pip install -q --no-deps --target "$pylib" cloudpickle tqdm
    touch "$pylib/.complete"
  fi
  start=$(date +%s)
  py=0
  PYTHON="$sysroot/usr/bin/python3.11" \
    PYTHONPATH="$pylib:/usr/lib/python3/dist-packages" \
    "$root/scripts/run_with_extension.sh" "$build" -m pytest -p no:cacheprovider "$@" || py=$?
  echo "aarch64_test: Python tests under qemu took $(($(date +%s) - start)) s (exit $py)"
  [ "$py" = 0 ] || status=$py
fi
exit "$status"
