// Wire codecs on CUDA device memory: the device twin of kernels/cpu/codec.h.
// Plain C++ (no nvcc needed to include it), so the engine and the tests can
// call it from ordinary .cc files.
//
// Same Params, same encodings, same bits: a device encoding is byte for byte
// the CPU encode() of the same input and Params (stochastic rounding draws
// the same counter-based uniform for each element index, so the same seed
// gives the same bytes), and a device decode writes the CPU decode()'s
// values. Ranks with host buffers and ranks with device buffers must read
// each other's messages. Sizes come from kernels::codec::encodedBytes().
//
// Both calls are stream-ordered and asynchronous. Before enqueueing anything
// they check the parameters with the CPU codec's checks (and the pointers),
// returning gcclInvalidArgument with the reason recorded by setError(); a
// CUDA call that fails returns gcclUnhandledCudaError. What only the data can
// tell (a NaN element, a lattice bucket whose check fails, a corrupt top-k
// index) is found by the kernels, which record it with 64-bit atomics in a
// Status in device (cudaMalloc) or managed memory, one Status per launch in
// flight; after synchronising the stream the caller copies
// the Status to the host and passes it to statusResult(), which gives the
// result and the message that the CPU codec would have given. On such a
// failure the output holds unspecified bytes, as on the CPU; lattice decode
// writes exactly the buckets whose check passed; top-k writes neither the
// encoding nor the residual.
//
// Pointers must be device-accessible from the current device; tensors
// aligned to their element size, encodings to 8 bytes. count == 0 enqueues
// nothing but the Status reset (null pointers accepted). A launch refused
// before enqueueing leaves the Status as it was: read it only after a launch
// that returned gcclSuccess.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "gccl/gccl.h"
#include "kernels/cpu/codec.h"

namespace gccl::cuda::codec {

using kernels::codec::Codec;
using kernels::codec::Params;
using kernels::codec::Rounding;
using kernels::codec::TopKSelect;

// What the kernels found wrong; every field is kNone when nothing was. Each
// launch resets it on the stream before its kernels run.
struct Status {
  static constexpr uint64_t kNone = ~uint64_t{0};
  // The lowest element at fault: NaN/Inf in a quantized tensor, |x / delta|
  // or |r / delta| not below 2^52 (lattice encode / decode), NaN/Inf in
  // x + residual (top-k encode).
  uint64_t element = kNone;
  // The lowest bucket at fault: a lattice check that failed (decode), a
  // float64 bucket whose range overflows (quantize encode).
  uint64_t bucket = kNone;
  // Top-k decode: the lowest entry whose index is out of range or not above
  // the one before; kNone - 1 when the kept count itself is too large.
  uint64_t entry = kNone;
};

// Encodes src (count elements of type, device memory) into out (outBytes
// bytes, at least encodedBytes()). kTopK: residual (float32, count elements)
// is updated in place as on the CPU, and the bytes written are 8 + 8 * the
// uint64 kept count at the start of out. status: device-accessible, may be
// null for kCast only (which cannot fail on the data).
gcclResult_t launchEncode(const Params& p, const void* src, size_t count, gcclDataType_t type,
                          void* out, size_t outBytes, float* residual, Status* status,
                          cudaStream_t stream);

// Decodes `in` (inBytes bytes, as encode wrote them) into dst (count
// elements of type). reference: kLattice only, the receiver's tensor (may be
// dst). status as for launchEncode (null for kCast and kQuantize accepted).
gcclResult_t launchDecode(const Params& p, const void* in, size_t inBytes, size_t count,
                          gcclDataType_t type, void* dst, const void* reference, Status* status,
                          cudaStream_t stream);

// The result of a launch once its stream is synchronised and its Status
// copied to the host: gcclSuccess, or gcclInvalidArgument with the CPU
// codec's reason recorded by setError().
gcclResult_t statusResult(const Params& p, const Status& s, bool decoding);

}  // namespace gccl::cuda::codec
