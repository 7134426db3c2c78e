// The live handles of one kind (topologies, gossip objects, ...): a call on a
// handle that was destroyed or never created gets a clear error instead of
// touching freed memory.
#pragma once

#include <mutex>
#include <set>

#include "base/check.h"

namespace gccl {

template <typename T>
class HandleRegistry {
 public:
  // `what` names the handle kind in errors ("gossip handle").
  explicit HandleRegistry(const char* what) : what_(what) {}
  void add(T* h) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.insert(h);
  }
  // True if it was live.
  bool remove(T* h) {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.erase(h) != 0;
  }
  gcclResult_t check(T* h, const char* call) {
    GCCL_REQUIRE(h != nullptr, gcclInvalidArgument, "%s: %s is NULL", call, what_);
    std::lock_guard<std::mutex> lock(mutex_);
    GCCL_REQUIRE(live_.count(h) != 0, gcclInvalidUsage,
                 "%s: %s %p is not valid (destroyed or never created)", call, what_,
                 static_cast<void*>(h));
    return gcclSuccess;
  }

 private:
  const char* what_;
  std::mutex mutex_;
  std::set<T*> live_;
};

}  // namespace gccl
