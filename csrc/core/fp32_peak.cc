#include "core/fp32_peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PHX_X86 1
#endif

namespace phalanx {

namespace {

// Independent accumulator chains: FMA latency (4 cycles) x 2 FMA ports needs >= 8 chains in
// flight; 12 keeps both ports busy and still fits the 16 vector registers of AVX2.
constexpr int kChains = 12;
// acc = acc * m + a converges to a / (1 - m): no overflow, no denormals, however long it runs.
constexpr float kMul = 0.999999f, kAdd = 1e-6f;
// Short repeats, many of them: on a shared machine some repeat likely finds the cores free.
constexpr int kRepeats = 10;

#ifdef PHX_X86
__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iters) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(kMul), a = _mm512_set1_ps(kAdd);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  // Stored and summed by hand: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized.
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  float r = 0;
  for (float v : out) r += v;
  return r;
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 m = _mm256_set1_ps(kMul), a = _mm256_set1_ps(kAdd);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  alignas(32) float out[8];
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  _mm256_store_ps(out, s);
  float r = 0;
  for (float v : out) r += v;
  return r;
}
#endif

// Everything else (ARM phones included): the compiler vectorises this as far as the target
// allows; counted as 2 FLOPs per multiply-add whether or not it fuses them.
float fma_loop_scalar(int64_t iters) {
  float acc[kChains * 4];
  for (int i = 0; i < kChains * 4; ++i) acc[i] = static_cast<float>(i);
  for (int64_t it = 0; it < iters; ++it)
    for (float& v : acc) v = v * kMul + kAdd;
  float r = 0;
  for (float v : acc) r += v;
  return r;
}

struct Kernel {
  float (*run)(int64_t);
  int lanes;  // floats per chain per iteration
  const char* isa;
};

Kernel pick_kernel() {
#ifdef PHX_X86
  if (__builtin_cpu_supports("avx512f")) return {fma_loop_avx512, 16 * kChains, "avx512"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return {fma_loop_avx2, 8 * kChains, "avx2"};
#endif
  return {fma_loop_scalar, 4 * kChains, "scalar"};
}

}  // namespace

Fp32Peak measure_fp32_peak(int threads, double seconds) {
  PHX_CHECK(threads >= 1, ValueError, "measure_fp32_peak: threads must be >= 1, got ", threads);
  PHX_CHECK(seconds > 0 && seconds <= 60, ValueError,
            "measure_fp32_peak: seconds must be in (0, 60], got ", seconds);
  const Kernel k = pick_kernel();
  using clock = std::chrono::steady_clock;
  // Calibrate on one thread: how many iterations fill one repeat's share of the time.
  int64_t iters = 1 << 14;
  for (;;) {
    auto t0 = clock::now();
    volatile float sink = k.run(iters);
    (void)sink;
    double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt > 0.01 || iters > (int64_t{1} << 40)) {
      iters = std::max<int64_t>(
          1, static_cast<int64_t>(iters * (seconds / kRepeats) / std::max(dt, 1e-9)));
      break;
    }
    iters *= 4;
  }
  double best = 0;
  for (int rep = 0; rep < kRepeats; ++rep) {
    float total = 0;
    auto t0 = clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    total += k.run(iters);
    double dt = std::chrono::duration<double>(clock::now() - t0).count();
    volatile float sink = total;  // keeps the loops from being optimised away
    (void)sink;
    // A thread the OS kept off a core makes the repeat slower, never faster: the best repeat
    // is the closest to what the hardware can do.
    best = std::max(best, 2.0 * k.lanes * static_cast<double>(iters) * threads / dt / 1e9);
  }
  return {best, k.isa};
}

}  // namespace phalanx
