#include "kernels/cuda/codec.cuh"

#include <cuda_runtime.h>

#include <cstdint>

#include "base/check.h"
#include "kernels/cuda/codec_detail.cuh"

// The entry points: the CPU codec's parameter checks, the pointer checks,
// the Status reset, then the launchers of codec_dense.cu and codec_topk.cu.

namespace gccl::cuda::codec {

namespace detail {

gcclResult_t cudaResult(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return gcclSuccess;
  return setError(gcclUnhandledCudaError, "codec (device): %s failed: %s", what,
                  cudaGetErrorString(err));
}

gcclResult_t lastLaunch() {
  return cudaResult(cudaGetLastError(), "a kernel launch");
}

}  // namespace detail

namespace {

using detail::kNone;

bool aligned(const void* p, size_t a) {
  return reinterpret_cast<uintptr_t>(p) % a == 0;
}

size_t elementSize(gcclDataType_t t) {
  return t == gcclFloat64 ? 8 : (t == gcclFloat32 ? 4 : 2);
}

gcclResult_t resetStatus(Status* status, cudaStream_t stream) {
  if (status == nullptr) return gcclSuccess;
  return detail::cudaResult(cudaMemsetAsync(status, 0xFF, sizeof(Status), stream),
                            "cudaMemsetAsync");
}

}  // namespace

gcclResult_t launchEncode(const Params& p, const void* src, size_t count, gcclDataType_t type,
                          void* out, size_t outBytes, float* residual, Status* status,
                          cudaStream_t stream) {
  size_t need = 0;
  GCCL_CHECK(kernels::codec::encodedBytes(p, count, type, &need));
  GCCL_REQUIRE(outBytes >= need, gcclInvalidArgument,
               "codec (device): the output buffer has %zu bytes, the encoding needs %zu", outBytes,
               need);
  if (count == 0) return resetStatus(status, stream);
  GCCL_REQUIRE(src != nullptr && out != nullptr, gcclInvalidArgument,
               "codec (device): null source or output buffer");
  GCCL_REQUIRE(aligned(src, elementSize(type)) && aligned(out, 8), gcclInvalidArgument,
               "codec (device): the source must be aligned to its element size and the "
               "encoding to 8 bytes");
  GCCL_REQUIRE(p.codec == Codec::kCast || status != nullptr, gcclInvalidArgument,
               "codec (device): this codec needs a Status to report data errors (null)");
  GCCL_REQUIRE((p.codec == Codec::kTopK) == (residual != nullptr), gcclInvalidArgument,
               p.codec == Codec::kTopK ? "codec (device): top-k needs the caller's residual "
                                         "tensor (null)"
                                       : "codec (device): a residual is for top-k only");
  GCCL_REQUIRE(p.codec != Codec::kTopK || aligned(residual, 4), gcclInvalidArgument,
               "codec (device): the residual must be aligned to 4 bytes");
  GCCL_CHECK(resetStatus(status, stream));
  auto* o = static_cast<uint8_t*>(out);
  switch (p.codec) {
    case Codec::kCast:
      return detail::castEncode(p, src, count, type, out, stream);
    case Codec::kQuantize:
      return detail::quantizeEncode(p, src, count, type, o, status, stream);
    case Codec::kLattice:
      return detail::latticeEncode(p, src, count, type, o, status, stream);
    case Codec::kTopK:
      return detail::topkEncode(p, static_cast<const float*>(src), count, o, residual, status,
                                stream);
  }
  return setError(gcclInvalidArgument, "codec (device): unknown codec");
}

gcclResult_t launchDecode(const Params& p, const void* in, size_t inBytes, size_t count,
                          gcclDataType_t type, void* dst, const void* reference, Status* status,
                          cudaStream_t stream) {
  size_t need = 0;
  GCCL_CHECK(kernels::codec::encodedBytes(p, count, type, &need));
  if (count == 0) return resetStatus(status, stream);
  if (p.codec == Codec::kTopK) {
    GCCL_REQUIRE(inBytes >= 8 && in != nullptr, gcclInvalidArgument,
                 "codec (device): a top-k encoding has at least 8 bytes, got %zu", inBytes);
  } else {
    GCCL_REQUIRE(inBytes >= need, gcclInvalidArgument,
                 "codec (device): the encoding has %zu bytes, %zu elements need %zu", inBytes,
                 count, need);
  }
  GCCL_REQUIRE(in != nullptr && dst != nullptr, gcclInvalidArgument,
               "codec (device): null encoded buffer or destination tensor");
  GCCL_REQUIRE(aligned(dst, elementSize(type)) && aligned(in, 8), gcclInvalidArgument,
               "codec (device): the destination must be aligned to its element size and the "
               "encoding to 8 bytes");
  GCCL_REQUIRE((p.codec == Codec::kLattice) == (reference != nullptr), gcclInvalidArgument,
               p.codec == Codec::kLattice
                   ? "codec (device): lattice decoding needs the receiver's reference tensor "
                     "(null)"
                   : "codec (device): a reference tensor is for lattice decoding only");
  GCCL_REQUIRE(reference == nullptr || aligned(reference, elementSize(type)), gcclInvalidArgument,
               "codec (device): the reference must be aligned to its element size");
  GCCL_REQUIRE(p.codec == Codec::kCast || p.codec == Codec::kQuantize || status != nullptr,
               gcclInvalidArgument,
               "codec (device): this codec needs a Status to report data errors (null)");
  GCCL_CHECK(resetStatus(status, stream));
  const auto* b = static_cast<const uint8_t*>(in);
  switch (p.codec) {
    case Codec::kCast:
      return detail::castDecode(p, in, count, type, dst, stream);
    case Codec::kQuantize:
      return detail::quantizeDecode(p, b, count, type, dst, stream);
    case Codec::kLattice:
      return detail::latticeDecode(p, b, count, type, dst, reference, status, stream);
    case Codec::kTopK:
      return detail::topkDecode(p, b, inBytes, count, static_cast<float*>(dst), status, stream);
  }
  return setError(gcclInvalidArgument, "codec (device): unknown codec");
}

gcclResult_t statusResult(const Params& p, const Status& s, bool decoding) {
  // The CPU stops at the first bucket at fault: report whichever comes first.
  const bool byElement =
      s.element != kNone &&
      (s.bucket == kNone || s.element / p.bucket <= s.bucket || p.codec == Codec::kTopK);
  if (byElement) {
    switch (p.codec) {
      case Codec::kQuantize:
        return setError(gcclInvalidArgument,
                        "codec: element %llu is NaN or infinite; quantization needs finite values",
                        static_cast<unsigned long long>(s.element));
      case Codec::kLattice:
        return setError(gcclInvalidArgument,
                        decoding ? "codec: reference element %llu is NaN, too large or infinite; "
                                   "lattice decoding needs |r / delta| < 2^52 (delta %g)"
                                 : "codec: element %llu is NaN, too large or infinite; lattice "
                                   "quantization needs |x / delta| < 2^52 (delta %g)",
                        static_cast<unsigned long long>(s.element), p.delta);
      default:
        return setError(gcclInvalidArgument,
                        "codec: element %llu of x + residual is NaN or infinite; top-k needs "
                        "finite values",
                        static_cast<unsigned long long>(s.element));
    }
  }
  if (s.bucket != kNone) {
    const auto b = static_cast<unsigned long long>(s.bucket);
    const auto first = static_cast<unsigned long long>(s.bucket * p.bucket);
    if (p.codec == Codec::kLattice) {
      return setError(gcclInvalidArgument,
                      "codec: lattice check of bucket %llu (elements from %llu) failed: the "
                      "reference is too far from the encoded tensor (or the data is corrupt)",
                      b, first);
    }
    return setError(gcclInvalidArgument,
                    "codec: bucket %llu (elements from %llu) spans more than the float64 range; "
                    "use a smaller bucket",
                    b, first);
  }
  if (s.entry == kNone - 1) {
    return setError(gcclInvalidArgument,
                    "codec: the top-k encoding holds more entries than k = %zu or than its bytes",
                    p.k);
  }
  if (s.entry != kNone) {
    return setError(gcclInvalidArgument,
                    "codec: top-k entry %llu has an index out of range or out of order",
                    static_cast<unsigned long long>(s.entry));
  }
  return gcclSuccess;
}
}  // namespace gccl::cuda::codec
