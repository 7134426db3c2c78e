// Element-wise reductions on CUDA device memory: the device twin of
// kernels/cpu/reduce.h. Plain C++ (no nvcc needed to include it), so the
// engine and the tests can call it from ordinary .cc files.
//
// Results are bit-for-bit those of gccl::kernels::reduce / divide, because
// ranks with host buffers and ranks with device buffers must agree on every
// reduced value: same canonical NaN, same -0 < +0 ordering in min/max, same
// float32 accumulation and round-to-nearest-even for float16/bfloat16, same
// wrapping integer arithmetic.
//
// Both calls are stream-ordered and asynchronous: they validate their
// arguments, enqueue one kernel on `stream` on the current device, and return.
// Pointers must be device-accessible from the current device, aligned to the
// element size, and may be the same buffer exactly but must not partially
// overlap. Errors the kernel meets while running surface later, on the stream.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "gccl/gccl.h"

namespace gccl::cuda {

// dst[i] = a[i] op b[i] for i < count; gcclAvg reduces as gcclSum (finish it
// with launchDivide). dst may be a, b or both.
// cudaErrorInvalidValue: a type or op outside the enums, a null or
// misaligned pointer with count > 0. count == 0 launches nothing.
cudaError_t launchReduce(void* dst, const void* a, const void* b, size_t count, gcclDataType_t type,
                         gcclRedOp_t op, cudaStream_t stream);

// dst[i] = src[i] / divisor, the last step of gcclAvg: integers truncate toward
// zero, float16/bfloat16 divide in float32 and round back. dst may be src.
// cudaErrorInvalidValue: divisor < 1, an invalid type, a null or misaligned
// pointer with count > 0.
cudaError_t launchDivide(void* dst, const void* src, size_t count, gcclDataType_t type, int divisor,
                         cudaStream_t stream);

}  // namespace gccl::cuda
