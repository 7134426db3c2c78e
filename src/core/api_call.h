// The shared steps of every public call that runs an operation: argument
// checks that name what is wrong, handing the op to the engine (or to the
// open group), and waiting for it when the caller gave no request.
#pragma once

#include <memory>

#include "base/check.h"
#include "core/comm.h"
#include "core/executor.h"
#include "core/op.h"
#include "gccl/gccl.h"

namespace gccl {

// No buffer may be larger than this: it is the most a message can carry on the
// wire (transports reject longer ones), far beyond any real allocation, and
// small enough that byte offsets never overflow.
inline constexpr size_t kMaxBufferBytes = size_t{1} << 46;

gcclResult_t checkType(gcclDataType_t type, const char* call);
// `count` elements of `type`, `multiplier` times over (a rank count for the
// gathered and scattered buffers): the byte size must neither overflow nor
// exceed kMaxBufferBytes. Sets *bytes to count * element size (without the
// multiplier). Checked before any other use of a count.
gcclResult_t checkCount(size_t count, gcclDataType_t type, size_t multiplier, const char* what,
                        const char* call, size_t* bytes);
gcclResult_t checkRedOp(gcclRedOp_t op, const char* call);
// Non-null (when count > 0), aligned to the element size, and not wrapping
// around the end of the address space (the count passed checkCount).
gcclResult_t checkBuffer(const void* p, size_t count, gcclDataType_t type, const char* what,
                         const char* call);
// sendbuff and recvbuff must be the same region (send == inPlaceSend) or not overlap.
gcclResult_t checkOverlap(const void* send, size_t sendBytes, const void* recv, size_t recvBytes,
                          const void* inPlaceSend, const char* call);
gcclResult_t checkStream(gcclStream_t stream, const char* call);
gcclResult_t checkRoot(gcclComm* comm, int root, const char* call);
// The memory types of the buffers a call uses, asked once per call
// (memoryTypeOf) and carried by the op's arguments from there on. Pass null
// for a buffer this rank does not use: it takes the other's type. The two
// must be the same memory, since an op's arithmetic runs where its data
// lives, and `exec` must reach it: memory it cannot work on is refused here,
// before anything is posted, instead of failing the op halfway.
gcclResult_t checkMemoryTypes(const Executor& exec, const void* send, const void* recv,
                              const char* call, MemoryType* sendType, MemoryType* recvType);

// The one way an op is run, after the checks of apiCall and the call's own:
// stamps a collective with the communicator's next sequence number (in call
// order, which every rank shares), hands it to the engine or to the open
// group, and waits when the caller gave no request.
gcclResult_t launch(gcclComm* comm, std::unique_ptr<Op> op, gcclRequest* req,
                    gcclRequest_t* userRequest);

// Whether this thread is between gcclGroupStart and gcclGroupEnd.
bool groupOpen();
// Calls queued on `comm` by this thread's open group (gcclGroupStart).
size_t queuedGroupCalls(gcclComm* comm);
// Completes this thread's queued group calls on `comm` with `code` and drops
// them (the communicator is being aborted).
void dropGroupCalls(gcclComm* comm, gcclResult_t code, const char* reason);

// Common entry of every public call that runs an op: guard, readiness, one
// issuing thread at a time (IssueGuard), then `body` checks its arguments,
// builds the op and launches it. A body may launch several ops (pairwise
// gossip registers its service, then meets the others in a barrier).
template <typename Body>
inline gcclResult_t apiCall(gcclComm* comm, const char* call, gcclRequest_t* request, Body body) {
  clearThreadLastError();
  ApiGuard guard(comm, call);
  if (guard.result() != gcclSuccess) return guard.result();
  gcclResult_t r = checkCommState(comm, call);
  IssueGuard issuing(comm, call, r == gcclSuccess);
  if (r == gcclSuccess) r = issuing.result();
  if (r == gcclSuccess) r = body();
  if (r != gcclSuccess) {
    if (request != nullptr) *request = nullptr;
    recordError(comm, r);
  }
  return r;
}

}  // namespace gccl
