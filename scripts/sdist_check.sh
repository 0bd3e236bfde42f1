#!/usr/bin/env bash
# Proves the phone install path on this machine (issue 11): an sdist, installed with pip into a
# fresh virtual environment with the bundled oneDNN and Gloo forced (from local sources: this
# machine has no network to GitHub), the extension checked to link neither library
# dynamically, then the whole Python test suite run against the installed package, from a
# directory where the source tree's python/ is not importable.
# Usage: scripts/sdist_check.sh OUT_DIR ONEDNN_SOURCE GLOO_SOURCE [pytest arguments]
set -euo pipefail
out=$(realpath -m "$1")
onednn=$(realpath "$2")
gloo=$(realpath "$3")
shift 3
root=$(realpath "$(dirname "$0")/..")
[ $# -gt 0 ] || set -- "$root/tests/python"
PYTHON=${PYTHON:-python3}

rm -rf "$out/dist" "$out/venv"
mkdir -p "$out"
"$PYTHON" -m build --version >/dev/null 2>&1 || "$PYTHON" -m pip install -q build
"$PYTHON" -m build --sdist --outdir "$out/dist" "$root"
sdist=$(ls "$out"/dist/phalanx-*.tar.gz)

"$PYTHON" -m venv "$out/venv"
py="$out/venv/bin/python"
# What the tests need beside phalanx (torch as the reference; PIP_FIND_LINKS may hold it).
"$py" -m pip install -q pytest tqdm "torch==2.13.0" nbclient nbformat ipykernel matplotlib \
  optuna tensorboard
# The dependency cache outlives the venv: oneDNN is built once (PHALANX_DEPS_CACHE).
start=$(date +%s)
PHALANX_DEPS=bundled PHALANX_ONEDNN_SOURCE="$onednn" PHALANX_GLOO_SOURCE="$gloo" \
  PHALANX_DEPS_CACHE="${PHALANX_DEPS_CACHE:-$out/_deps}" \
  CMAKE_BUILD_PARALLEL_LEVEL=${JOBS:-2} \
  "$py" -m pip install -v "$sdist" >"$out/pip-install.log" 2>&1 ||
  { tail -n 40 "$out/pip-install.log"; echo "sdist_check: pip install failed, see $out/pip-install.log" >&2; exit 1; }
echo "sdist_check: pip install took $(($(date +%s) - start)) s"
grep -E "phalanx: dependencies" "$out/pip-install.log" || true

cd "$out"  # not the source tree: `import phalanx` must find the installed package
so=$("$py" -c 'import phalanx._C as c; print(c.__file__)')
case "$so" in "$out/venv/"*) ;; *) echo "sdist_check: phalanx came from $so, not the venv" >&2; exit 1 ;; esac
if ldd "$so" | grep -E "libdnnl|libgloo"; then
  echo "sdist_check: the extension links oneDNN or Gloo dynamically (above)" >&2
  exit 1
fi
echo "sdist_check: $so links neither oneDNN nor Gloo dynamically"
"$py" -c 'import phalanx; print("oneDNN", phalanx._C._onednn_version() if hasattr(phalanx._C, "_onednn_version") else "?")' || true
"$py" -m pytest -p no:cacheprovider -q "$@"
