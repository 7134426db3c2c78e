// Recycled bookkeeping entries of a connection (posted receives): owned by
// the pool, handed out reset, returned when done, so that posting a receive
// allocates nothing once the pool has grown to the connection's depth.
#pragma once

#include <memory>
#include <vector>

namespace gccl::transport {

template <typename T>
class EntryPool {
 public:
  // A default-constructed entry, valid until give() returns it.
  T* take() {
    T* e;
    if (free_.empty()) {
      all_.emplace_back(new T());
      e = all_.back().get();
    } else {
      e = free_.back();
      free_.pop_back();
      *e = T();
    }
    return e;
  }
  void give(T* e) { free_.push_back(e); }

 private:
  std::vector<std::unique_ptr<T>> all_;  // owns every entry
  std::vector<T*> free_;
};

}  // namespace gccl::transport
