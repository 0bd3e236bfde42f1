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
pkg="$build_dir/pkg"
rm -rf "$pkg" && mkdir -p "$pkg/phalanx"
cp -r "$root/python/phalanx/." "$pkg/phalanx/"
so=$(ls "$build_dir"/_C*.so | head -n 1)
ln -sf "$so" "$pkg/phalanx/$(basename "$so")"
PYTHON=${PYTHON:-python3}
site=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# -S skips site.py (and the editable-install .pth); the site-packages dir is added plainly.
PYTHONPATH="$pkg:$site${PYTHONPATH:+:$PYTHONPATH}" exec ${PHX_WRAP:-} "$PYTHON" -S "$@"
