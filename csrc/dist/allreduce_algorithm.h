// All-reduce on a Gloo context: the algorithms phalanx offers, the size-based choice among
// them, and the dispatch to Gloo.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>

#include "core/dtype.h"
#include "dist/reductions.h"

namespace gloo {
class Context;
}

namespace phalanx::dist {

// Gloo's all-reduce algorithms; Auto picks one by message size and world size (see
// choose_allreduce_algorithm). Gloo's older templated ones (chunked ring, halving-doubling)
// are deliberately absent: after one of them, Gloo's ring all-reduce in the same process was
// measured ~40x slower at 4 ranks, and a peer's data arriving before the receiver had built
// its side made the receiver's Gloo thread spin.
enum class AllreduceAlgorithm { Auto, Ring, Bcube };
const char* algorithm_name(AllreduceAlgorithm a);
// The rule behind Auto (exposed for tests and for the documentation of the choice).
AllreduceAlgorithm choose_allreduce_algorithm(size_t bytes, int world_size);

// Reduces `elements` values of `dtype` at `data` across the context's ranks, in place, with
// `algorithm` (Auto: choose_allreduce_algorithm). Gloo's errors propagate unchanged.
void allreduce(const std::shared_ptr<gloo::Context>& ctx, void* data, size_t elements, DType dtype,
               ReduceOp op, std::chrono::milliseconds timeout,
               AllreduceAlgorithm algorithm = AllreduceAlgorithm::Auto);

}  // namespace phalanx::dist
