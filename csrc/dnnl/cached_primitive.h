// A oneDNN primitive with its descriptor, created once per key through the primitive cache:
// the one typed way ops get their primitives, instead of a private Entry struct per op.
#pragma once
#include <memory>
#include <string>
#include <utility>

#include "dnnl/primitive_cache.h"

namespace phalanx::dnnl_util {

template <class Prim>
struct Cached {
  typename Prim::primitive_desc pd;
  Prim prim;
};

// The cached (pd, primitive) for `key`; on a miss make_pd() builds the descriptor (it must
// return Prim::primitive_desc) and the primitive is created from it. Built on the cache's
// public get_or_create, so it inherits its locking and eviction.
template <class Prim, class MakePd>
std::shared_ptr<Cached<Prim>> cached(const std::string& key, MakePd&& make_pd) {
  return PrimitiveCache::global().get_or_create<Cached<Prim>>(key, [&] {
    typename Prim::primitive_desc pd = std::forward<MakePd>(make_pd)();
    return std::make_shared<Cached<Prim>>(Cached<Prim>{pd, Prim(pd)});
  });
}

}  // namespace phalanx::dnnl_util
