// The user-visible request (gcclRequest_t): completion state shared between
// the progress thread, which completes it, and the caller, which waits on it.
// Reference counted so that either side may finish first.
//
// A request handed to the user is registered as live until gcclTest or
// gcclWait completes it: a second wait, or a test after completion, finds
// it gone and gets a clear error instead of touching freed memory.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>

#include "gccl/gccl.h"

struct gcclRequest {
  // Threads that found the request running sleep on cv (waiters counts
  // them); completion takes the mutex only when there are some.
  std::mutex mutex;
  std::condition_variable cv;
  std::atomic<int> waiters{0};
  // Set once, after result and reason (which are never written again).
  std::atomic<bool> doneFlag{false};
  gcclResult_t result = gcclSuccess;
  std::string reason;
  std::atomic<int> refs{2};  // the waiter and the operation
  int64_t timeoutMs = 0;     // the communicator's, for gcclWait's own deadline
  gcclComm* comm = nullptr;  // for recording the reason as the comm's last error (may be gone)
  // False while the operation sits in an open group (gcclGroupEnd starts it).
  std::atomic<bool> submitted{false};
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

// User handles. publishRequest marks `req` as held by the user (the waiter's
// reference). acquireUserRequest checks that `req` is such a live handle and
// takes an extra reference for the duration of one gcclTest/gcclWait;
// retireUserRequest ends the handle (once, whichever thread gets there
// first) and drops the user's reference; each acquire is paired with a
// releaseRequest.
void publishRequest(gcclRequest* req);
gcclResult_t acquireUserRequest(gcclRequest* req, const char* call);
void retireUserRequest(gcclRequest* req);

}  // namespace gccl
