// The public collective and point-to-point calls, requests and groups:
// validate arguments (before anything is changed), pick the algorithm, hand
// the op to the communicator's engine and, when asked, wait for it.
#include <cinttypes>
#include <cstring>
#include <vector>

#include "coll/algorithms.h"
#include "core/check.h"
#include "core/comm.h"
#include "core/request.h"
#include "kernels/cpu/reduce.h"

namespace gccl {

namespace {

// Calls queued between gcclGroupStart and gcclGroupEnd on this thread.
struct GroupEntry {
  gcclComm* comm;
  std::unique_ptr<Op> op;
  gcclRequest* request;
  bool caller_waits;
};
thread_local int tGroupDepth = 0;
thread_local std::vector<GroupEntry> tGroup;

// A request may wait this long: the engine itself gives up after at most
// 4 timeouts without progress, so this only fires if the engine is wedged.
int64_t waitBoundMs(int64_t timeoutMs) {
  return 5 * timeoutMs + 10000;
}

gcclResult_t waitAndRelease(gcclRequest* req) {
  std::string reason;
  gcclResult_t r = waitRequest(req, waitBoundMs(req->timeoutMs), &reason);
  releaseRequest(req);
  if (r != gcclSuccess) return setError(r, "%s", reason.c_str());
  return gcclSuccess;
}

gcclResult_t checkType(gcclDataType_t type, const char* call) {
  GCCL_REQUIRE(static_cast<int>(type) >= 0 && type < gcclNumTypes, gcclInvalidArgument,
               "%s: datatype %d is not a gccl data type (0..%d)", call, static_cast<int>(type),
               gcclNumTypes - 1);
  return gcclSuccess;
}

gcclResult_t checkRedOp(gcclRedOp_t op, const char* call) {
  GCCL_REQUIRE(static_cast<int>(op) >= 0 && op < gcclNumOps, gcclInvalidArgument,
               "%s: op %d is not a gccl reduction (0..%d)", call, static_cast<int>(op),
               gcclNumOps - 1);
  return gcclSuccess;
}

gcclResult_t checkBuffer(const void* p, size_t count, gcclDataType_t type, const char* what,
                         const char* call) {
  if (count == 0) return gcclSuccess;
  GCCL_REQUIRE(p != nullptr, gcclInvalidArgument, "%s: %s is NULL with count %zu", call, what,
               count);
  size_t elem = kernels::typeSize(type);
  GCCL_REQUIRE(reinterpret_cast<uintptr_t>(p) % elem == 0, gcclInvalidArgument,
               "%s: %s %p is not aligned to its %zu-byte elements", call, what, p, elem);
  return gcclSuccess;
}

// sendbuff and recvbuff must be the same region (in place) or not overlap.
gcclResult_t checkOverlap(const void* send, size_t sendBytes, const void* recv, size_t recvBytes,
                          const void* inPlaceSend, const char* call) {
  if (sendBytes == 0 || recvBytes == 0 || send == inPlaceSend) return gcclSuccess;
  auto s = reinterpret_cast<uintptr_t>(send), r = reinterpret_cast<uintptr_t>(recv);
  bool overlap = s < r + recvBytes && r < s + sendBytes;
  GCCL_REQUIRE(!overlap, gcclInvalidArgument,
               "%s: sendbuff and recvbuff overlap without being in place", call);
  return gcclSuccess;
}

gcclResult_t checkStream(gcclStream_t stream, const char* call) {
  GCCL_REQUIRE(stream == nullptr, gcclInvalidArgument,
               "%s: a CUDA stream was given, but the buffers are host memory and this build "
               "runs host collectives only; pass NULL",
               call);
  return gcclSuccess;
}

gcclResult_t checkRoot(gcclComm* comm, int root, const char* call) {
  GCCL_REQUIRE(root >= 0 && root < comm->nranks, gcclInvalidArgument,
               "%s: root %d is out of range for %d ranks", call, root, comm->nranks);
  return gcclSuccess;
}

// Hands `op` to the engine (or the open group) and waits when asked to.
gcclResult_t launch(gcclComm* comm, std::unique_ptr<Op> op, gcclRequest* req,
                    gcclRequest_t* userRequest) {
  req->comm = comm;
  if (userRequest != nullptr) *userRequest = req;
  if (tGroupDepth > 0) {
    tGroup.push_back({comm, std::move(op), req, userRequest == nullptr});
    return gcclSuccess;
  }
  std::vector<std::unique_ptr<Op>> batch;
  batch.push_back(std::move(op));
  comm->engine->submit(std::move(batch));
  if (userRequest != nullptr) return gcclSuccess;
  return waitAndRelease(req);
}

CollArgs baseArgs(gcclComm* comm, const void* send, void* recv, size_t count, gcclDataType_t type,
                  gcclRedOp_t op, int root) {
  CollArgs a;
  a.send = send;
  a.recv = recv;
  a.count = count;
  a.type = type;
  a.op = op;
  a.root = root;
  a.rank = comm->rank;
  a.nranks = comm->nranks;
  a.chunkBytes = comm->engine->params().chunkBytes;
  return a;
}

// Common entry: guard, readiness, then `body` builds and launches the op.
template <typename Body>
gcclResult_t apiCall(gcclComm* comm, const char* call, gcclRequest_t* request, Body body) {
  clearThreadLastError();
  ApiGuard guard(comm, call);
  if (guard.result() != gcclSuccess) return guard.result();
  gcclResult_t r = checkCommReady(comm, call);
  if (r == gcclSuccess) r = body();
  if (r != gcclSuccess) {
    if (request != nullptr) *request = nullptr;
    recordError(comm, r);
  }
  return r;
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
    GCCL_CHECK(checkBuffer(sendbuff, count, datatype, "sendbuff", call));
    GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
    size_t bytes = count * kernels::typeSize(datatype);
    GCCL_CHECK(checkOverlap(sendbuff, bytes, recvbuff, bytes, recvbuff, call));
    CollArgs a = baseArgs(comm, sendbuff, recvbuff, count, datatype, op, 0);
    const OpParams& p = comm->engine->params();
    bool ring = p.allReduceAlgo == 1 || (p.allReduceAlgo == 0 && bytes >= p.ringThresholdBytes &&
                                         count >= static_cast<size_t>(comm->nranks));
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o =
        ring ? makeRingOp(RingMode::kAllReduce, a, req) : makeRecursiveDoublingAllReduce(a, req);
    o->seq = comm->collectiveSeq++;
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
    if (comm->rank == root) GCCL_CHECK(checkBuffer(sendbuff, count, datatype, "sendbuff", call));
    GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
    size_t bytes = count * kernels::typeSize(datatype);
    if (comm->rank == root)
      GCCL_CHECK(checkOverlap(sendbuff, bytes, recvbuff, bytes, recvbuff, call));
    CollArgs a = baseArgs(comm, sendbuff, recvbuff, count, datatype, gcclSum, root);
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeBroadcastOp(a, bytes >= comm->engine->params().ringThresholdBytes, req);
    o->seq = comm->collectiveSeq++;
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
    GCCL_CHECK(checkBuffer(sendbuff, count, datatype, "sendbuff", call));
    size_t bytes = count * kernels::typeSize(datatype);
    if (comm->rank == root) {
      GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
      GCCL_CHECK(checkOverlap(sendbuff, bytes, recvbuff, bytes, recvbuff, call));
    }
    CollArgs a = baseArgs(comm, sendbuff, recvbuff, count, datatype, op, root);
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeReduceOp(a, bytes >= comm->engine->params().ringThresholdBytes, req);
    o->seq = comm->collectiveSeq++;
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
    GCCL_CHECK(checkBuffer(sendbuff, sendcount, datatype, "sendbuff", call));
    GCCL_CHECK(checkBuffer(recvbuff, sendcount, datatype, "recvbuff", call));
    size_t elem = kernels::typeSize(datatype);
    GCCL_REQUIRE(sendcount <= SIZE_MAX / elem / static_cast<size_t>(comm->nranks),
                 gcclInvalidArgument, "%s: sendcount %zu times %d ranks overflows", call, sendcount,
                 comm->nranks);
    size_t bytes = sendcount * elem;
    const void* inPlace =
        static_cast<const uint8_t*>(recvbuff) + static_cast<size_t>(comm->rank) * bytes;
    GCCL_CHECK(checkOverlap(sendbuff, bytes, recvbuff, bytes * static_cast<size_t>(comm->nranks),
                            inPlace, call));
    CollArgs a = baseArgs(comm, sendbuff, recvbuff, sendcount, datatype, gcclSum, 0);
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeRingOp(RingMode::kAllGather, a, req);
    o->seq = comm->collectiveSeq++;
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
    GCCL_CHECK(checkBuffer(sendbuff, recvcount, datatype, "sendbuff", call));
    GCCL_CHECK(checkBuffer(recvbuff, recvcount, datatype, "recvbuff", call));
    size_t elem = kernels::typeSize(datatype);
    GCCL_REQUIRE(recvcount <= SIZE_MAX / elem / static_cast<size_t>(comm->nranks),
                 gcclInvalidArgument, "%s: recvcount %zu times %d ranks overflows", call, recvcount,
                 comm->nranks);
    size_t bytes = recvcount * elem;
    const void* inPlaceSend =
        static_cast<const uint8_t*>(recvbuff) - static_cast<size_t>(comm->rank) * bytes;
    GCCL_CHECK(checkOverlap(sendbuff, bytes * static_cast<size_t>(comm->nranks), recvbuff, bytes,
                            inPlaceSend, call));
    CollArgs a = baseArgs(comm, sendbuff, recvbuff, recvcount, datatype, op, 0);
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeRingOp(RingMode::kReduceScatter, a, req);
    o->seq = comm->collectiveSeq++;
    return launch(comm, std::move(o), req, request);
  });
}

gcclResult_t gcclBarrier(gcclComm_t comm, gcclStream_t stream, gcclRequest_t* request) {
  const char* call = "gcclBarrier";
  return apiCall(comm, call, request, [&]() -> gcclResult_t {
    GCCL_CHECK(checkStream(stream, call));
    CollArgs a = baseArgs(comm, nullptr, nullptr, 0, gcclUint8, gcclSum, 0);
    gcclRequest* req = newRequest(comm->timeoutMs);
    auto o = makeBarrierOp(a, req);
    o->seq = comm->collectiveSeq++;
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
    GCCL_CHECK(checkBuffer(sendbuff, count, datatype, "sendbuff", call));
    gcclRequest* req = newRequest(comm->timeoutMs);
    uint64_t seq = comm->sendSeq[static_cast<size_t>(peer)]++;
    auto o = makeSendOp(sendbuff, count * kernels::typeSize(datatype), peer, seq, req);
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
    GCCL_CHECK(checkBuffer(recvbuff, count, datatype, "recvbuff", call));
    gcclRequest* req = newRequest(comm->timeoutMs);
    uint64_t seq = comm->recvSeq[static_cast<size_t>(peer)]++;
    auto o = makeRecvOp(recvbuff, count * kernels::typeSize(datatype), peer, seq, req);
    return launch(comm, std::move(o), req, request);
  });
}

gcclResult_t gcclTest(gcclRequest_t request, int* done) {
  clearThreadLastError();
  GCCL_REQUIRE(request != nullptr, gcclInvalidArgument, "gcclTest: request is NULL");
  GCCL_REQUIRE(done != nullptr, gcclInvalidArgument, "gcclTest: done is NULL");
  {
    std::lock_guard<std::mutex> lock(request->mutex);
    if (!request->done) {
      *done = 0;
      return gcclSuccess;
    }
  }
  *done = 1;
  return waitAndRelease(request);
}

gcclResult_t gcclWait(gcclRequest_t request) {
  clearThreadLastError();
  GCCL_REQUIRE(request != nullptr, gcclInvalidArgument, "gcclWait: request is NULL");
  return waitAndRelease(request);
}

gcclResult_t gcclGroupStart(void) {
  clearThreadLastError();
  ++tGroupDepth;
  return gcclSuccess;
}

gcclResult_t gcclGroupEnd(void) {
  clearThreadLastError();
  GCCL_REQUIRE(tGroupDepth > 0, gcclInvalidUsage, "gcclGroupEnd without gcclGroupStart");
  if (--tGroupDepth > 0) return gcclSuccess;
  std::vector<GroupEntry> entries;
  entries.swap(tGroup);
  // Per communicator, in call order: runs of point-to-point calls start
  // together; each collective is a batch of its own.
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].op == nullptr) continue;
    gcclComm* comm = entries[i].comm;
    std::vector<std::unique_ptr<Op>> batch;
    for (size_t j = i; j < entries.size(); ++j) {
      if (entries[j].comm != comm || entries[j].op == nullptr) continue;
      bool p2p = !entries[j].op->isCollective();
      if (!batch.empty() && (!p2p || batch.back()->isCollective())) {
        comm->engine->submit(std::move(batch));
        batch.clear();
      }
      batch.push_back(std::move(entries[j].op));
    }
    if (!batch.empty()) comm->engine->submit(std::move(batch));
  }
  gcclResult_t first = gcclSuccess;
  std::string reason;
  for (auto& e : entries) {
    if (!e.caller_waits) continue;
    gcclResult_t r = waitAndRelease(e.request);
    if (r != gcclSuccess && first == gcclSuccess) {
      first = r;
      reason = threadLastError();
    }
  }
  if (first != gcclSuccess) return setError(first, "%s", reason.c_str());
  return gcclSuccess;
}

}  // extern "C"
