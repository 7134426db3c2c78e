// The public gossip calls: PushSum (SGP), its de-biasing helper, and
// neighbour averaging (D-PSGD). Argument checks name what is wrong and
// happen before anything changes; the step itself runs on the progress
// engine like any collective (mix_op.cc).
#include <cmath>

#include "core/api_call.h"
#include "core/executor.h"
#include "gossip/gossip_checks.h"
#include "gossip/gossip_ops.h"
#include "gossip/join.h"

namespace gccl {

gcclResult_t checkFloatingType(gcclDataType_t type, const char* call) {
  GCCL_CHECK(checkType(type, call));
  GCCL_REQUIRE(
      type == gcclFloat16 || type == gcclBfloat16 || type == gcclFloat32 || type == gcclFloat64,
      gcclInvalidArgument,
      "%s: datatype %d is not a floating-point type (gossip averages need float16, "
      "bfloat16, float32 or float64)",
      call, static_cast<int>(type));
  return gcclSuccess;
}

gcclResult_t checkGossipModel(gcclComm* comm, void* x, size_t count, gcclDataType_t type,
                              const char* call, size_t* bytes, MemoryType* mem) {
  GCCL_CHECK(checkFloatingType(type, call));
  GCCL_CHECK(checkCount(count, type, 1, "count", call, bytes));
  GCCL_CHECK(checkBuffer(x, count, type, "x", call));
  return checkMemoryTypes(*comm->engine->executor(), x, x, call, mem, mem);
}

gcclResult_t checkTopologyFor(gcclComm* comm, gcclTopology_t topo, gcclMixing_t mixing,
                              const char* call, std::shared_ptr<Topology>* out) {
  std::shared_ptr<Topology> t;
  GCCL_CHECK(topologyFromHandle(topo, call, &t));
  GCCL_REQUIRE(t->nranks() == comm->nranks, gcclInvalidArgument,
               "%s: the topology has %d ranks but the communicator has %d", call, t->nranks(),
               comm->nranks);
  GCCL_CHECK(t->validate(mixing, call));
  *out = std::move(t);
  return gcclSuccess;
}

}  // namespace gccl

using namespace gccl;

extern "C" {

gcclResult_t gcclPushSum(void* x, size_t count, gcclDataType_t datatype, double* psWeight,
                         gcclTopology_t topo, uint64_t step, gcclComm_t comm, gcclStream_t stream,
                         gcclRequest_t* request) {
  return pushSum("gcclPushSum", x, count, datatype, psWeight, topo, step, nullptr, comm, stream,
                 request);
}

gcclResult_t gcclPushSumEx(void* x, size_t count, gcclDataType_t datatype, double* psWeight,
                           gcclTopology_t topo, uint64_t step, const gcclGossipOptions_t* options,
                           gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request) {
  return pushSum("gcclPushSumEx", x, count, datatype, psWeight, topo, step, options, comm, stream,
                 request);
}

}  // extern "C"

namespace gccl {

gcclResult_t pushSum(const char* call, void* x, size_t count, gcclDataType_t datatype,
                     double* psWeight, gcclTopology_t topo, uint64_t step,
                     const gcclGossipOptions_t* options, gcclComm_t comm, gcclStream_t stream,
                     gcclRequest_t* request) {
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkFloatingType(datatype, call));
    GCCL_CHECK(checkStream(stream, call));
    size_t bytes;
    GCCL_CHECK(checkCount(count, datatype, 1, "count", call, &bytes));
    GCCL_CHECK(checkBuffer(x, count, datatype, "x", call));
    GCCL_REQUIRE(psWeight != nullptr, gcclInvalidArgument, "%s: psWeight is NULL", call);
    // A step still in flight writes the weight when it completes (progress
    // thread): read it atomically. Either value is positive for a valid run.
    double w;
    __atomic_load(psWeight, &w, __ATOMIC_ACQUIRE);
    GCCL_REQUIRE(std::isfinite(w) && w > 0, gcclInvalidArgument,
                 "%s: psWeight is %g; a push-sum weight must be finite and positive", call, w);
    GossipArgs a;
    GCCL_CHECK(checkTopologyFor(comm, topo, gcclMixColumnStochastic, call, &a.topo));
    GCCL_CHECK(checkMemoryTypes(*comm->engine->executor(), x, x, call, &a.sendMem, &a.recvMem));
    a.send = x;
    a.recv = x;
    a.count = count;
    a.type = datatype;
    a.step = step;
    a.pushSum = true;
    a.psWeight = psWeight;
    GCCL_CHECK(readGossipOptions(options, call, &a.codec));
    GCCL_CHECK(checkCodecType(a.codec, datatype, call));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto op = makeMixOp(a, req);
    return launch(comm, std::move(op), req, request);
  });
}

}  // namespace gccl

extern "C" {

gcclResult_t gcclPushSumDebias(const void* x, void* z, size_t count, gcclDataType_t datatype,
                               double psWeight) {
  const char* call = "gcclPushSumDebias";
  clearThreadLastError();
  GCCL_CHECK(checkFloatingType(datatype, call));
  size_t bytes;
  GCCL_CHECK(checkCount(count, datatype, 1, "count", call, &bytes));
  GCCL_CHECK(checkBuffer(x, count, datatype, "x", call));
  GCCL_CHECK(checkBuffer(z, count, datatype, "z", call));
  GCCL_REQUIRE(std::isfinite(psWeight) && psWeight != 0, gcclInvalidArgument,
               "%s: psWeight is %g; it must be finite and non-zero", call, psWeight);
  GCCL_CHECK(checkOverlap(x, bytes, z, bytes, z, call));
  MemoryType xMem, zMem;
  GCCL_CHECK(checkMemoryTypes(defaultExecutor(), x, z, call, &xMem, &zMem));
  if (count == 0) return gcclSuccess;
  gcclResult_t r = defaultExecutor().debias(z, x, psWeight, count, datatype, zMem);
  if (r != gcclSuccess) return setError(r, "%s: %s", call, threadLastError());
  return gcclSuccess;
}

gcclResult_t gcclGossipJoin(void* x, size_t count, gcclDataType_t datatype, double* psWeight,
                            uint64_t* nextStep, gcclComm_t comm, gcclStream_t stream,
                            gcclRequest_t* request) {
  const char* call = "gcclGossipJoin";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_REQUIRE(comm->faultTolerant, gcclInvalidUsage,
                 "%s: needs fault-tolerant mode (a rank made by gcclCommRejoin)", call);
    GCCL_REQUIRE(nextStep != nullptr, gcclInvalidArgument, "%s: nextStep is NULL", call);
    GCCL_CHECK(checkStream(stream, call));
    size_t bytes;
    MemoryType mem;
    GCCL_CHECK(checkGossipModel(comm, x, count, datatype, call, &bytes, &mem));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto op = makeJoinOp(x, count, datatype, mem, psWeight, nextStep, req);
    return launch(comm, std::move(op), req, request);
  });
}

gcclResult_t gcclNeighborAverage(const void* sendbuff, void* recvbuff, size_t count,
                                 gcclDataType_t datatype, gcclTopology_t topo, uint64_t step,
                                 gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request) {
  return neighborAverage("gcclNeighborAverage", sendbuff, recvbuff, count, datatype, topo, step,
                         nullptr, comm, stream, request);
}

gcclResult_t gcclNeighborAverageEx(const void* sendbuff, void* recvbuff, size_t count,
                                   gcclDataType_t datatype, gcclTopology_t topo, uint64_t step,
                                   const gcclGossipOptions_t* options, gcclComm_t comm,
                                   gcclStream_t stream, gcclRequest_t* request) {
  return neighborAverage("gcclNeighborAverageEx", sendbuff, recvbuff, count, datatype, topo, step,
                         options, comm, stream, request);
}

}  // extern "C"

namespace gccl {

gcclResult_t neighborAverage(const char* call, const void* sendbuff, void* recvbuff, size_t count,
                             gcclDataType_t datatype, gcclTopology_t topo, uint64_t step,
                             const gcclGossipOptions_t* options, gcclComm_t comm,
                             gcclStream_t stream, gcclRequest_t* request) {
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkFloatingType(datatype, call));
    GCCL_CHECK(checkStream(stream, call));
    size_t bytes;
    GCCL_CHECK(checkCount(count, datatype, 1, "count", call, &bytes));
    GCCL_CHECK(checkBuffer(sendbuff, count, datatype, "sendbuff", call));
    GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
    GCCL_CHECK(checkOverlap(sendbuff, bytes, recvbuff, bytes, recvbuff, call));
    GossipArgs a;
    GCCL_CHECK(checkTopologyFor(comm, topo, gcclMixDoublyStochastic, call, &a.topo));
    GCCL_CHECK(checkMemoryTypes(*comm->engine->executor(), sendbuff, recvbuff, call, &a.sendMem,
                                &a.recvMem));
    a.send = sendbuff;
    a.recv = recvbuff;
    a.count = count;
    a.type = datatype;
    a.step = step;
    GCCL_CHECK(readGossipOptions(options, call, &a.codec));
    GCCL_CHECK(checkCodecType(a.codec, datatype, call));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto op = makeMixOp(a, req);
    return launch(comm, std::move(op), req, request);
  });
}

}  // namespace gccl
