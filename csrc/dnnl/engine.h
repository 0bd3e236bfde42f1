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

// Runs a primitive on the calling thread's stream, passing it the thread's scratchpad (every
// primitive is made with a user scratchpad, see compat.h): safe on any number of threads, also
// for one primitive shared by them.
// `args` is taken by value (callers move it in) so the scratchpad is added without a copy.
void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args);

// Sets the compute threads (OpenMP) used by oneDNN and phalanx's own loops.
void set_num_threads(int n);
int get_num_threads();

}  // namespace phalanx::dnnl_util
