// The ring reduce-scatter, one algorithm in one file as Gloo's allreduce_ring.h is.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "dist/reductions.h"

namespace gloo {
class Context;
}

namespace phalanx::dist {

// Ring reduce-scatter of `count` elements per rank, laid out rank after rank in `all`; on
// return block `rank` of `all` holds the reduction. In step s each rank sends block
// (rank - s - 1) to its right neighbour and reduces block (rank - s - 2) from its left one into
// place, so every rank sends (p-1)/p of the data once: half of what all-reduce-then-keep-one-
// block costs. Written on Gloo's unbound buffers, like its own collectives (its templated
// ReduceScatterHalvingDoubling left later ring all-reduces in the process ~40x slower).
// `slot` names the transfers in Gloo (every rank must pass the same one for the same call);
// an aborted wait throws Error("aborted").
void reduce_scatter_ring(const std::shared_ptr<gloo::Context>& ctx, char* all, size_t count,
                         DType dtype, ReduceOp op, uint64_t slot,
                         std::chrono::milliseconds timeout);

}  // namespace phalanx::dist
