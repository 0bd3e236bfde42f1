#!/usr/bin/env bash
# Installs phalanx on an Android phone in Termux, idempotently: the Termux packages it builds
# with, the Python build requirements Termux can install, then phalanx itself, built from
# source with its bundled oneDNN 3.x and Gloo (Termux packages neither). Run it again at any
# time: what is present is not installed again, and the bundled oneDNN (a long build on a
# phone) is kept in ~/.cache/phalanx and reused.
#
# Usage: bash termux/install.sh [PHALANX_SOURCE]   (default: the checkout this script is in;
#        an sdist phalanx-*.tar.gz works too)
# Offline: PHALANX_ONEDNN_SOURCE=DIR_OR_TARBALL PHALANX_GLOO_SOURCE=DIR_OR_TARBALL bash termux/install.sh
set -euo pipefail

say() { printf 'phalanx install: %s\n' "$*"; }
die() { printf 'phalanx install: %s\n' "$*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=${1:-$(dirname "$here")}
[ -e "$source_dir" ] || die "no phalanx source at $source_dir (pass a checkout or an sdist)"

command -v pkg >/dev/null 2>&1 || die "'pkg' not found: this script is for Termux on Android \
(elsewhere: scripts/bootstrap.sh, or pip install with PHALANX_DEPS=bundled)"
arch=$(uname -m)
[ "$arch" = aarch64 ] || say "warning: this is $arch, not aarch64; continuing"

# Termux package -> a file or command that proves it is usable.
PACKAGES=(
  "python:python3"
  "python-pip:pip"
  "python-numpy:numpy"
  "cmake:cmake"
  "ninja:ninja"
  "clang:clang++"
  "libprotobuf:protobuf-lib"
  "protobuf:protoc"
  "libopenblas:openblas-lib"
  "pybind11:pybind11-cmake"
)

prefix=${PREFIX:-/data/data/com.termux/files/usr}
present() {  # $1: what proves the package is usable
  case $1 in
    numpy) python3 -c 'import numpy' >/dev/null 2>&1 ;;
    protobuf-lib) ls "$prefix"/lib/libprotobuf.so* >/dev/null 2>&1 ;;
    openblas-lib) ls "$prefix"/lib/libopenblas.so* >/dev/null 2>&1 ;;
    pybind11-cmake) ls "$prefix"/share/cmake/pybind11/pybind11Config.cmake >/dev/null 2>&1 \
      || python3 -m pybind11 --cmakedir >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

missing=()
for entry in "${PACKAGES[@]}"; do
  name=${entry%%:*}
  dpkg -s "$name" >/dev/null 2>&1 || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Termux packages: ${missing[*]}"
  if ! pkg install -y "${missing[@]}"; then
    still=()
    for name in "${missing[@]}"; do dpkg -s "$name" >/dev/null 2>&1 || still+=("$name"); done
    die "pkg install failed; run: pkg update && pkg install ${still[*]}"
  fi
fi
for entry in "${PACKAGES[@]}"; do
  name=${entry%%:*} proof=${entry#*:}
  present "$proof" || die "package '$name' is installed but unusable ($proof missing): pkg reinstall $name"
done

# Python build requirements: scikit-build-core only. cmake and ninja come from pkg, because
# PyPI's cmake and ninja wheels do not build in Termux; numpy comes from pkg (python-numpy).
python3 -c 'import scikit_build_core' >/dev/null 2>&1 \
  || python3 -m pip install scikit-build-core \
  || die "pip install scikit-build-core failed (network?)"

# Bundled dependencies are built once and kept here; later installs reuse them.
export PHALANX_DEPS_CACHE=${PHALANX_DEPS_CACHE:-$HOME/.cache/phalanx/deps}
export PHALANX_DEPS=${PHALANX_DEPS:-auto}
# One OpenBLAS thread per OpenMP thread: nested threading oversubscribes the cores.
export OPENBLAS_NUM_THREADS=1
say "building phalanx from $source_dir (the first time includes oneDNN: 30-60 minutes)"
python3 -m pip install --no-build-isolation "$source_dir" \
  || die "building phalanx failed; the log above names the step (bundled oneDNN logs: $PHALANX_DEPS_CACHE)"

say "installed; checking this phone:"
phalanx doctor || say "phalanx doctor found problems (see 'to do' above)"
say "done. Before training: termux-wake-lock; see termux/README.md"
