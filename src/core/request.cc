#include "core/request.h"

#include <chrono>
#include <unordered_set>
#include <vector>

#include "base/check.h"

namespace gccl {

namespace {
std::mutex gUserRequestsMutex;
std::unordered_set<gcclRequest*>& userRequests() {
  static auto* live = new std::unordered_set<gcclRequest*>();
  return *live;
}

// Finished requests a thread keeps for its next calls: a blocking call
// allocates nothing for its request once the cache holds one. A request is
// only cached by the thread that drops its last reference; the cache goes
// with its thread.
struct RequestCache {
  static constexpr size_t kMax = 16;
  std::vector<gcclRequest*> free;
  ~RequestCache() {
    gone = true;
    for (gcclRequest* r : free)
      delete r;
  }
  static thread_local bool gone;  // trivially destroyed: readable to the very end
};
thread_local bool RequestCache::gone = false;
thread_local RequestCache tRequests;

}  // namespace

gcclRequest* newRequest(int64_t timeoutMs) {
  gcclRequest* r;
  if (!RequestCache::gone && !tRequests.free.empty()) {
    r = tRequests.free.back();
    tRequests.free.pop_back();
    r->doneFlag.store(false, std::memory_order_relaxed);
    r->result = gcclSuccess;
    r->reason.clear();
    r->refs.store(2, std::memory_order_relaxed);
    r->comm = nullptr;
    r->submitted.store(false, std::memory_order_relaxed);
  } else {
    r = new gcclRequest();
  }
  r->timeoutMs = timeoutMs;
  return r;
}

void completeRequest(gcclRequest* req, gcclResult_t result, const std::string& reason) {
  req->result = result;
  req->reason = reason;
  // Dekker with waitRequest: it counts itself in waiters, then looks at
  // doneFlag; this stores doneFlag, then looks at waiters (all seq_cst). One
  // of the two sees the other; a waiter seen here is either still before its
  // look (it will see doneFlag) or asleep on cv, which the mutex orders
  // before this notify.
  req->doneFlag.store(true, std::memory_order_seq_cst);
  if (req->waiters.load(std::memory_order_seq_cst) != 0) {
    { std::lock_guard<std::mutex> lock(req->mutex); }
    req->cv.notify_all();
  }
  releaseRequest(req);
}

bool requestDone(gcclRequest* req) {
  return req->doneFlag.load(std::memory_order_acquire);
}

void releaseRequest(gcclRequest* req) {
  if (req->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (!RequestCache::gone && tRequests.free.size() < RequestCache::kMax)
    tRequests.free.push_back(req);
  else
    delete req;
}

gcclResult_t waitRequest(gcclRequest* req, int64_t waitMs, std::string* reason) {
  // Done already (the usual case after a driving caller): result and reason
  // were stored before the flag was released, and are never written again.
  if (req->doneFlag.load(std::memory_order_acquire)) {
    *reason = req->reason;
    return req->result;
  }
  std::unique_lock<std::mutex> lock(req->mutex);
  req->waiters.fetch_add(1, std::memory_order_seq_cst);
  bool done = req->cv.wait_for(lock, std::chrono::milliseconds(waitMs),
                               [req] { return req->doneFlag.load(std::memory_order_seq_cst); });
  req->waiters.fetch_sub(1, std::memory_order_relaxed);
  if (!done) {
    *reason = "the operation did not complete within " + std::to_string(waitMs) +
              " ms (the progress thread is not answering)";
    return gcclTimeout;
  }
  *reason = req->reason;
  return req->result;
}

void publishRequest(gcclRequest* req) {
  std::lock_guard<std::mutex> lock(gUserRequestsMutex);
  userRequests().insert(req);
}

gcclResult_t acquireUserRequest(gcclRequest* req, const char* call) {
  GCCL_REQUIRE(req != nullptr, gcclInvalidArgument, "%s: request is NULL", call);
  std::lock_guard<std::mutex> lock(gUserRequestsMutex);
  GCCL_REQUIRE(userRequests().count(req) != 0, gcclInvalidUsage,
               "%s: request %p is not valid (already completed by gcclWait or gcclTest, or "
               "never created)",
               call, static_cast<void*>(req));
  req->refs.fetch_add(1, std::memory_order_relaxed);
  return gcclSuccess;
}

void retireUserRequest(gcclRequest* req) {
  bool wasLive;
  {
    std::lock_guard<std::mutex> lock(gUserRequestsMutex);
    wasLive = userRequests().erase(req) != 0;
  }
  if (wasLive) releaseRequest(req);
}

}  // namespace gccl
