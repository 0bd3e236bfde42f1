// Max pooling on channel counts that are not a multiple of 8 (LeNet's 6). oneDNN 2.6 is
// 20-40x slower there than on 16 channels in every layout it offers (padded blocked, plain,
// channels-last), so these run a direct loop instead, in the input's plain or channels-last
// layout. The workspace then holds each output's argmax (an int32 index into its input
// plane); the result says MaxPoolKernel::Direct so the backward takes this path too.
#pragma once
#include "core/sliding_window.h"
#include "core/tensor.h"
#include "ops/pool.h"

namespace phalanx::ops {

// Whether the direct loop takes this (float32, 4-D) input.
bool direct_max_pool_applies(const Tensor& x);
MaxPoolResult direct_max_pool2d_forward(const Tensor& x, const Pool2dParams& p, const WindowAxis& h,
                                        const WindowAxis& w);
Tensor direct_max_pool2d_backward(const Tensor& dy, const Tensor& x, const Tensor& argmax);

}  // namespace phalanx::ops
