// Sparse AllReduce (SPEC 2.6; the sparse aggregation of Cong, Bhardwaj and
// Feng, and SparCML's switch to dense once the union is no longer sparse),
// and top-k gradient compression on top of it.
//
// Phase 1: the ranks all-gather their nnz, so every rank makes the same
// choice. Sparse: each rank sends its indices and values to every other in
// one group (a sparse all-gather), then sums the n lists in rank order
// (kernels/cpu/sparse.h): the same additions in the same order on every rank,
// hence the same bits. Dense: each rank scatters its pairs into a zeroed
// tensor and runs the dense AllReduce, which gives every rank the same bits.
// The sparse exchange is chosen while the ranks' pairs take fewer bytes than
// a dense ring moves per rank (2 (n - 1) / n of the tensor).
#include <cstring>
#include <vector>

#include "base/check.h"
#include "core/api_call.h"
#include "core/comm.h"
#include "core/executor.h"
#include "core/wire_codec.h"
#include "kernels/cpu/sparse.h"

namespace gccl {

namespace {

constexpr size_t kMaxSparseCount = size_t{1} << 32;

struct SparseIn {
  const uint32_t* indices;
  const void* values;
  size_t nnz;
  size_t count;
  gcclDataType_t type;
  gcclRedOp_t op;
};

// Either a dense recvbuff or a sparse output.
struct SparseOut {
  void* dense = nullptr;
  uint32_t* indices = nullptr;
  void* values = nullptr;
  size_t capacity = 0;
  size_t* nnz = nullptr;
};

gcclResult_t checkSparseInput(const SparseIn& in, const char* call) {
  GCCL_CHECK(checkType(in.type, call));
  GCCL_REQUIRE(in.op == gcclSum || in.op == gcclAvg, gcclInvalidArgument,
               "%s: reduction %d is not supported; a sparse AllReduce sums (gcclSum) or averages "
               "(gcclAvg)",
               call, static_cast<int>(in.op));
  GCCL_REQUIRE(in.count <= kMaxSparseCount, gcclInvalidArgument,
               "%s: count %zu exceeds 2^32, the range of uint32 indices", call, in.count);
  size_t bytes;
  GCCL_CHECK(checkCount(in.count, in.type, 1, "count", call, &bytes));
  GCCL_REQUIRE(in.nnz <= in.count, gcclInvalidArgument,
               "%s: nnz %zu exceeds count %zu (indices must be distinct)", call, in.nnz, in.count);
  if (in.nnz > 0) {
    GCCL_REQUIRE(in.indices != nullptr, gcclInvalidArgument, "%s: indices is NULL", call);
    GCCL_CHECK(checkBuffer(in.values, in.nnz, in.type, "values", call));
    size_t bad = 0;
    if (!kernels::sparse::checkIndices(in.indices, in.nnz, in.count, &bad)) {
      if (in.indices[bad] >= in.count)
        return setError(gcclInvalidArgument, "%s: indices[%zu] = %u is out of range (count %zu)",
                        call, bad, in.indices[bad], in.count);
      return setError(gcclInvalidArgument,
                      "%s: indices[%zu] = %u follows indices[%zu] = %u; indices must ascend "
                      "strictly (sorted, no duplicates)",
                      call, bad, in.indices[bad], bad - 1, in.indices[bad - 1]);
    }
  }
  return gcclSuccess;
}

gcclResult_t sparseAllReduce(gcclComm* comm, const char* call, const SparseIn& in,
                             const SparseOut& out, MemoryType mem) {
  Executor& exec = *comm->engine->executor();
  const int n = comm->nranks, me = comm->rank;
  const size_t elem = elementSize(in.type);
  // Phase 1: every rank's nnz.
  std::vector<uint64_t> all(static_cast<size_t>(n));
  uint64_t mine = in.nnz;
  GCCL_CHECK(gcclAllGather(&mine, all.data(), 1, gcclUint64, comm, nullptr, nullptr));
  uint64_t total = 0;
  for (uint64_t v : all)
    total += v;
  const double sparseBytes = static_cast<double>(total) * static_cast<double>(4 + elem);
  const double denseBytes = 2.0 * (n - 1) / n * static_cast<double>(in.count * elem);
  const bool sparse = n == 1 || sparseBytes <= denseBytes;

  if (sparse) {
    // Phase 2: everyone's pairs, then the sum in rank order.
    size_t recvEntries = static_cast<size_t>(total - in.nnz);
    ExecBuffer gathered;
    GCCL_CHECK(gathered.allocate(comm->engine->executor(), recvEntries * (4 + elem) + 64, mem));
    std::vector<const uint32_t*> idx(static_cast<size_t>(n));
    std::vector<const void*> val(static_cast<size_t>(n));
    std::vector<size_t> nnz(static_cast<size_t>(n));
    uint8_t* idxAt = gathered.data();
    uint8_t* valAt = idxAt + ((recvEntries * 4 + 63) & ~size_t{63});
    GCCL_CHECK(gcclGroupStart());
    gcclResult_t r = gcclSuccess;
    for (int p = 0; p < n && r == gcclSuccess; ++p) {
      nnz[p] = static_cast<size_t>(all[p]);
      if (p == me) {
        idx[p] = in.indices;
        val[p] = in.values;
        continue;
      }
      idx[p] = reinterpret_cast<const uint32_t*>(idxAt);
      val[p] = valAt;
      if (nnz[p] > 0) {
        r = gcclRecv(idxAt, nnz[p], gcclUint32, p, comm, nullptr, nullptr);
        if (r == gcclSuccess) r = gcclRecv(valAt, nnz[p], in.type, p, comm, nullptr, nullptr);
      }
      if (r == gcclSuccess && in.nnz > 0) {
        r = gcclSend(in.indices, in.nnz, gcclUint32, p, comm, nullptr, nullptr);
        if (r == gcclSuccess) r = gcclSend(in.values, in.nnz, in.type, p, comm, nullptr, nullptr);
      }
      idxAt += nnz[p] * 4;
      valAt += nnz[p] * elem;
    }
    gcclResult_t end = gcclGroupEnd();
    GCCL_CHECK(r);
    GCCL_CHECK(end);
    if (out.dense != nullptr) {
      GCCL_CHECK(exec.zero(out.dense, in.count * elem, mem));
      for (int p = 0; p < n; ++p)
        GCCL_CHECK(exec.scatterAdd(out.dense, idx[p], val[p], nnz[p], in.type, mem));
      if (in.op == gcclAvg && n > 1)
        GCCL_CHECK(exec.divide(out.dense, out.dense, in.count, in.type, n, mem));
      return gcclSuccess;
    }
    gcclResult_t m = exec.mergeSum(n, idx.data(), val.data(), nnz.data(), in.type, true,
                                   out.indices, out.values, out.capacity, out.nnz, mem);
    if (m != gcclSuccess) return setError(m, "%s: %s", call, threadLastError());
  } else {
    // Dense: scatter into a zeroed tensor and reduce it like any other.
    ExecBuffer scratch;
    void* dense = out.dense;
    if (dense == nullptr) {
      GCCL_CHECK(scratch.allocate(comm->engine->executor(), in.count * elem, mem));
      dense = scratch.data();
    }
    GCCL_CHECK(exec.zero(dense, in.count * elem, mem));
    GCCL_CHECK(exec.scatterAdd(dense, in.indices, in.values, in.nnz, in.type, mem));
    GCCL_CHECK(gcclAllReduce(dense, dense, in.count, in.type, in.op, comm, nullptr, nullptr));
    if (out.dense != nullptr) return gcclSuccess;
    gcclResult_t m =
        exec.compact(dense, in.count, in.type, out.indices, out.values, out.capacity, out.nnz, mem);
    if (m != gcclSuccess) return setError(m, "%s: %s", call, threadLastError());
    return gcclSuccess;
  }
  if (in.op == gcclAvg && n > 1)
    GCCL_CHECK(exec.divide(out.values, out.values, *out.nnz, in.type, n, mem));
  return gcclSuccess;
}

}  // namespace

}  // namespace gccl

using namespace gccl;

extern "C" {

gcclResult_t gcclSparseAllReduce(const uint32_t* indices, const void* values, size_t nnz,
                                 size_t count, gcclDataType_t datatype, gcclRedOp_t op,
                                 void* recvbuff, gcclComm_t comm, gcclStream_t stream) {
  const char* call = "gcclSparseAllReduce";
  return apiCall(comm, call, nullptr, [&]() -> gcclResult_t {
    GCCL_CHECK(checkStream(stream, call));
    SparseIn in{indices, values, nnz, count, datatype, op};
    GCCL_CHECK(checkSparseInput(in, call));
    GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
    MemoryType valuesMem, recvMem;
    GCCL_CHECK(checkMemoryTypes(*comm->engine->executor(), nnz > 0 ? values : nullptr, recvbuff,
                                call, &valuesMem, &recvMem));
    SparseOut out;
    out.dense = recvbuff;
    return sparseAllReduce(comm, call, in, out, recvMem);
  });
}

gcclResult_t gcclSparseAllReduceToSparse(const uint32_t* indices, const void* values, size_t nnz,
                                         size_t count, gcclDataType_t datatype, gcclRedOp_t op,
                                         uint32_t* outIndices, void* outValues, size_t capacity,
                                         size_t* outNnz, gcclComm_t comm, gcclStream_t stream) {
  const char* call = "gcclSparseAllReduceToSparse";
  return apiCall(comm, call, nullptr, [&]() -> gcclResult_t {
    GCCL_CHECK(checkStream(stream, call));
    SparseIn in{indices, values, nnz, count, datatype, op};
    GCCL_CHECK(checkSparseInput(in, call));
    GCCL_REQUIRE(outNnz != nullptr, gcclInvalidArgument, "%s: outNnz is NULL", call);
    if (capacity > 0) {
      GCCL_REQUIRE(outIndices != nullptr, gcclInvalidArgument, "%s: outIndices is NULL", call);
      GCCL_CHECK(checkBuffer(outValues, capacity, datatype, "outValues", call));
    }
    MemoryType valuesMem, outMem;
    GCCL_CHECK(checkMemoryTypes(*comm->engine->executor(), nnz > 0 ? values : nullptr,
                                capacity > 0 ? outValues : nullptr, call, &valuesMem, &outMem));
    SparseOut out;
    out.indices = outIndices;
    out.values = outValues;
    out.capacity = capacity;
    out.nnz = outNnz;
    return sparseAllReduce(comm, call, in, out, outMem);
  });
}

gcclResult_t gcclTopKAllReduce(const float* grad, float* residual, size_t count,
                               const gcclCodecConfig_t* config, gcclRedOp_t op, float* recvbuff,
                               size_t* sentNnz, gcclComm_t comm, gcclStream_t stream) {
  const char* call = "gcclTopKAllReduce";
  return apiCall(comm, call, nullptr, [&]() -> gcclResult_t {
    GCCL_CHECK(checkStream(stream, call));
    GCCL_REQUIRE(config != nullptr, gcclInvalidArgument, "%s: config is NULL", call);
    WireCodec codec;
    GCCL_CHECK(readCodecConfig(config, call, &codec));
    GCCL_REQUIRE(codec.active && codec.params.codec == kernels::codec::Codec::kTopK,
                 gcclInvalidArgument, "%s: the codec is %d, not gcclCodecTopK", call,
                 static_cast<int>(config->codec));
    GCCL_REQUIRE(count <= kMaxSparseCount, gcclInvalidArgument,
                 "%s: count %zu exceeds 2^32, the range of uint32 indices", call, count);
    size_t bytes;
    GCCL_CHECK(checkCount(count, gcclFloat32, 1, "count", call, &bytes));
    GCCL_CHECK(checkBuffer(grad, count, gcclFloat32, "grad", call));
    GCCL_CHECK(checkBuffer(residual, count, gcclFloat32, "residual", call));
    GCCL_CHECK(checkBuffer(recvbuff, count, gcclFloat32, "recvbuff", call));
    auto overlaps = [bytes](const void* a, const void* b) {
      auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
      return bytes > 0 && x < y + bytes && y < x + bytes;
    };
    GCCL_REQUIRE(!overlaps(residual, grad) && !overlaps(residual, recvbuff), gcclInvalidArgument,
                 "%s: residual overlaps %s; it is this tensor's own error-feedback buffer", call,
                 overlaps(residual, grad) ? "grad" : "recvbuff");
    GCCL_REQUIRE(op == gcclSum || op == gcclAvg, gcclInvalidArgument,
                 "%s: reduction %d is not supported; it sums (gcclSum) or averages (gcclAvg)", call,
                 static_cast<int>(op));
    MemoryType gradMem, recvMem;
    Executor& exec = *comm->engine->executor();
    GCCL_CHECK(checkMemoryTypes(exec, grad, recvbuff, call, &gradMem, &recvMem));
    // Select into an encoding: {uint64 kept, kept indices, kept values}.
    kernels::codec::Params p = codec.forMessage(count, static_cast<uint64_t>(comm->rank));
    size_t encBytes;
    GCCL_CHECK(codec.maxBytes(count, gcclFloat32, &encBytes));
    ExecBuffer enc;
    GCCL_CHECK(enc.allocate(comm->engine->executor(), encBytes, recvMem));
    size_t written = 0;
    gcclResult_t r =
        exec.encode(p, grad, count, gcclFloat32, enc.data(), encBytes, &written, residual, recvMem);
    if (r != gcclSuccess) return setError(r, "%s: %s", call, threadLastError());
    uint64_t kept = 0;
    if (written >= sizeof(kept)) std::memcpy(&kept, enc.data(), sizeof(kept));
    const auto* indices = reinterpret_cast<const uint32_t*>(enc.data() + sizeof(kept));
    const uint8_t* values = enc.data() + sizeof(kept) + kept * sizeof(uint32_t);
    if (sentNnz != nullptr) *sentNnz = static_cast<size_t>(kept);
    SparseIn in{indices, values, static_cast<size_t>(kept), count, gcclFloat32, op};
    SparseOut out;
    out.dense = recvbuff;
    return sparseAllReduce(comm, call, in, out, recvMem);
  });
}

}  // extern "C"
