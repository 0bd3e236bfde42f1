# Cross-compiles phalanx for aarch64 (the phones' CPU) with Debian's g++-aarch64-linux-gnu against
# an arm64 sysroot assembled by scripts/aarch64_sysroot.sh (PHALANX_AARCH64_SYSROOT). Programs
# built here run under qemu-aarch64 -cpu cortex-a76: an ARMv8.2 core without SVE, like a
# Galaxy S10+'s big cores (qemu's default `max` CPU has SVE and would let oneDNN pick kernels
# no such phone can run).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(PHALANX_AARCH64_SYSROOT "$ENV{PHALANX_AARCH64_SYSROOT}" CACHE PATH "arm64 sysroot")
if(NOT IS_DIRECTORY "${PHALANX_AARCH64_SYSROOT}/usr/lib/aarch64-linux-gnu")
  message(FATAL_ERROR "PHALANX_AARCH64_SYSROOT=${PHALANX_AARCH64_SYSROOT} is not an arm64 sysroot "
    "(make it with scripts/aarch64_sysroot.sh)")
endif()
set(CMAKE_SYSROOT "${PHALANX_AARCH64_SYSROOT}")
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH "${PHALANX_AARCH64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)  # protoc and friends run on the build machine
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)   # pybind11's header-only config is the host's
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -cpu cortex-a76 -L "${PHALANX_AARCH64_SYSROOT}")
