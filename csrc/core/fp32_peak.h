// The fp32 throughput this CPU actually delivers: a register-resident FMA loop run on a given
// number of threads. The benchmark's percent-of-peak column divides by this instead of a
// figure guessed from the ISA (which assumed AVX2 on an AVX-512 machine and printed 127%).
#pragma once
#include <string>

namespace phalanx {

struct Fp32Peak {
  double gflops;    // best of the repeats, all threads together
  std::string isa;  // the vector width the loop ran with: "avx512", "avx2", "scalar"
};

// Runs the loop on `threads` OpenMP threads for about `seconds` in total (best of 10 repeats).
Fp32Peak measure_fp32_peak(int threads, double seconds);

}  // namespace phalanx
