#!/usr/bin/env bash
# Downloads the offline sources of the bundled dependencies from Debian's source packages
# (this machine has no network to GitHub): oneDNN 3.7.2 (trixie's onednn, Debian's repack) and
# Gloo at commit 5354032 (trixie's gloo, the commit phalanx pins). Adds a deb-src entry for
# bookworm and trixie when apt has none. Idempotent: present tarballs are kept.
# Usage: scripts/fetch_srcpkgs.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
want=(onednn_3.7.2+ds.orig.tar.xz gloo_0.0~git20231202.5354032.orig.tar.xz)
missing=0
for f in "${want[@]}"; do [ -f "$dir/$f" ] || missing=1; done
[ "$missing" = 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
list=/etc/apt/sources.list.d/phalanx-deb-src.sources
if ! grep -rqs "trixie" /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null ||
  ! grep -rqs "deb-src" /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null; then
  printf '%s\n' "Types: deb-src" "URIs: http://deb.debian.org/debian" "Suites: bookworm trixie" \
    "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
    $SUDO tee "$list" >/dev/null
  $SUDO apt-get update -qq
fi
# --download-only: the .orig tarballs (and Debian's patches, unused) without unpacking.
# Only the .orig tarballs are needed: a missing .dsc or Debian patch on the mirror (seen: the
# gloo .dsc answered 404 while its tarball downloaded) is not a failure; the check below is.
(cd "$dir" && apt-get source -qq --download-only onednn/trixie gloo/trixie) ||
  echo "fetch_srcpkgs: apt-get source reported an error; checking for the tarballs" >&2
for f in "${want[@]}"; do
  [ -f "$dir/$f" ] || { echo "fetch_srcpkgs: $f not among the downloaded files" >&2; exit 1; }
done
echo "sources in $dir: ${want[*]}"
