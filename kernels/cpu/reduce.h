// Element-wise reductions on host memory: the arithmetic under AllReduce,
// Reduce, ReduceScatter and the averaging collectives.
//
// Results are deterministic and identical on every CPU, because ranks of one
// job must agree bit for bit on a reduced buffer:
//  - reduce(a, b) == reduce(b, a) bit for bit, for every type and op.
//  - Floating-point results that are NaN come out as the canonical quiet NaN
//    (positive, payload 0): payloads would otherwise depend on operand order.
//  - min/max order -0 below +0 and return NaN if either operand is NaN.
//  - float16/bfloat16 are widened to float32, combined, and rounded back to
//    nearest even (see half.h).
//  - Integer sum/prod wrap modulo 2^bits.
// Floating-point arithmetic assumes the default rounding mode, and no FTZ/DAZ
// (these only matter for bfloat16/float32/float64 subnormals).
//
// The loops are vectorised; on x86-64 they are built for AVX2 as well, picked
// at load time, and float16 sum/prod/divide use F16C where the CPU has it.
#pragma once

#include <cstddef>

#include "gccl/gccl.h"

namespace gccl::kernels {

// Bytes per element of `type`; 0 for a value outside the enum.
size_t typeSize(gcclDataType_t type);

// dst[i] = a[i] op b[i] for i < count. dst may be a, b or both, but must not
// partially overlap either. gcclAvg reduces as gcclSum; the caller finishes
// it with divide(). An invalid type or op leaves dst untouched (callers
// validate arguments first).
void reduce(void* dst, const void* a, const void* b, size_t count, gcclDataType_t type,
            gcclRedOp_t op);

// dst[i] = src[i] / divisor, the last step of gcclAvg. Integers truncate
// toward zero; float16/bfloat16 divide in float32 and round back. dst may be
// src, but must not partially overlap it. divisor must be >= 1 (a rank
// count); any other value, or an invalid type, leaves dst untouched.
void divide(void* dst, const void* src, size_t count, gcclDataType_t type, int divisor);

namespace detail {
// reduce() and divide() without CPU-specific conversion instructions (F16C for
// float16), which they use where the CPU has them. Both must give the same
// bits; these exist so that tests can check it on any machine.
void reducePortable(void* dst, const void* a, const void* b, size_t count, gcclDataType_t type,
                    gcclRedOp_t op);
void dividePortable(void* dst, const void* src, size_t count, gcclDataType_t type, int divisor);
}  // namespace detail

}  // namespace gccl::kernels
