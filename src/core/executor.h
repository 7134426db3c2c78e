// The executor: where ops send their arithmetic and copies.
//
// Ops decide what moves where and when; the executor does the work on the
// memory the buffers live in. The CPU executor runs the host kernels
// (kernels/cpu) and memmove; an executor for device memory would enqueue the
// same operations as stream-ordered launches and copies. Every call names the
// memory type of its buffers (MemoryType: the API determines it once per call,
// memoryTypeOf), so an executor can refuse memory it cannot reach instead of
// touching it.
//
// Arithmetic calls take one memory type for all their operands: a reduction
// or a mix runs where its data lives, and the calls that start an op make
// sure the buffers of one op agree and that the executor reaches them
// (api_call.h, checkMemoryTypes), before anything is posted.
//
// Cost: one virtual call per chunk of work; nothing is allocated per call.
// Calls come from the driver, or from a caller thread that owns the buffers
// (the folds of overlap SGP and pairwise gossip), so an executor is safe to
// call from several threads at once. The CPU executor has finished the work
// when a call returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "gccl/gccl.h"
#include "kernels/cpu/codec.h"
#include "transports/transport.h"

namespace gccl {

using transport::MemoryType;
using transport::memoryTypeName;

// Bytes per element of `type` (0 outside the enum): ops size their buffers
// with it.
size_t elementSize(gcclDataType_t type);

class Executor {
 public:
  virtual ~Executor() = default;

  // Whether this executor works on `type` memory; its calls refuse the
  // types it does not reach.
  virtual bool reaches(MemoryType type) const = 0;

  // dst <- src, `bytes` bytes; the two may overlap (memmove semantics).
  virtual gcclResult_t copy(void* dst, MemoryType dstType, const void* src, MemoryType srcType,
                            size_t bytes) = 0;

  // dst[i] = a[i] op b[i] (kernels/cpu/reduce.h: bit-identical on every rank;
  // gcclAvg sums, divide() finishes it). dst may be a, b or both.
  virtual gcclResult_t reduce(void* dst, const void* a, const void* b, size_t count,
                              gcclDataType_t type, gcclRedOp_t op, MemoryType mem) = 0;
  // dst[i] = src[i] / divisor: the last step of gcclAvg (divisor: a rank count).
  virtual gcclResult_t divide(void* dst, const void* src, size_t count, gcclDataType_t type,
                              int divisor, MemoryType mem) = 0;

  // The gossip arithmetic on floating types (kernels/cpu/mix.h: fixed
  // evaluation order, the same bits on every CPU).
  // x <- a*x + sum_{j<ny} b[j]*ys[j]
  virtual gcclResult_t mix(void* x, double a, const void* const* ys, const double* b, int ny,
                           size_t count, gcclDataType_t type, MemoryType mem) = 0;
  // x <- a*x
  virtual gcclResult_t scale(void* x, double a, size_t count, gcclDataType_t type,
                             MemoryType mem) = 0;
  // x <- x + b*y
  virtual gcclResult_t axpy(void* x, double b, const void* y, size_t count, gcclDataType_t type,
                            MemoryType mem) = 0;
  // dst <- src / w (the de-biased PushSum model)
  virtual gcclResult_t debias(void* dst, const void* src, double w, size_t count,
                              gcclDataType_t type, MemoryType mem) = 0;

  // The wire codecs (kernels/cpu/codec.h), with that header's semantics and
  // errors: encode src (count elements of type) into out; decode in into dst.
  // residual (top-k) and reference (lattice) live in `mem` like the tensors;
  // the encoded bytes too.
  virtual gcclResult_t encode(const kernels::codec::Params& p, const void* src, size_t count,
                              gcclDataType_t type, void* out, size_t outBytes, size_t* written,
                              float* residual, MemoryType mem) = 0;
  virtual gcclResult_t decode(const kernels::codec::Params& p, const void* in, size_t inBytes,
                              size_t count, gcclDataType_t type, void* dst, const void* reference,
                              MemoryType mem) = 0;

  // dst <- `bytes` zero bytes.
  virtual gcclResult_t zero(void* dst, size_t bytes, MemoryType mem) = 0;
  // Sparse tensors (kernels/cpu/sparse.h, with its semantics): dst[idx[k]]
  // += values[k]; the merged sum of n sorted lists; the non-zero entries of a
  // dense tensor. The last two return gcclInvalidArgument when the result
  // does not fit (*outNnz: the entries needed).
  virtual gcclResult_t scatterAdd(void* dst, const uint32_t* indices, const void* values,
                                  size_t nnz, gcclDataType_t type, MemoryType mem) = 0;
  virtual gcclResult_t mergeSum(int n, const uint32_t* const* indices, const void* const* values,
                                const size_t* nnz, gcclDataType_t type, bool dropZeros,
                                uint32_t* outIndices, void* outValues, size_t capacity,
                                size_t* outNnz, MemoryType mem) = 0;
  virtual gcclResult_t compact(const void* dense, size_t count, gcclDataType_t type,
                               uint32_t* outIndices, void* outValues, size_t capacity,
                               size_t* outNnz, MemoryType mem) = 0;

  // Memory of `type`, 64-byte aligned, for scratch and staging buffers
  // (ScratchPool, ExecBuffer). `bytes` == 0 still gives a valid pointer.
  virtual gcclResult_t allocate(size_t bytes, MemoryType type, void** out) = 0;
  virtual void deallocate(void* p, MemoryType type) = 0;
};

// The executor of host memory (kernels/cpu). It refuses device memory with
// gcclInvalidUsage, naming the operation and the memory type.
std::shared_ptr<Executor> makeCpuExecutor();
// For work outside a communicator (gcclPushSumDebias): one per process.
Executor& defaultExecutor();

// A buffer of one memory type from an executor, returned to it on
// destruction; it keeps the executor alive (it may outlive a communicator).
class ExecBuffer {
 public:
  ExecBuffer() = default;
  ~ExecBuffer() { reset(); }
  ExecBuffer(ExecBuffer&& other) noexcept { *this = std::move(other); }
  ExecBuffer& operator=(ExecBuffer&& other) noexcept;
  ExecBuffer(const ExecBuffer&) = delete;
  ExecBuffer& operator=(const ExecBuffer&) = delete;

  gcclResult_t allocate(std::shared_ptr<Executor> exec, size_t bytes, MemoryType type);
  void reset();
  uint8_t* data() const { return data_; }
  size_t size() const { return bytes_; }
  MemoryType type() const { return type_; }

 private:
  std::shared_ptr<Executor> exec_;
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
  MemoryType type_ = MemoryType::kHost;
};

}  // namespace gccl
