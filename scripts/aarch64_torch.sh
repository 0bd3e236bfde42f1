#!/usr/bin/env bash
# Installs PyTorch's aarch64 wheel from PyPI (torch==2.13.0, CPython 3.11, manylinux aarch64)
# and its dependencies into DEST, for the arm64 CPython that `make test-aarch64` runs the
# Python suite with: the tests that compare with PyTorch then run under qemu too, against
# PyTorch's own aarch64 kernels, instead of skipping. DEST goes on that interpreter's
# PYTHONPATH for the test run only; nothing is installed into the sysroot or the host Python.
#
# PyPI's aarch64 wheel is the CUDA build: libtorch_cuda.so needs NVIDIA's CUDA libraries
# (cudart, cuBLAS, cuDNN, NCCL, ...) to load, not a GPU (torch.cuda.is_available() is False
# and every tensor stays on the CPU). Those libraries are the wheel's declared dependencies, so
# the pip resolution brings them: about 2.5 GB downloaded, 4.6 GB unpacked. That is why DEST
# belongs in a cache kept across runs (AARCH64_DEPS_CACHE).
#
# Idempotent: a finished DEST (its .complete names what was installed) is kept; an interrupted
# install is redone from scratch.
# Usage: scripts/aarch64_torch.sh DEST
set -euo pipefail
dest=${1:?usage: $0 DEST}
TORCH_VERSION=${AARCH64_TORCH_VERSION:-2.13.0}
want="torch==$TORCH_VERSION cp311 aarch64"
if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$want" ]; then
  exit 0
fi

# pip takes --platform tags literally (it does not widen manylinux_2_28 to older glibc
# versions), and NVIDIA's wheels carry several (manylinux_2_17/2_18/2_27/2_28/2_34...): name
# every manylinux tag an arm64 Debian bookworm (glibc 2.36) accepts.
plats=(--platform linux_aarch64 --platform manylinux2014_aarch64)
for minor in $(seq 17 36); do plats+=(--platform "manylinux_2_${minor}_aarch64"); done

tmp="$dest.partial"
rm -rf "$tmp"
mkdir -p "$(dirname "$dest")"
python3 -m pip install -q --disable-pip-version-check --no-compile --target "$tmp" \
  "${plats[@]}" --python-version 3.11 --implementation cp --abi cp311 --only-binary=:all: \
  "torch==$TORCH_VERSION"
rm -rf "$dest"
mv "$tmp" "$dest"
echo "$want" >"$dest/.complete"
echo "aarch64_torch: $want in $dest ($(du -sh "$dest" | cut -f1))"
