// The engine's scratch memory: one buffer per memory type, 64-byte aligned,
// kept from op to op and grown when an op needs more (its contents are not
// kept across growth). Allocation goes through the executor, which knows how
// to get memory of each type (and refuses the types it cannot reach).
//
// Driver only: an op takes its scratch in start() and uses it until it
// completes; one collective runs at a time, and ops that run together
// (a group's sends and receives) take none, so a buffer per type suffices.
#pragma once

#include <cstddef>

#include "core/executor.h"

namespace gccl {

class ScratchPool {
 public:
  explicit ScratchPool(Executor& exec) : exec_(exec) {}
  ~ScratchPool() { release(); }
  ScratchPool(const ScratchPool&) = delete;
  ScratchPool& operator=(const ScratchPool&) = delete;

  // At least `bytes` of `type` memory, 64-byte aligned, valid until the next
  // get() of the same type or release(). On failure *out is null and the
  // reason is recorded (setError).
  gcclResult_t get(size_t bytes, MemoryType type, void** out);
  // Bytes held for `type` (0 before its first use).
  size_t capacity(MemoryType type) const { return slots_[index(type)].bytes; }
  // Hands every buffer back to the executor.
  void release();

 private:
  static constexpr size_t kTypes = 2;  // MemoryType::kHost, kCuda
  struct Slot {
    void* data = nullptr;
    size_t bytes = 0;
  };
  static size_t index(MemoryType type) { return static_cast<size_t>(type); }

  Executor& exec_;
  Slot slots_[kTypes];
};

}  // namespace gccl
