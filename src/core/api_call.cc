// Requests, groups and the shared steps of every operation call (api_call.h).
#include "core/api_call.h"

#include <cstdint>
#include <string>
#include <vector>

#include "core/memory_type.h"
#include "core/request.h"
#include "base/clock.h"

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

// Waits for `req` (driving `driveWith`'s loop where it can: a blocked caller
// then needs no hand-off) and drops the caller's reference.
gcclResult_t waitAndRelease(gcclRequest* req, Engine* driveWith = nullptr) {
  if (driveWith != nullptr) driveWith->drive(req, nowMs() + waitBoundMs(req->timeoutMs));
  std::string reason;
  gcclResult_t r = waitRequest(req, waitBoundMs(req->timeoutMs), &reason);
  releaseRequest(req);
  if (r != gcclSuccess) return setError(r, "%s", reason.c_str());
  return gcclSuccess;
}

// Ends a user handle that gcclTest or gcclWait found complete: the first of
// them to get here returns its result; a concurrent one finds it retired.
gcclResult_t finishUserRequest(gcclRequest* req) {
  std::string reason;
  gcclResult_t r = waitRequest(req, 0, &reason);
  retireUserRequest(req);
  releaseRequest(req);  // the reference acquireUserRequest took
  if (r != gcclSuccess) return setError(r, "%s", reason.c_str());
  return gcclSuccess;
}

// Sends and receives of one group run at once: a send whose buffer a receive
// of the same group overwrites (in-place exchange) sends a copy taken now.
void detachOverlappingSends(gcclComm* comm, std::vector<std::unique_ptr<Op>>& batch) {
  for (auto& s : batch) {
    size_t sendBytes;
    auto sb = reinterpret_cast<uintptr_t>(s->sendRegion(&sendBytes));
    if (sendBytes == 0) continue;
    for (auto& r : batch) {
      size_t recvBytes;
      auto rb = reinterpret_cast<uintptr_t>(r->recvRegion(&recvBytes));
      if (recvBytes == 0 || sb >= rb + recvBytes || rb >= sb + sendBytes) continue;
      s->detachSendBuffer(comm->engine->executor());
      break;
    }
  }
}

}  // namespace

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

gcclResult_t checkCount(size_t count, gcclDataType_t type, size_t multiplier, const char* what,
                        const char* call, size_t* bytes) {
  size_t elem = elementSize(type);
  size_t limitElems = kMaxBufferBytes / elem / (multiplier == 0 ? 1 : multiplier);
  if (count > limitElems) {
    if (multiplier > 1)
      return setError(gcclInvalidArgument,
                      "%s: %s %zu (%zu-byte elements, times %zu ranks) is larger than the %zu "
                      "bytes a buffer may have (a negative or uninitialized count?)",
                      call, what, count, elem, multiplier, kMaxBufferBytes);
    return setError(gcclInvalidArgument,
                    "%s: %s %zu (%zu-byte elements) is larger than the %zu bytes a buffer may "
                    "have (a negative or uninitialized count?)",
                    call, what, count, elem, kMaxBufferBytes);
  }
  *bytes = count * elem;
  return gcclSuccess;
}

gcclResult_t checkBuffer(const void* p, size_t count, gcclDataType_t type, const char* what,
                         const char* call) {
  if (count == 0) return gcclSuccess;
  GCCL_REQUIRE(p != nullptr, gcclInvalidArgument, "%s: %s is NULL with count %zu", call, what,
               count);
  size_t elem = elementSize(type);
  GCCL_REQUIRE(reinterpret_cast<uintptr_t>(p) % elem == 0, gcclInvalidArgument,
               "%s: %s %p is not aligned to its %zu-byte elements", call, what, p, elem);
  GCCL_REQUIRE(count <= kMaxBufferBytes / elem &&
                   reinterpret_cast<uintptr_t>(p) <= UINTPTR_MAX - count * elem,
               gcclInvalidArgument, "%s: %s %p with count %zu runs past the end of memory", call,
               what, p, count);
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

gcclResult_t checkMemoryTypes(const Executor& exec, const void* send, const void* recv,
                              const char* call, MemoryType* sendType, MemoryType* recvType) {
  MemoryType s = memoryTypeOf(send), r = memoryTypeOf(recv);
  if (send == nullptr) s = r;
  if (recv == nullptr) r = s;
  GCCL_REQUIRE(s == r, gcclInvalidArgument,
               "%s: sendbuff is %s memory and recvbuff is %s memory; both must be the same", call,
               memoryTypeName(s), memoryTypeName(r));
  GCCL_REQUIRE(exec.reaches(s), gcclInvalidUsage,
               "%s: the buffers are %s memory, which this build cannot work on (it runs on host "
               "memory only)",
               call, memoryTypeName(s));
  *sendType = s;
  *recvType = r;
  return gcclSuccess;
}

bool groupOpen() {
  return tGroupDepth > 0;
}

size_t queuedGroupCalls(gcclComm* comm) {
  size_t n = 0;
  for (const auto& e : tGroup)
    n += e.comm == comm && e.op != nullptr;
  return n;
}

void dropGroupCalls(gcclComm* comm, gcclResult_t code, const char* reason) {
  for (auto& e : tGroup) {
    if (e.comm != comm || e.op == nullptr) continue;
    e.op.reset();
    e.request->submitted = true;
    completeRequest(e.request, code, reason);
  }
}

// Hands `op` to the engine (or the open group) and waits when asked to.
gcclResult_t launch(gcclComm* comm, std::unique_ptr<Op> op, gcclRequest* req,
                    gcclRequest_t* userRequest) {
  if (op->hasSequence() && (comm->joinPending || op->kind() == OpKind::kJoin)) {
    // A rejoined rank's first collective is its join step, and only then.
    bool join = op->kind() == OpKind::kJoin;
    if (join != comm->joinPending) {
      releaseRequest(req);  // both references: the op never ran
      releaseRequest(req);
      return setError(gcclInvalidUsage,
                      join ? "this rank does not join at this call (gcclGossipJoin is the first "
                             "collective of a rank made by gcclCommRejoin, and only that)"
                           : "%s: a rank made by gcclCommRejoin must call gcclGossipJoin first",
                      op->describe().c_str());
    }
    comm->joinPending = false;
  }
  if (op->hasSequence()) op->seq = comm->collectiveSeq++;
  req->comm = comm;
  if (userRequest != nullptr) {
    publishRequest(req);
    *userRequest = req;
  }
  if (tGroupDepth > 0) {
    tGroup.push_back({comm, std::move(op), req, userRequest == nullptr});
    return gcclSuccess;
  }
  req->submitted = true;
  std::vector<std::unique_ptr<Op>> batch;
  batch.push_back(std::move(op));
  if (userRequest != nullptr) {
    comm->engine->submit(std::move(batch));
    return gcclSuccess;
  }
  comm->engine->submitAndDrive(std::move(batch), req, nowMs() + waitBoundMs(req->timeoutMs));
  return waitAndRelease(req);
}

}  // namespace gccl

using namespace gccl;

extern "C" {

gcclResult_t gcclTest(gcclRequest_t request, int* done) {
  const char* call = "gcclTest";
  clearThreadLastError();
  GCCL_REQUIRE(done != nullptr, gcclInvalidArgument, "%s: done is NULL", call);
  GCCL_CHECK(acquireUserRequest(request, call));
  if (!requestDone(request)) {
    releaseRequest(request);
    *done = 0;
    return gcclSuccess;
  }
  *done = 1;
  return finishUserRequest(request);
}

gcclResult_t gcclWait(gcclRequest_t request) {
  const char* call = "gcclWait";
  clearThreadLastError();
  GCCL_CHECK(acquireUserRequest(request, call));
  if (!request->submitted.load()) {
    releaseRequest(request);
    return setError(gcclInvalidUsage,
                    "%s: the request's call is queued in a group that is still open; call "
                    "gcclGroupEnd first (waiting now could never finish)",
                    call);
  }
  if (!requestDone(request)) {
    // Drive the communicator's loop while it lives (the guard keeps a
    // concurrent destroy out); a destroyed one has completed the request.
    ApiGuard guard(request->comm, call);
    clearThreadLastError();
    if (guard.result() == gcclSuccess)
      request->comm->engine->drive(request, nowMs() + waitBoundMs(request->timeoutMs));
    std::string reason;
    if (waitRequest(request, waitBoundMs(request->timeoutMs), &reason) == gcclTimeout) {
      releaseRequest(request);
      return setError(gcclTimeout, "%s: %s", call, reason.c_str());
    }
  }
  return finishUserRequest(request);
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
    // Another thread may have destroyed or aborted it since the calls were
    // queued: their requests end with an error, and nothing touches it.
    ApiGuard guard(comm, "gcclGroupEnd");
    if (guard.result() != gcclSuccess) {
      std::string why = threadLastError();
      for (size_t j = i; j < entries.size(); ++j) {
        if (entries[j].comm != comm || entries[j].op == nullptr) continue;
        entries[j].op.reset();
        entries[j].request->submitted = true;
        completeRequest(entries[j].request, gcclInvalidUsage, why);
      }
      continue;
    }
    std::vector<std::unique_ptr<Op>> batch;
    for (size_t j = i; j < entries.size(); ++j) {
      if (entries[j].comm != comm || entries[j].op == nullptr) continue;
      bool p2p = !entries[j].op->isCollective();
      if (!batch.empty() && (!p2p || batch.back()->isCollective())) {
        detachOverlappingSends(comm, batch);
        comm->engine->submit(std::move(batch));
        batch.clear();
      }
      entries[j].request->submitted = true;
      batch.push_back(std::move(entries[j].op));
    }
    if (!batch.empty()) {
      detachOverlappingSends(comm, batch);
      comm->engine->submit(std::move(batch));
    }
  }
  gcclResult_t first = gcclSuccess;
  std::string reason;
  for (auto& e : entries) {
    if (!e.caller_waits) continue;
    ApiGuard guard(e.comm, "gcclGroupEnd");
    clearThreadLastError();
    gcclResult_t r =
        waitAndRelease(e.request, guard.result() == gcclSuccess ? e.comm->engine.get() : nullptr);
    if (r != gcclSuccess && first == gcclSuccess) {
      first = r;
      reason = threadLastError();
    }
  }
  if (first != gcclSuccess) return setError(first, "%s", reason.c_str());
  return gcclSuccess;
}

}  // extern "C"
