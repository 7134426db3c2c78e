// The user-visible request (gcclRequest_t): completion state shared between
// the progress thread, which completes it, and the caller, which waits on it.
// Reference counted so that either side may finish first.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>

#include "gccl/gccl.h"

struct gcclRequest {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  gcclResult_t result = gcclSuccess;
  std::string reason;
  std::atomic<int> refs{2};  // the waiter and the operation
  int64_t timeoutMs = 0;     // the communicator's, for gcclWait's own deadline
  gcclComm* comm = nullptr;  // for recording the reason as the comm's last error (may be gone)
};

namespace gccl {

gcclRequest* newRequest(int64_t timeoutMs);
// Called once by the side that finishes the operation.
void completeRequest(gcclRequest* req, gcclResult_t result, const std::string& reason);
// Drops one reference; frees on the last.
void releaseRequest(gcclRequest* req);
// Whether the operation has completed (any thread).
bool requestDone(gcclRequest* req);
// Waits until done or `deadlineMs` of monotonic time; returns the result
// (gcclTimeout if the deadline passed first) without releasing.
gcclResult_t waitRequest(gcclRequest* req, int64_t waitMs, std::string* reason);

}  // namespace gccl
