#include "dnnl/engine.h"

#include <omp.h>

#include <cstdlib>

#include "core/env_switch.h"
#include "core/error.h"
#include "dnnl/compat.h"

namespace phalanx::dnnl_util {

const dnnl::engine& cpu_engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& thread_stream() {
  // A CPU stream is cheap; one per thread keeps concurrent execution safe.
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

dnnl::memory::dims to_dims(const Shape& s) {
  return dnnl::memory::dims(s.begin(), s.end());
}

dnnl::memory::desc plain_desc(const Shape& s) {
  Shape shape = s.empty() ? Shape{1} : s;
  return dnnl::memory::desc(to_dims(shape), dnnl::memory::data_type::f32,
                            to_dims(contiguous_strides(shape)));
}

dnnl::memory plain_memory(const Tensor& t) {
  return plain_memory(t, plain_desc(t.sizes()));
}

dnnl::memory plain_memory(const Tensor& t, const dnnl::memory::desc& md) {
  PHX_CHECK(t.is_contiguous() && t.dtype() == DType::Float32, Error,
            "internal: oneDNN memory needs a contiguous float32 tensor, got ", t.describe());
  return dnnl::memory(md, cpu_engine(), t.raw_data());
}

Tensor float_input(const Tensor& t, const char* op, const char* arg) {
  PHX_CHECK(t.defined(), ValueError, op, ": argument '", arg, "' is missing");
  PHX_CHECK(t.dtype() == DType::Float32, TypeError, op, ": expected '", arg,
            "' to be float32, got ", t.describe());
  return t.contiguous();
}

namespace {

// The calling thread's scratchpad: grown to the largest a primitive needed, kept for the
// thread's life (primitives run one at a time per thread; their OpenMP workers share it).
// From malloc, like oneDNN's own scratchpad was: not tensor memory, so memory_stats() and
// the caching allocator see only tensors.
class ThreadScratchpad {
 public:
  void* get(size_t nbytes) {
    if (nbytes > size_) {
      release();
      const size_t rounded = (nbytes + 63) / 64 * 64;  // aligned_alloc wants a multiple
      data_ = std::aligned_alloc(64, rounded);
      PHX_CHECK(data_, Error, "out of memory allocating a ", nbytes, "-byte oneDNN scratchpad");
      size_ = nbytes;
    }
    return data_;
  }
  ~ThreadScratchpad() { release(); }

 private:
  void release() {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
  }
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args) {
  auto& s = thread_stream();
  const dnnl::memory::desc pad = dnnl_compat::scratchpad_desc(p);
  if (const size_t nbytes = pad.get_size()) {
    thread_local ThreadScratchpad scratchpad;
    args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(pad, cpu_engine(), scratchpad.get(nbytes));
  }
  p.execute(s, args);
  s.wait();
}

namespace {
EnvSwitch& winograd_switch() {
  static EnvSwitch on("PHALANX_WINOGRAD");
  return on;
}
}  // namespace

bool winograd_allowed() {
  return winograd_switch().get();
}

void set_winograd_allowed(bool on) {
  winograd_switch().set(on);
}

void set_num_threads(int n) {
  PHX_CHECK(n > 0, ValueError, "set_num_threads: expected a positive number, got ", n);
  omp_set_num_threads(n);
}

int get_num_threads() {
  return omp_get_max_threads();
}

}  // namespace phalanx::dnnl_util
