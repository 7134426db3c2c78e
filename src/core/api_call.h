// The shared steps of every public call that runs an operation: argument
// checks that name what is wrong, handing the op to the engine (or to the
// open group), and waiting for it when the caller gave no request.
#pragma once

#include <memory>

#include "core/check.h"
#include "core/comm.h"
#include "core/op.h"
#include "gccl/gccl.h"

namespace gccl {

gcclResult_t checkType(gcclDataType_t type, const char* call);
gcclResult_t checkRedOp(gcclRedOp_t op, const char* call);
// Non-null (when count > 0) and aligned to the element size.
gcclResult_t checkBuffer(const void* p, size_t count, gcclDataType_t type, const char* what,
                         const char* call);
// sendbuff and recvbuff must be the same region (send == inPlaceSend) or not overlap.
gcclResult_t checkOverlap(const void* send, size_t sendBytes, const void* recv, size_t recvBytes,
                          const void* inPlaceSend, const char* call);
gcclResult_t checkStream(gcclStream_t stream, const char* call);
gcclResult_t checkRoot(gcclComm* comm, int root, const char* call);

// Hands `op` to the engine (or the open group) and waits when asked to.
gcclResult_t launch(gcclComm* comm, std::unique_ptr<Op> op, gcclRequest* req,
                    gcclRequest_t* userRequest);

// Common entry: guard, readiness, then `body` builds and launches the op.
template <typename Body>
inline gcclResult_t apiCall(gcclComm* comm, const char* call, gcclRequest_t* request, Body body) {
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

}  // namespace gccl
