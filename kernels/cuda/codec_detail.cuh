// Internal to the device codecs (codec.cu, codec_dense.cu, codec_topk.cu):
// launch constants, the few device helpers they share, and the launchers each
// file gives codec.cu. nvcc only.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/codec.cuh"

namespace gccl::cuda::codec::detail {

constexpr int kThreads = 256;
constexpr unsigned kMaxGrid = 65535u * 16u;
constexpr uint64_t kNone = Status::kNone;

// Blocks for `work` items, one per thread, grid-stride beyond kMaxGrid.
inline unsigned gridFor(size_t work) {
  const size_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxGrid ? (blocks == 0 ? 1 : blocks) : kMaxGrid);
}

inline unsigned gridForBlocks(size_t blocks) {
  return static_cast<unsigned>(blocks < kMaxGrid ? blocks : kMaxGrid);
}

__device__ __forceinline__ bool nonFinite(float v) {
  return (__float_as_uint(v) & 0x7F800000u) == 0x7F800000u;
}
__device__ __forceinline__ bool nonFinite(double v) {
  return (static_cast<uint64_t>(__double_as_longlong(v)) & 0x7FF0000000000000ull) ==
         0x7FF0000000000000ull;
}

// A Status field keeps the lowest value recorded.
__device__ __forceinline__ void recordMin(uint64_t* field, uint64_t v) {
  atomicMin(reinterpret_cast<unsigned long long*>(field), static_cast<unsigned long long>(v));
}

// gcclSuccess, or gcclUnhandledCudaError naming `what` (codec.cu).
gcclResult_t cudaResult(cudaError_t err, const char* what);
// The error of the last launch on this thread, if any.
gcclResult_t lastLaunch();

// codec_dense.cu: the arguments are checked; count > 0.
gcclResult_t castEncode(const Params& p, const void* src, size_t count, gcclDataType_t type,
                        void* out, cudaStream_t stream);
gcclResult_t castDecode(const Params& p, const void* in, size_t count, gcclDataType_t type,
                        void* dst, cudaStream_t stream);
gcclResult_t quantizeEncode(const Params& p, const void* src, size_t count, gcclDataType_t type,
                            uint8_t* out, Status* status, cudaStream_t stream);
gcclResult_t quantizeDecode(const Params& p, const uint8_t* in, size_t count, gcclDataType_t type,
                            void* dst, cudaStream_t stream);
gcclResult_t latticeEncode(const Params& p, const void* src, size_t count, gcclDataType_t type,
                           uint8_t* out, Status* status, cudaStream_t stream);
gcclResult_t latticeDecode(const Params& p, const uint8_t* in, size_t count, gcclDataType_t type,
                           void* dst, const void* reference, Status* status, cudaStream_t stream);

// codec_topk.cu.
gcclResult_t topkEncode(const Params& p, const float* x, size_t count, uint8_t* out,
                        float* residual, Status* status, cudaStream_t stream);
gcclResult_t topkDecode(const Params& p, const uint8_t* in, size_t inBytes, size_t count,
                        float* dst, Status* status, cudaStream_t stream);

}  // namespace gccl::cuda::codec::detail
