#!/usr/bin/env bash
# Runs a Python command against the extension built in another CMake build directory (an
# ASan build, a oneDNN 3.x build) instead of the editable install: it assembles a package
# directory from python/phalanx plus that build's _C module, and starts Python without the
# site hooks that would redirect `import phalanx` to the editable install.
# Usage: scripts/run_with_extension.sh BUILD_DIR python-args...
# PHX_WRAP="gdb -batch -ex run -ex bt --args" runs Python under a debugger (PYTHON must then
# name the real interpreter, not a pyenv shim).
set -euo pipefail
build_dir=$(realpath "$1"); shift
root=$(realpath "$(dirname "$0")/..")
# Each run gets its own package directory: two runs against one build (a full suite and a
# single test beside it) must not delete each other's copy of the Python sources.
pkg=$(mktemp -d "$build_dir/pkg.XXXXXX")
trap 'rm -rf "$pkg"' EXIT
mkdir -p "$pkg/phalanx"
cp -r "$root/python/phalanx/." "$pkg/phalanx/"
so=$(ls "$build_dir"/_C*.so | head -n 1)
ln -sf "$so" "$pkg/phalanx/$(basename "$so")"
PYTHON=${PYTHON:-python3}
site=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# -S skips site.py (and the editable-install .pth); the site-packages dir is added plainly.
# Not exec'd: the shell stays to remove the package directory; it forwards INT/TERM to Python.
# A background command of a non-interactive shell starts with SIGINT and SIGQUIT ignored, and
# Python (and every process it starts) would keep ignoring them: `trap -` restores them.
(
  trap - INT QUIT
  PYTHONPATH="$pkg:$site${PYTHONPATH:+:$PYTHONPATH}" exec ${PHX_WRAP:-} "$PYTHON" -S "$@"
) <&0 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
status=0
wait "$child" || status=$?
# wait returns early when a trapped signal arrives: wait again for Python's own exit status.
while kill -0 "$child" 2>/dev/null; do wait "$child" || status=$?; done
exit "$status"
