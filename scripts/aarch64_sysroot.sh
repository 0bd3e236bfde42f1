#!/usr/bin/env bash
# Assembles an arm64 sysroot from Debian's arm64 packages (no arm64 dpkg install: an arm64
# interpreter cannot be co-installed with the amd64 one, so the packages are unpacked with
# dpkg -x), plus the host's cross compiler and qemu-user. Idempotent: a finished sysroot is kept.
# Usage: scripts/aarch64_sysroot.sh SYSROOT
set -euo pipefail
sysroot=${1:?usage: $0 SYSROOT}
[ -f "$sysroot/.complete" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
fi
host=()
for p in g++-aarch64-linux-gnu qemu-user; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || host+=("$p")
done
if [ ${#host[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${host[@]}"
fi

# What the phone configuration links and the arm64 Python runs with.
ROOTS=(libpython3.11-dev python3.11 python3-numpy libprotobuf-dev libgtest-dev
  libopenblas-dev libgomp1 libstdc++-12-dev libc6-dev python3-pytest)
# The dependency closure, arm64 only (pure-Python arch:all packages come along as :all).
mapfile -t pkgs < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances "${ROOTS[@]/%/:arm64}" \
  | grep -E '^[a-z0-9]' | sed 's/:arm64$//' | sort -u)
debs="$sysroot.debs"
mkdir -p "$debs" "$sysroot"
(
  cd "$debs"
  want=()
  for p in "${pkgs[@]}"; do
    ls "${p}"_*_arm64.deb "${p}"_*_all.deb >/dev/null 2>&1 || want+=("$p:arm64")
  done
  # One apt call for all of them; if a name is virtual or amd64-only, retry one by one and
  # skip those (they have nothing to download).
  if [ ${#want[@]} -gt 0 ] && ! apt-get download -qq "${want[@]}" 2>/dev/null; then
    for p in "${want[@]}"; do
      ls "${p%:arm64}"_*.deb >/dev/null 2>&1 && continue
      apt-get download -qq "$p" 2>/dev/null || apt-get download -qq "${p%:arm64}" 2>/dev/null || true
    done
  fi
)
for deb in "$debs"/*.deb; do dpkg -x "$deb" "$sysroot"; done
# Debian's absolute symlinks (e.g. libm.so -> /lib/aarch64-linux-gnu/libm.so.6) must point
# inside the sysroot for the cross linker and for qemu -L.
find "$sysroot" -type l -lname '/*' | while read -r link; do
  target=$(readlink "$link")
  case "$target" in "$sysroot"/*) continue ;; esac  # fixed by an earlier, interrupted run
  ln -sfn "$sysroot$target" "$link"
done
# dpkg -x runs no maintainer scripts, so the alternatives Debian would set up are missing:
# BLAS/LAPACK (numpy links libblas.so.3) point at the OpenMP build of OpenBLAS, as phalanx's
# OpenMP runtime wants.
lib="$sysroot/usr/lib/aarch64-linux-gnu"
for name in libblas.so.3 liblapack.so.3 libblas.so liblapack.so libopenblas.so.0 libopenblas.so; do
  [ -e "$lib/$name" ] || ln -sfn "openblas-openmp/$name" "$lib/$name"
done
# The same for OpenBLAS's headers (cblas.h, which oneDNN's OPENBLAS vendor looks for).
inc="$sysroot/usr/include/aarch64-linux-gnu"
for h in "$inc"/openblas-openmp/*.h; do
  [ -e "$inc/${h##*/}" ] || ln -sfn "openblas-openmp/${h##*/}" "$inc/${h##*/}"
done
touch "$sysroot/.complete"
echo "aarch64 sysroot ready: $sysroot ($(ls "$debs" | wc -l) packages)"
