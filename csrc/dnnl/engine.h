// The CPU engine, a stream per thread, and helpers that describe plain tensors to oneDNN.
#pragma once
#include <dnnl.hpp>
#include <string>
#include <unordered_map>

#include "core/tensor.h"

namespace phalanx::dnnl_util {

const dnnl::engine& cpu_engine();
dnnl::stream& thread_stream();

dnnl::memory::dims to_dims(const Shape& s);
// A row-major float32 descriptor of the given shape.
dnnl::memory::desc plain_desc(const Shape& s);
// oneDNN memory over a contiguous float32 tensor's data (no copy).
dnnl::memory plain_memory(const Tensor& t);
dnnl::memory plain_memory(const Tensor& t, const dnnl::memory::desc& md);
// Checks a tensor is float32 and returns it contiguous; TypeError names op and argument.
Tensor float_input(const Tensor& t, const char* op, const char* arg);

// Whether oneDNN chose its reference implementation (plain C++ loops, 10-1000x slower than its
// JIT kernels) for a primitive descriptor: it has one for any layout it is given.
template <typename PrimitiveDesc>
bool is_reference(const PrimitiveDesc& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
}

// Runs a primitive on the calling thread's stream, passing it the thread's scratchpad (every
// primitive is made with a user scratchpad, see compat.h): safe on any number of threads, also
// for one primitive shared by them.
// `args` is taken by value (callers move it in) so the scratchpad is added without a copy.
void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args);

// Whether convolutions may run as Winograd (oneDNN's convolution_auto) where oneDNN expects
// it to be faster: 3x3 stride-1 convolutions on AVX-512, ~1.25x a ResNet-18 training step.
// Results differ from the direct kernels' (and PyTorch's) by rounding, a few 1e-6 relative
// (docs/speed.md). On by default; PHALANX_WINOGRAD=0 in the environment, or
// phalanx.backends.onednn.allow_winograd = False, turns it off (read at each primitive's
// creation, and part of the primitive cache's key).
bool winograd_allowed();
void set_winograd_allowed(bool on);

// Sets the compute threads (OpenMP) used by oneDNN and phalanx's own loops.
void set_num_threads(int n);
int get_num_threads();

}  // namespace phalanx::dnnl_util
