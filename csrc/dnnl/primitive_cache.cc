#include "dnnl/primitive_cache.h"

namespace phalanx::dnnl_util {

PrimitiveCache& PrimitiveCache::global() {
  static PrimitiveCache cache;
  return cache;
}

}  // namespace phalanx::dnnl_util
