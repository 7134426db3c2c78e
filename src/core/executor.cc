// The CPU executor: the host kernels behind the Executor interface.
#include "core/executor.h"

#include <cstdlib>
#include <cstring>

#include "base/check.h"
#include "kernels/cpu/mix.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/sparse.h"

namespace gccl {

size_t elementSize(gcclDataType_t type) {
  return kernels::typeSize(type);
}

namespace {

const char* typeLabel(gcclDataType_t type) {
  static const char* kNames[] = {"int8",   "uint8",   "int32",   "uint32",  "int64",
                                 "uint64", "float16", "float32", "float64", "bfloat16"};
  unsigned t = static_cast<unsigned>(type);
  return t < sizeof(kNames) / sizeof(kNames[0]) ? kNames[t] : "an unknown type";
}

class CpuExecutor final : public Executor {
 public:
  bool reaches(MemoryType type) const override { return type == MemoryType::kHost; }

  gcclResult_t copy(void* dst, MemoryType dstType, const void* src, MemoryType srcType,
                    size_t bytes) override {
    GCCL_CHECK(host("copy to", dstType));
    GCCL_CHECK(host("copy from", srcType));
    if (bytes > 0 && dst != src) memmove(dst, src, bytes);
    return gcclSuccess;
  }

  gcclResult_t reduce(void* dst, const void* a, const void* b, size_t count, gcclDataType_t type,
                      gcclRedOp_t op, MemoryType mem) override {
    GCCL_CHECK(host("reduce", mem));
    // The kernel leaves dst untouched for a type or op it does not know:
    // say so instead of returning data that was never reduced.
    GCCL_REQUIRE(
        static_cast<unsigned>(type) < gcclNumTypes && static_cast<unsigned>(op) < gcclNumOps,
        gcclInvalidArgument, "reduce: type %d or reduction %d is not a gccl one",
        static_cast<int>(type), static_cast<int>(op));
    if (count > 0) kernels::reduce(dst, a, b, count, type, op);
    return gcclSuccess;
  }

  gcclResult_t divide(void* dst, const void* src, size_t count, gcclDataType_t type, int divisor,
                      MemoryType mem) override {
    GCCL_CHECK(host("divide", mem));
    GCCL_REQUIRE(static_cast<unsigned>(type) < gcclNumTypes && divisor >= 1, gcclInvalidArgument,
                 "divide: type %d or divisor %d is not valid (a gccl type, a divisor >= 1)",
                 static_cast<int>(type), divisor);
    if (count > 0) kernels::divide(dst, src, count, type, divisor);
    return gcclSuccess;
  }

  gcclResult_t mix(void* x, double a, const void* const* ys, const double* b, int ny, size_t count,
                   gcclDataType_t type, MemoryType mem) override {
    GCCL_CHECK(host("mix", mem));
    GCCL_REQUIRE(kernels::mix(x, a, ys, b, ny, count, type), gcclInvalidArgument,
                 "mix of %s data refused (a floating type, ny >= 0, no y aliasing x)",
                 typeLabel(type));
    return gcclSuccess;
  }

  gcclResult_t scale(void* x, double a, size_t count, gcclDataType_t type,
                     MemoryType mem) override {
    GCCL_CHECK(host("scale", mem));
    GCCL_REQUIRE(kernels::scale(x, a, count, type), gcclInvalidArgument,
                 "scale of %s data refused (a floating type is needed)", typeLabel(type));
    return gcclSuccess;
  }

  gcclResult_t axpy(void* x, double b, const void* y, size_t count, gcclDataType_t type,
                    MemoryType mem) override {
    GCCL_CHECK(host("axpy", mem));
    GCCL_REQUIRE(kernels::axpy(x, b, y, count, type), gcclInvalidArgument,
                 "axpy of %s data refused (a floating type, y apart from x)", typeLabel(type));
    return gcclSuccess;
  }

  gcclResult_t debias(void* dst, const void* src, double w, size_t count, gcclDataType_t type,
                      MemoryType mem) override {
    GCCL_CHECK(host("debias", mem));
    GCCL_REQUIRE(kernels::debias(dst, src, w, count, type), gcclInvalidArgument,
                 "debias of %s data by %g refused (a floating type, and a weight that is finite "
                 "and non-zero, also once rounded to float32 for the types computed in float32)",
                 typeLabel(type), w);
    return gcclSuccess;
  }

  gcclResult_t encode(const kernels::codec::Params& p, const void* src, size_t count,
                      gcclDataType_t type, void* out, size_t outBytes, size_t* written,
                      float* residual, MemoryType mem) override {
    GCCL_CHECK(host("encode", mem));
    return kernels::codec::encode(p, src, count, type, out, outBytes, written, residual);
  }

  gcclResult_t decode(const kernels::codec::Params& p, const void* in, size_t inBytes, size_t count,
                      gcclDataType_t type, void* dst, const void* reference,
                      MemoryType mem) override {
    GCCL_CHECK(host("decode", mem));
    return kernels::codec::decode(p, in, inBytes, count, type, dst, reference);
  }

  gcclResult_t zero(void* dst, size_t bytes, MemoryType mem) override {
    GCCL_CHECK(host("zero", mem));
    if (bytes > 0) memset(dst, 0, bytes);
    return gcclSuccess;
  }

  gcclResult_t scatterAdd(void* dst, const uint32_t* indices, const void* values, size_t nnz,
                          gcclDataType_t type, MemoryType mem) override {
    GCCL_CHECK(host("scatter-add into", mem));
    GCCL_REQUIRE(kernels::sparse::scatterAdd(dst, indices, values, nnz, type), gcclInvalidArgument,
                 "scatter-add of %s data refused (not a gccl type)", typeLabel(type));
    return gcclSuccess;
  }

  gcclResult_t mergeSum(int n, const uint32_t* const* indices, const void* const* values,
                        const size_t* nnz, gcclDataType_t type, bool dropZeros,
                        uint32_t* outIndices, void* outValues, size_t capacity, size_t* outNnz,
                        MemoryType mem) override {
    GCCL_CHECK(host("merge", mem));
    GCCL_REQUIRE(static_cast<unsigned>(type) < gcclNumTypes, gcclInvalidArgument,
                 "merge of %s data refused (not a gccl type)", typeLabel(type));
    GCCL_REQUIRE(kernels::sparse::mergeSum(n, indices, values, nnz, type, dropZeros, outIndices,
                                           outValues, capacity, outNnz),
                 gcclInvalidArgument, "the sparse result has %zu entries but there is room for %zu",
                 *outNnz, capacity);
    return gcclSuccess;
  }

  gcclResult_t compact(const void* dense, size_t count, gcclDataType_t type, uint32_t* outIndices,
                       void* outValues, size_t capacity, size_t* outNnz, MemoryType mem) override {
    GCCL_CHECK(host("compact", mem));
    GCCL_REQUIRE(static_cast<unsigned>(type) < gcclNumTypes, gcclInvalidArgument,
                 "compaction of %s data refused (not a gccl type)", typeLabel(type));
    GCCL_REQUIRE(
        kernels::sparse::compact(dense, count, type, outIndices, outValues, capacity, outNnz),
        gcclInvalidArgument, "the sparse result has %zu entries but there is room for %zu", *outNnz,
        capacity);
    return gcclSuccess;
  }

  gcclResult_t allocate(size_t bytes, MemoryType type, void** out) override {
    *out = nullptr;
    GCCL_CHECK(host("allocate", type));
    size_t rounded = bytes == 0 ? 64 : (bytes + 63) & ~size_t{63};
    GCCL_REQUIRE(rounded >= bytes, gcclInvalidArgument, "allocate: %zu bytes is too large", bytes);
    *out = aligned_alloc(64, rounded);
    GCCL_REQUIRE(*out != nullptr, gcclSystemError, "out of memory for %zu bytes of host memory",
                 rounded);
    return gcclSuccess;
  }

  void deallocate(void* p, MemoryType) override { free(p); }

 private:
  // Out of line: the refusal is never on the hot path.
  [[gnu::noinline]] static gcclResult_t refuse(const char* what, MemoryType type) {
    return setError(gcclInvalidUsage,
                    "the CPU executor cannot %s %s memory: this build runs on host memory only",
                    what, memoryTypeName(type));
  }
  static gcclResult_t host(const char* what, MemoryType type) {
    return type == MemoryType::kHost ? gcclSuccess : refuse(what, type);
  }
};

}  // namespace

std::shared_ptr<Executor> makeCpuExecutor() {
  return std::make_shared<CpuExecutor>();
}

Executor& defaultExecutor() {
  // Never destroyed: a buffer may be returned to it during exit.
  static auto* exec = new CpuExecutor();
  return *exec;
}

ExecBuffer& ExecBuffer::operator=(ExecBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    exec_ = std::move(other.exec_);
    data_ = other.data_;
    bytes_ = other.bytes_;
    type_ = other.type_;
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

gcclResult_t ExecBuffer::allocate(std::shared_ptr<Executor> exec, size_t bytes, MemoryType type) {
  reset();
  void* p = nullptr;
  GCCL_CHECK(exec->allocate(bytes, type, &p));
  exec_ = std::move(exec);
  data_ = static_cast<uint8_t*>(p);
  bytes_ = bytes;
  type_ = type;
  return gcclSuccess;
}

void ExecBuffer::reset() {
  if (data_ != nullptr) exec_->deallocate(data_, type_);
  data_ = nullptr;
  bytes_ = 0;
  exec_.reset();
}

}  // namespace gccl
