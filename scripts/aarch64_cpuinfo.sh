#!/usr/bin/env bash
# Prints the /proc/cpuinfo an arm64 Linux shows on the CPU that make test-aarch64 emulates
# (qemu-aarch64 -cpu cortex-a76: MIDR 0x414fd0b1, Cortex-A76 r4p1), one entry per CPU of this
# machine (qemu-user runs the guest's threads on the host's CPUs).
#
# Why: qemu-user 7.2 (Debian bookworm's) hands an arm64 process the x86-64 host's /proc/cpuinfo,
# and PyTorch's CPU detection (the cpuinfo library, run when torch is imported) finds no ARM
# processor in it and crashes (SIGSEGV at address 0). scripts/aarch64_test.sh bind-mounts this
# file over /proc/cpuinfo in a private mount namespace for the Python tests only.
# Usage: scripts/aarch64_cpuinfo.sh > FILE
set -euo pipefail
# The CPUs the host lists as present, e.g. "0-1" or "0,2-3": one entry for each.
cpus=()
IFS=, read -ra ranges </sys/devices/system/cpu/present
for r in "${ranges[@]}"; do
  for i in $(seq "${r%-*}" "${r#*-}"); do cpus+=("$i"); done
done
for i in "${cpus[@]}"; do
  # The hwcaps Linux reports for qemu's cortex-a76 model (AT_HWCAP, which qemu does emulate).
  printf '%s\n' "processor	: $i" "BogoMIPS	: 50.00" \
    "Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs" \
    "CPU implementer	: 0x41" "CPU architecture: 8" "CPU variant	: 0x4" "CPU part	: 0xd0b" \
    "CPU revision	: 1" ""
done
