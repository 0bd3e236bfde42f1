#include "core/factory.h"

#include <cmath>

namespace phalanx {

static void check_sizes(const Shape& sizes, const char* what) {
  for (int64_t s : sizes)
    PHX_CHECK(s >= 0, ValueError, what, ": negative dimension ", s, " in size ", shape_str(sizes));
}

Tensor full(const Shape& sizes, double value, DType dtype) {
  check_sizes(sizes, "full");
  Tensor t = Tensor::empty(sizes, dtype);
  t.fill(value);
  t.storage()->version = 0;  // a new tensor: filling it is not a modification
  return t;
}

Tensor arange(double start, double end, double step, DType dtype) {
  PHX_CHECK(step != 0, ValueError, "arange: step must be nonzero");
  PHX_CHECK((step > 0 && end >= start) || (step < 0 && end <= start), ValueError,
            "arange: upper bound ", end, " and lower bound ", start,
            " inconsistent with step sign ", step);
  const double count = std::ceil((end - start) / step);
  // Checked before the cast: a double beyond int64's range does not convert (undefined).
  PHX_CHECK(std::isfinite(count) && count < 9.2e18, MemoryError, "arange: start ", start, ", end ",
            end, " and step ", step, " give ", count, " elements, too many to allocate");
  auto n = static_cast<int64_t>(count);
  Tensor t = Tensor::empty({n}, dtype);
  char* p = static_cast<char*>(t.raw_data());
  for (int64_t i = 0; i < n; ++i)
    store_from_double(p + i * itemsize(dtype), dtype, start + i * step);
  return t;
}

// Floats are drawn in float32 from the top 24 bits, so values are exactly representable.
static float uniform01(std::mt19937_64& e) {
  return static_cast<float>(e() >> 40) * (1.0f / 16777216.0f);
}

void uniform_(const Tensor& t, double low, double high, const GeneratorPtr& gen) {
  PHX_CHECK(t.dtype() == DType::Float32 && t.is_contiguous(), TypeError,
            "uniform_: expects a contiguous float32 tensor, got ", t.describe());
  auto g = or_default(gen);
  std::lock_guard<std::mutex> lock(g->mutex());
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    p[i] = static_cast<float>(low + (high - low) * uniform01(g->engine()));
  t.bump_version();
}

void normal_(const Tensor& t, double mean, double std, const GeneratorPtr& gen) {
  PHX_CHECK(t.dtype() == DType::Float32 && t.is_contiguous(), TypeError,
            "normal_: expects a contiguous float32 tensor, got ", t.describe());
  PHX_CHECK(std >= 0, ValueError, "normal_: std must be >= 0, got ", std);
  auto g = or_default(gen);
  std::lock_guard<std::mutex> lock(g->mutex());
  float* p = t.data<float>();
  int64_t n = t.numel();
  for (int64_t i = 0; i < n; i += 2) {  // Box-Muller, two values per pair of uniforms
    double u1 = 1.0 - uniform01(g->engine()), u2 = uniform01(g->engine());
    double r = std::sqrt(-2.0 * std::log(u1)), th = 2.0 * M_PI * u2;
    p[i] = static_cast<float>(mean + std * r * std::cos(th));
    if (i + 1 < n) p[i + 1] = static_cast<float>(mean + std * r * std::sin(th));
  }
  t.bump_version();
}

void bernoulli_(const Tensor& t, double prob, const GeneratorPtr& gen) {
  PHX_CHECK(t.dtype() == DType::Float32 && t.is_contiguous(), TypeError,
            "bernoulli_: expects a contiguous float32 tensor, got ", t.describe());
  auto g = or_default(gen);
  std::lock_guard<std::mutex> lock(g->mutex());
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = uniform01(g->engine()) < prob ? 1.0f : 0.0f;
  t.bump_version();
}

Tensor rand(const Shape& sizes, const GeneratorPtr& gen, DType dtype) {
  check_sizes(sizes, "rand");
  PHX_CHECK(dtype == DType::Float32, TypeError, "rand: only float32 is supported, got ",
            dtype_name(dtype));
  Tensor t = Tensor::empty(sizes, dtype);
  uniform_(t, 0, 1, gen);
  t.storage()->version = 0;
  return t;
}

Tensor randn(const Shape& sizes, const GeneratorPtr& gen, DType dtype) {
  check_sizes(sizes, "randn");
  PHX_CHECK(dtype == DType::Float32, TypeError, "randn: only float32 is supported, got ",
            dtype_name(dtype));
  Tensor t = Tensor::empty(sizes, dtype);
  normal_(t, 0, 1, gen);
  t.storage()->version = 0;
  return t;
}

Tensor randint(int64_t low, int64_t high, const Shape& sizes, const GeneratorPtr& gen,
               DType dtype) {
  check_sizes(sizes, "randint");
  PHX_CHECK(high > low, ValueError, "randint: high (", high, ") must be greater than low (", low,
            ")");
  Tensor t = Tensor::empty(sizes, dtype);
  auto g = or_default(gen);
  std::lock_guard<std::mutex> lock(g->mutex());
  std::uniform_int_distribution<int64_t> dist(low, high - 1);
  char* p = static_cast<char*>(t.raw_data());
  for (int64_t i = 0; i < t.numel(); ++i)
    store_from_double(p + i * itemsize(dtype), dtype, static_cast<double>(dist(g->engine())));
  return t;
}

Tensor randperm(int64_t n, const GeneratorPtr& gen) {
  PHX_CHECK(n >= 0, ValueError, "randperm: n must be non-negative, got ", n);
  Tensor t = Tensor::empty({n}, DType::Int64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  auto g = or_default(gen);
  std::lock_guard<std::mutex> lock(g->mutex());
  for (int64_t i = n - 1; i > 0; --i) {
    std::uniform_int_distribution<int64_t> dist(0, i);
    std::swap(p[i], p[dist(g->engine())]);
  }
  return t;
}

}  // namespace phalanx
