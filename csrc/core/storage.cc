#include "core/storage.h"

#include <cstdlib>
#include <new>

#include "core/error.h"

namespace phalanx {

void* aligned_alloc_bytes(size_t nbytes) {
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (!p) throw Error(detail::cat("out of memory allocating ", nbytes, " bytes"));
  return p;
}

void aligned_free(void* p) {
  std::free(p);
}

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  auto s = std::make_shared<Storage>();
  s->data = aligned_alloc_bytes(nbytes);
  s->nbytes = nbytes;
  return s;
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, std::shared_ptr<void> owner) {
  auto s = std::make_shared<Storage>();
  s->data = data;
  s->nbytes = nbytes;
  s->owner = std::move(owner);
  return s;
}

Storage::~Storage() {
  if (!owner) aligned_free(data);
}

}  // namespace phalanx
