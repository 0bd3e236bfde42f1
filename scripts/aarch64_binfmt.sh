#!/usr/bin/env bash
# Runs a command with aarch64 executables runnable on this x86-64 machine: the kernel hands
# aarch64 ELF files to qemu-aarch64 (binfmt_misc, Debian's qemu-user-binfmt interpreter).
# Needed to configure the cross build (CMake's FindPython runs the arm64 interpreter to learn
# its headers and extension suffix) and by the tests (a rank the launcher starts through
# sys.executable must be an arm64 process too). Registers qemu-aarch64 when it is not
# registered yet and removes that registration when the last command run through this script
# ends: each run holds a shared lock on $lock while its command runs, so a build finishing
# beside an hour-long test run does not unregister qemu under it. Registering and unregistering
# happen under a second, exclusive lock held only for that moment: a run starting beside a
# long one must not wait for it to end.
# Usage: scripts/aarch64_binfmt.sh COMMAND [ARGS...]
set -euo pipefail
binfmt=/proc/sys/fs/binfmt_misc
lock=/run/phalanx-aarch64-binfmt.lock
# Present while the registration is one this script made (not, say, qemu-user-binfmt's own).
ours=/run/phalanx-aarch64-binfmt.ours
exec 9>>"$lock"
exec 8>>"$lock.register"
cleanup() {
  flock -x 8
  # Exclusive only when no other run holds its shared lock: the last one out unregisters.
  # Runs starting now wait on lock 8, so none can register in between.
  if flock -xn 9 && [ -e "$ours" ]; then
    [ -e "$binfmt/qemu-aarch64" ] && echo -1 >"$binfmt/qemu-aarch64"
    rm -f "$ours"
  fi
}
trap cleanup EXIT
flock -x 8
flock -s 9
if [ ! -e "$binfmt/register" ]; then
  mount -t binfmt_misc binfmt_misc "$binfmt" || {
    echo "aarch64_binfmt: binfmt_misc is not mounted and cannot be (needs root)" >&2
    exit 1
  }
fi
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  interp=/usr/libexec/qemu-binfmt/aarch64-binfmt-P
  [ -x "$interp" ] || { echo "aarch64_binfmt: $interp missing (apt-get install qemu-user-binfmt)" >&2; exit 1; }
  # Debian's /usr/share/binfmts/qemu-aarch64 entry: the ELF header of an aarch64 executable.
  magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  echo ":qemu-aarch64:M::$magic:$mask:$interp:P" >"$binfmt/register"
  touch "$ours"
fi
flock -u 8
status=0
# The command does not inherit the locks' descriptors (it would hold them past our exit).
"$@" 8>&- 9>&- || status=$?
exit "$status"
