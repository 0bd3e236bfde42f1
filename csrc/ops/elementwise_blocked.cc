#include "ops/elementwise_blocked.h"

#include "dnnl/cached_primitive.h"
#include "dnnl/compat.h"
#include "dnnl/engine.h"
#include "dnnl/layout.h"

namespace phalanx::ops {

using namespace phalanx::dnnl_util;
namespace compat = phalanx::dnnl_compat;

Tensor blocked_binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = a_in.stable(), b = b_in.stable();  // layouts that stay as checked below
  dnnl::algorithm alg;
  switch (op) {
    case BinaryOp::Add:
      alg = dnnl::algorithm::binary_add;
      break;
    case BinaryOp::Sub:
      alg = dnnl::algorithm::binary_sub;
      break;
    case BinaryOp::Mul:
      alg = dnnl::algorithm::binary_mul;
      break;
    default:
      return {};
  }
  if (!(a.is_blocked() || b.is_blocked()) || a.sizes() != b.sizes() ||
      a.dtype() != DType::Float32 || b.dtype() != DType::Float32 || a.numel() == 0)
    return {};
  // Both operands in the layout of a blocked one; at most one reorder (none when they agree).
  const auto md = desc_of(a.is_blocked() ? a : b);
  Tensor x = reorder_to(a, md, ReorderKind::Data);
  Tensor y = reorder_to(b, md, ReorderKind::Data);
  auto e =
      cached<dnnl::binary>(cache_key("binary", static_cast<int>(alg), compat::md_key(md)), [&] {
        auto pd = compat::binary_pd(cpu_engine(), alg, md, md, md);
        return pd;
      });
  Tensor out = empty_like_desc(a.sizes(), md);
  execute(e->prim, {{DNNL_ARG_SRC_0, memory_of(x, md)},
                    {DNNL_ARG_SRC_1, memory_of(y, md)},
                    {DNNL_ARG_DST, memory_of(out, md)}});
  return out;
}

}  // namespace phalanx::ops
