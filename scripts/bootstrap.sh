#!/usr/bin/env bash
# Installs everything phalanx needs to build and test, idempotently: Debian packages (when
# missing) and Python packages (when missing). Safe to run again; fast when all is present.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake ninja-build
  libdnnl-dev ocl-icd-opencl-dev      # oneDNN 2.x; its CMake config needs OpenCL
  libgloo-dev                         # Gloo with the TCP transport
  libprotobuf-dev protobuf-compiler
  libgtest-dev
  dataset-fashion-mnist               # the full Fashion-MNIST IDX files
  iproute2                            # network namespaces for multi-host tests
  clang-format
)
PIP_PACKAGES=(
  "scikit-build-core>=0.10" "pybind11>=2.11" numpy pytest tqdm ruff
  cloudpickle                         # phalanx.distributed.run (a runtime dependency too)
  nbclient nbformat ipykernel matplotlib  # tests/python/test_notebooks.py runs notebooks/
  "torch==2.13.0"                     # the reference in tests and benchmarks only
  optuna tensorboard                  # phalanx sweep --optuna, SummaryWriter (optional at run time)
  nbclient nbformat ipykernel matplotlib  # notebooks/ are run by the tests
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
need_pip=()
for spec in "${PIP_PACKAGES[@]}"; do
  "$PYTHON" - "$spec" <<'PY' || need_pip+=("$spec")
import sys
from importlib.metadata import version, PackageNotFoundError
spec = sys.argv[1]
name, _, want = spec.partition("==")
name = name.split(">=")[0]
try:
    have = version(name)
except PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if not want or have.split("+")[0] == want else 1)
PY
done
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "bootstrap: installing Python packages: ${need_pip[*]}"
  "$PYTHON" -m pip install -q "${need_pip[@]}"
fi
echo "bootstrap: all dependencies present"
