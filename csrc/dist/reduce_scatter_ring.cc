#include "dist/reduce_scatter_ring.h"

#include <gloo/context.h>
#include <gloo/transport/unbound_buffer.h>

#include <vector>

#include "core/error.h"

namespace phalanx::dist {

void reduce_scatter_ring(const std::shared_ptr<gloo::Context>& ctx, char* all, size_t count,
                         DType dtype, ReduceOp op, uint64_t slot,
                         std::chrono::milliseconds timeout) {
  const int p = ctx->size, rank = ctx->rank;
  const size_t block = count * itemsize(dtype);
  if (p > 1) {
    ReduceFn fn = reduce_fn(dtype, op);
    std::vector<char> incoming(block);
    auto out = ctx->createUnboundBuffer(all, block * static_cast<size_t>(p));
    auto in = ctx->createUnboundBuffer(incoming.data(), block);
    const int right = (rank + 1) % p, left = (rank + p - 1) % p;
    auto wrap = [p](int b) { return static_cast<size_t>(((b % p) + p) % p); };
    for (int s = 0; s < p - 1; ++s) {
      size_t send_block = wrap(rank - s - 1), recv_block = wrap(rank - s - 2);
      out->send(right, slot, send_block * block, block);
      in->recv(left, slot, 0, block);
      if (!in->waitRecv(timeout)) throw Error("aborted");
      char* target = all + recv_block * block;
      fn(target, target, incoming.data(), count);
      if (!out->waitSend(timeout)) throw Error("aborted");
    }
  }
  if (op == ReduceOp::Avg) divide_in_place(all + rank * block, dtype, count, p);
}

}  // namespace phalanx::dist
