// The public collective and point-to-point calls: validate arguments (before
// anything is changed), pick the algorithm and launch the op (api_call.h).
#include <cinttypes>
#include <vector>

#include "coll/algorithms.h"
#include "base/check.h"
#include "core/comm.h"
#include "core/api_call.h"
#include "core/request.h"

namespace gccl {

namespace {

// `usedSend` and `usedRecv`: the buffers this rank reads and writes (null
// for one it does not use), whose memory types the op carries.
gcclResult_t baseArgs(gcclComm* comm, const void* send, void* recv, size_t count,
                      gcclDataType_t type, gcclRedOp_t op, int root, const void* usedSend,
                      const void* usedRecv, const char* call, CollArgs* out) {
  CollArgs& a = *out;
  GCCL_CHECK(checkMemoryTypes(*comm->engine->executor(), usedSend, usedRecv, call, &a.sendMem,
                              &a.recvMem));
  a.send = send;
  a.recv = recv;
  a.count = count;
  a.type = type;
  a.op = op;
  a.root = root;
  a.rank = comm->rank;
  a.nranks = comm->nranks;
  a.chunkBytes = comm->engine->params().chunkBytes;
  return gcclSuccess;
}

// A blocking send to this rank itself outside a group can never be matched:
// the receive would have to come from this very thread, which is blocked.
gcclResult_t checkSelfPeer(gcclComm* comm, int peer, gcclRequest_t* request, const char* call) {
  GCCL_REQUIRE(peer != comm->rank || request != nullptr || groupOpen(), gcclInvalidUsage,
               "%s: a blocking call with peer %d (this rank itself) outside a group can never "
               "be matched; put the send and the receive in one gcclGroupStart/gcclGroupEnd, "
               "or pass a request",
               call, peer);
  return gcclSuccess;
}

}  // namespace

}  // namespace gccl

using namespace gccl;

extern "C" {

gcclResult_t gcclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           gcclDataType_t datatype, gcclRedOp_t op, gcclComm_t comm,
                           gcclStream_t stream, gcclRequest_t* request) {
  const char* call = "gcclAllReduce";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkType(datatype, call));
    GCCL_CHECK(checkRedOp(op, call));
    GCCL_CHECK(checkStream(stream, call));
    size_t bytes;
    GCCL_CHECK(checkCount(count, datatype, 1, "count", call, &bytes));
    GCCL_CHECK(checkBuffer(sendbuff, count, datatype, "sendbuff", call));
    GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
    GCCL_CHECK(checkOverlap(sendbuff, bytes, recvbuff, bytes, recvbuff, call));
    CollArgs a;
    GCCL_CHECK(
        baseArgs(comm, sendbuff, recvbuff, count, datatype, op, 0, sendbuff, recvbuff, call, &a));
    const OpParams& p = comm->engine->params();
    bool ring = p.allReduceAlgo == 1 || (p.allReduceAlgo == 0 && bytes >= p.ringThresholdBytes &&
                                         count >= static_cast<size_t>(comm->nranks));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o =
        ring ? makeRingOp(RingMode::kAllReduce, a, req) : makeRecursiveDoublingAllReduce(a, req);
    return launch(comm, std::move(o), req, request);
  });
}

gcclResult_t gcclBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                           gcclDataType_t datatype, int root, gcclComm_t comm, gcclStream_t stream,
                           gcclRequest_t* request) {
  const char* call = "gcclBroadcast";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkType(datatype, call));
    GCCL_CHECK(checkRoot(comm, root, call));
    GCCL_CHECK(checkStream(stream, call));
    size_t bytes;
    GCCL_CHECK(checkCount(count, datatype, 1, "count", call, &bytes));
    if (comm->rank == root) GCCL_CHECK(checkBuffer(sendbuff, count, datatype, "sendbuff", call));
    GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
    if (comm->rank == root)
      GCCL_CHECK(checkOverlap(sendbuff, bytes, recvbuff, bytes, recvbuff, call));
    CollArgs a;
    GCCL_CHECK(baseArgs(comm, sendbuff, recvbuff, count, datatype, gcclSum, root,
                        comm->rank == root ? sendbuff : nullptr, recvbuff, call, &a));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeBroadcastOp(a, bytes >= comm->engine->params().ringThresholdBytes, req);
    return launch(comm, std::move(o), req, request);
  });
}

gcclResult_t gcclReduce(const void* sendbuff, void* recvbuff, size_t count, gcclDataType_t datatype,
                        gcclRedOp_t op, int root, gcclComm_t comm, gcclStream_t stream,
                        gcclRequest_t* request) {
  const char* call = "gcclReduce";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkType(datatype, call));
    GCCL_CHECK(checkRedOp(op, call));
    GCCL_CHECK(checkRoot(comm, root, call));
    GCCL_CHECK(checkStream(stream, call));
    size_t bytes;
    GCCL_CHECK(checkCount(count, datatype, 1, "count", call, &bytes));
    GCCL_CHECK(checkBuffer(sendbuff, count, datatype, "sendbuff", call));
    if (comm->rank == root) {
      GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
      GCCL_CHECK(checkOverlap(sendbuff, bytes, recvbuff, bytes, recvbuff, call));
    }
    CollArgs a;
    GCCL_CHECK(baseArgs(comm, sendbuff, recvbuff, count, datatype, op, root, sendbuff,
                        comm->rank == root ? recvbuff : nullptr, call, &a));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeReduceOp(a, bytes >= comm->engine->params().ringThresholdBytes, req);
    return launch(comm, std::move(o), req, request);
  });
}

gcclResult_t gcclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           gcclDataType_t datatype, gcclComm_t comm, gcclStream_t stream,
                           gcclRequest_t* request) {
  const char* call = "gcclAllGather";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkType(datatype, call));
    GCCL_CHECK(checkStream(stream, call));
    size_t bytes;
    GCCL_CHECK(checkCount(sendcount, datatype, static_cast<size_t>(comm->nranks), "sendcount", call,
                          &bytes));
    GCCL_CHECK(checkBuffer(sendbuff, sendcount, datatype, "sendbuff", call));
    GCCL_CHECK(checkBuffer(recvbuff, sendcount * static_cast<size_t>(comm->nranks), datatype,
                           "recvbuff", call));
    const void* inPlace =
        static_cast<const uint8_t*>(recvbuff) + static_cast<size_t>(comm->rank) * bytes;
    GCCL_CHECK(checkOverlap(sendbuff, bytes, recvbuff, bytes * static_cast<size_t>(comm->nranks),
                            inPlace, call));
    CollArgs a;
    GCCL_CHECK(baseArgs(comm, sendbuff, recvbuff, sendcount, datatype, gcclSum, 0, sendbuff,
                        recvbuff, call, &a));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeRingOp(RingMode::kAllGather, a, req);
    return launch(comm, std::move(o), req, request);
  });
}

gcclResult_t gcclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                               gcclDataType_t datatype, gcclRedOp_t op, gcclComm_t comm,
                               gcclStream_t stream, gcclRequest_t* request) {
  const char* call = "gcclReduceScatter";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkType(datatype, call));
    GCCL_CHECK(checkRedOp(op, call));
    GCCL_CHECK(checkStream(stream, call));
    size_t bytes;
    GCCL_CHECK(checkCount(recvcount, datatype, static_cast<size_t>(comm->nranks), "recvcount", call,
                          &bytes));
    GCCL_CHECK(checkBuffer(sendbuff, recvcount * static_cast<size_t>(comm->nranks), datatype,
                           "sendbuff", call));
    GCCL_CHECK(checkBuffer(recvbuff, recvcount, datatype, "recvbuff", call));
    const void* inPlaceSend =
        static_cast<const uint8_t*>(recvbuff) - static_cast<size_t>(comm->rank) * bytes;
    GCCL_CHECK(checkOverlap(sendbuff, bytes * static_cast<size_t>(comm->nranks), recvbuff, bytes,
                            inPlaceSend, call));
    CollArgs a;
    GCCL_CHECK(baseArgs(comm, sendbuff, recvbuff, recvcount, datatype, op, 0, sendbuff, recvbuff,
                        call, &a));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeRingOp(RingMode::kReduceScatter, a, req);
    return launch(comm, std::move(o), req, request);
  });
}

gcclResult_t gcclBarrier(gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request) {
  const char* call = "gcclBarrier";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkStream(stream, call));
    CollArgs a;
    GCCL_CHECK(
        baseArgs(comm, nullptr, nullptr, 0, gcclUint8, gcclSum, 0, nullptr, nullptr, call, &a));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeBarrierOp(a, req);
    return launch(comm, std::move(o), req, request);
  });
}

gcclResult_t gcclSend(const void* sendbuff, size_t count, gcclDataType_t datatype, int peer,
                      gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request) {
  const char* call = "gcclSend";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkType(datatype, call));
    GCCL_CHECK(checkStream(stream, call));
    GCCL_REQUIRE(peer >= 0 && peer < comm->nranks, gcclInvalidArgument,
                 "%s: peer %d is out of range for %d ranks", call, peer, comm->nranks);
    size_t bytes;
    GCCL_CHECK(checkCount(count, datatype, 1, "count", call, &bytes));
    GCCL_CHECK(checkBuffer(sendbuff, count, datatype, "sendbuff", call));
    MemoryType mem;
    GCCL_CHECK(checkMemoryTypes(*comm->engine->executor(), sendbuff, nullptr, call, &mem, &mem));
    GCCL_CHECK(checkSelfPeer(comm, peer, request, call));
    gcclRequest* req = newRequest(comm->timeoutMs);
    uint64_t seq = comm->sendSeq[static_cast<size_t>(peer)]++;
    auto o = makeSendOp(sendbuff, bytes, mem, peer, seq, req);
    return launch(comm, std::move(o), req, request);
  });
}

gcclResult_t gcclRecv(void* recvbuff, size_t count, gcclDataType_t datatype, int peer,
                      gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request) {
  const char* call = "gcclRecv";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkType(datatype, call));
    GCCL_CHECK(checkStream(stream, call));
    GCCL_REQUIRE(peer >= 0 && peer < comm->nranks, gcclInvalidArgument,
                 "%s: peer %d is out of range for %d ranks", call, peer, comm->nranks);
    size_t bytes;
    GCCL_CHECK(checkCount(count, datatype, 1, "count", call, &bytes));
    GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
    MemoryType mem;
    GCCL_CHECK(checkMemoryTypes(*comm->engine->executor(), nullptr, recvbuff, call, &mem, &mem));
    GCCL_CHECK(checkSelfPeer(comm, peer, request, call));
    gcclRequest* req = newRequest(comm->timeoutMs);
    uint64_t seq = comm->recvSeq[static_cast<size_t>(peer)]++;
    auto o = makeRecvOp(recvbuff, bytes, mem, peer, seq, req);
    return launch(comm, std::move(o), req, request);
  });
}

}  // extern "C"
