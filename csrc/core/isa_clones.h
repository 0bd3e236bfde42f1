// PHX_ISA_CLONES on a function: GCC compiles it once per x86-64 ISA level (AVX-512, AVX2,
// the baseline) and picks the copy for the running CPU when the program loads (ifunc).
// It lets portable loops (no intrinsics) use the wide vectors of the machine they run on while
// the build itself targets the baseline ISA, as a pip-installed wheel must. Put it on the
// loop over one row, not on a function with an OpenMP region: GCC compiles the region's body
// as a separate function for the baseline ISA only. Each call goes through a pointer chosen at
// load time, so the rows should be long enough to hide one indirect call.
// No fused multiply-adds (fp-contract=off): the AVX-512 copy could contract a * x + b in one
// loop of a function and not in its sibling, so a fused op and its unfused twin would differ
// in the last bit; the baseline copy, as every build for x86-64, has no FMA to contract to.
// Elsewhere it is nothing: aarch64 (NEON is the baseline), Android (no ifunc before API 29),
// Clang (it cannot clone function templates).
#pragma once

#if defined(__x86_64__) && defined(__linux__) && !defined(__ANDROID__) && defined(__GNUC__) && \
    !defined(__clang__)
#define PHX_ISA_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off")))
#else
#define PHX_ISA_CLONES
#endif
