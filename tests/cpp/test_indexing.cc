// Tensor indexing semantics (Python's, as PyTorch implements them), reached without Python.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/indexing.h"
#include "core/factory.h"

using namespace phalanx;
using autograd::TensorIndex;

namespace {
Tensor grid() {  // [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
  return arange(0, 12, 1, DType::Float32).view({3, 4});
}
double at(const Tensor& t, int64_t i, int64_t j) {
  return t.select(0, i).select(0, j).item();
}
}  // namespace

TEST(Indexing, IntegersSelectAndCountFromTheEnd) {
  Tensor r = autograd::index(grid(), {TensorIndex::integer_at(-1), TensorIndex::integer_at(1)});
  EXPECT_EQ(r.dim(), 0);
  EXPECT_DOUBLE_EQ(r.item(), 9.0);
}

TEST(Indexing, SlicesClampLikePythonAndStep) {
  Tensor g = grid();
  // g[-100:2, 1::2] -> rows 0..1, columns 1 and 3
  Tensor r = autograd::index(g, {TensorIndex::slice(-100, 2, 1), TensorIndex::slice(1, {}, 2)});
  EXPECT_EQ(r.sizes(), (Shape{2, 2}));
  EXPECT_DOUBLE_EQ(at(r, 1, 1), 7.0);
  EXPECT_EQ(r.storage(), g.storage());  // a view
  // an empty slice past the end
  EXPECT_EQ(autograd::index(g, {TensorIndex::slice(5, 100, 1)}).sizes(), (Shape{0, 4}));
  EXPECT_THROW(TensorIndex::slice({}, {}, 0), ValueError);
  EXPECT_THROW(TensorIndex::slice({}, {}, -1), ValueError);
}

TEST(Indexing, NewAxisAndEllipsis) {
  Tensor g = grid();
  EXPECT_EQ(autograd::index(g, {TensorIndex::new_axis()}).sizes(), (Shape{1, 3, 4}));
  Tensor r = autograd::index(g, {TensorIndex::ellipsis(), TensorIndex::integer_at(2)});
  EXPECT_EQ(r.sizes(), (Shape{3}));
  EXPECT_DOUBLE_EQ(r.select(0, 2).item(), 10.0);
}

TEST(Indexing, IndexTensorsGatherWithNegativeEntries) {
  Tensor idx = arange(-1, 1, 1, DType::Int64);  // [-1, 0]
  Tensor r = autograd::index(grid(), {TensorIndex::index_tensor(idx)});
  EXPECT_EQ(r.sizes(), (Shape{2, 4}));
  EXPECT_DOUBLE_EQ(at(r, 0, 0), 8.0);
  EXPECT_DOUBLE_EQ(at(r, 1, 3), 3.0);
  EXPECT_THROW(TensorIndex::index_tensor(zeros({2}, DType::Float32)), TypeError);
  EXPECT_THROW(TensorIndex::index_tensor(zeros({2, 2}, DType::Int64)), IndexError);
}

TEST(Indexing, TooManyIndicesIsAnIndexError) {
  std::vector<TensorIndex> three(3, TensorIndex::integer_at(0));
  EXPECT_THROW(autograd::index(grid(), three), IndexError);
}

TEST(Indexing, WritesGoIntoTheIndexedMemory) {
  Tensor g = grid();
  autograd::index_fill_(g, {TensorIndex::slice({}, {}, 1), TensorIndex::integer_at(0)}, -1.0);
  EXPECT_DOUBLE_EQ(at(g, 2, 0), -1.0);
  autograd::index_put_(g, {TensorIndex::integer_at(1)}, full({4}, 5, DType::Float32));
  EXPECT_DOUBLE_EQ(at(g, 1, 3), 5.0);
  Tensor idx = zeros({1}, DType::Int64);
  EXPECT_THROW(autograd::index_fill_(g, {TensorIndex::index_tensor(idx)}, 0.0), TypeError);
}

TEST(Indexing, GradientFlowsBackThroughTheView) {
  Tensor g = grid();
  g.autograd_meta().requires_grad = true;
  Tensor r = autograd::index(g, {TensorIndex::integer_at(1), TensorIndex::slice(1, 3, 1)});
  autograd::backward({r}, {ones({2})}, false);
  Tensor grad(g.autograd_meta().grad);
  EXPECT_DOUBLE_EQ(at(grad, 1, 1), 1.0);
  EXPECT_DOUBLE_EQ(at(grad, 1, 0), 0.0);
  EXPECT_DOUBLE_EQ(at(grad, 0, 1), 0.0);
}
