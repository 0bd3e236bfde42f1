#include "dnnl/engine.h"

#include <omp.h>

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

void execute(const dnnl::primitive& p, const std::unordered_map<int, dnnl::memory>& args) {
  auto& s = thread_stream();
  p.execute(s, args);
  s.wait();
}

void set_num_threads(int n) {
  PHX_CHECK(n > 0, ValueError, "set_num_threads: expected a positive number, got ", n);
  omp_set_num_threads(n);
}

int get_num_threads() {
  return omp_get_max_threads();
}

}  // namespace phalanx::dnnl_util
