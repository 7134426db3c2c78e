// Weighted mixing on host memory: the arithmetic under the gossip collectives
// (PushSum/SGP, neighbour averaging, pairwise gossip), which fold received
// tensors into the local model as x <- a*x + sum_j b_j*y_j.
//
// Accumulation rules (every function, every path):
//  - float16/bfloat16 are widened to float32, the whole expression is computed
//    in float32 with the coefficients rounded to float32 once per call, and the
//    result is rounded back to nearest even once, at the end. Accumulating in
//    the storage type would lose most of a small update to rounding.
//  - float32 computes in float32 with the coefficients rounded to float32: that
//    is the precision an fp32 model trains in, and widening to double would
//    halve the elements per vector and keep the kernel off memory bandwidth.
//  - float64 computes in float64.
//  - Evaluation order is fixed: mix() computes
//        ((a*x + b[0]*y[0]) + b[1]*y[1]) + ... + b[ny-1]*y[ny-1]
//    left to right, whatever ny is and however the kernel splits the work, and
//    no multiply-add is fused (no FMA contraction). Results are therefore the
//    same bits on every CPU and vector path (AVX2 or baseline build, F16C or
//    portable float16 conversions), which ranks of one job rely on.
//  - A NaN result comes out as the canonical quiet NaN (positive, payload 0):
//    x86 picks the payload of one NaN operand, and which one depends on how
//    the compiler ordered the operands in each build.
//  - No term is skipped: a zero coefficient times an infinite or NaN element
//    gives NaN, as the formula says.
// Floating-point arithmetic assumes the default rounding mode and no FTZ/DAZ.
//
// Only the floating types are accepted; any other type returns false and
// leaves memory untouched. count == 0 touches no memory.
#pragma once

#include <cstddef>

#include "gccl/gccl.h"

namespace gccl::kernels {

// x[i] = a * x[i].
bool scale(void* x, double a, size_t count, gcclDataType_t type);

// x[i] = x[i] + b * y[i]: folds one received message into the model. y must
// not overlap x (y == x returns false).
bool axpy(void* x, double b, const void* y, size_t count, gcclDataType_t type);

// x[i] = a * x[i] + sum_{j<ny} b[j] * ys[j][i], in the order stated above, in
// one pass over memory. ny may be 0 (then it is scale()); the ys may overlap
// each other but not x (ys[j] == x, or ny < 0, returns false).
// scale(x, a) and axpy(x, b, y) give the same bits as mix(x, a, {}, {}, 0) and
// mix(x, 1, {y}, {b}, 1).
bool mix(void* x, double a, const void* const* ys, const double* b, int ny, size_t count,
         gcclDataType_t type);

// dst[i] = src[i] / w: the PushSum de-biased model z = x / w. A true division
// (correctly rounded in the accumulation type), not a multiply by 1/w. dst may
// be src, but must not partially overlap it. w must be finite and non-zero,
// also once rounded to float32 for the types that compute in float32;
// otherwise returns false.
bool debias(void* dst, const void* src, double w, size_t count, gcclDataType_t type);

namespace detail {
// mix() and debias() built for the baseline instruction set only: neither the
// AVX2 build nor the F16C float16 conversions, which the public functions use
// where the CPU has them. All must give the same bits; these exist so that
// tests can check it on any machine. Same arguments and results.
bool mixPortable(void* x, double a, const void* const* ys, const double* b, int ny, size_t count,
                 gcclDataType_t type);
bool debiasPortable(void* dst, const void* src, double w, size_t count, gcclDataType_t type);
}  // namespace detail

}  // namespace gccl::kernels
