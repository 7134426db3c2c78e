#include "core/request.h"

#include <chrono>

namespace gccl {

gcclRequest* newRequest(int64_t timeoutMs) {
  auto* r = new gcclRequest();
  r->timeoutMs = timeoutMs;
  return r;
}

void completeRequest(gcclRequest* req, gcclResult_t result, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(req->mutex);
    req->done = true;
    req->result = result;
    req->reason = reason;
  }
  req->cv.notify_all();
  releaseRequest(req);
}

bool requestDone(gcclRequest* req) {
  std::lock_guard<std::mutex> lock(req->mutex);
  return req->done;
}

void releaseRequest(gcclRequest* req) {
  if (req->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete req;
}

gcclResult_t waitRequest(gcclRequest* req, int64_t waitMs, std::string* reason) {
  std::unique_lock<std::mutex> lock(req->mutex);
  bool done =
      req->cv.wait_for(lock, std::chrono::milliseconds(waitMs), [req] { return req->done; });
  if (!done) {
    *reason = "the operation did not complete within " + std::to_string(waitMs) +
              " ms (the progress thread is not answering)";
    return gcclTimeout;
  }
  *reason = req->reason;
  return req->result;
}

}  // namespace gccl
