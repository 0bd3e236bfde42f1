// Row-major traversal of N operands that share a shape but have their own strides. The body
// gets the element offsets of each operand at the start of an innermost row, the row length
// and the innermost strides, so it can run a tight loop the compiler vectorises.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace phalanx {

template <size_t N, typename F>
void strided_loop(const std::vector<int64_t>& sizes,
                  const std::array<const std::vector<int64_t>*, N>& strides, F&& body) {
  const size_t nd = sizes.size();
  for (int64_t s : sizes)
    if (s == 0) return;
  std::array<int64_t, N> off{}, inner{};
  if (nd == 0) {
    body(off, int64_t{1}, inner);
    return;
  }
  for (size_t k = 0; k < N; ++k) inner[k] = (*strides[k])[nd - 1];
  const int64_t row = sizes[nd - 1];
  std::vector<int64_t> idx(nd, 0);
  while (true) {
    body(off, row, inner);
    // advance the multi-index over all but the innermost dimension
    int64_t d = static_cast<int64_t>(nd) - 2;
    for (; d >= 0; --d) {
      for (size_t k = 0; k < N; ++k) off[k] += (*strides[k])[d];
      if (++idx[d] < sizes[d]) break;
      for (size_t k = 0; k < N; ++k) off[k] -= (*strides[k])[d] * sizes[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace phalanx
