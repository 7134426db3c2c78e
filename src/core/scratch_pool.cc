#include "core/scratch_pool.h"

#include <cstdint>

#include "base/check.h"

namespace gccl {

gcclResult_t ScratchPool::get(size_t bytes, MemoryType type, void** out) {
  Slot& s = slots_[index(type)];
  if (s.data != nullptr && bytes <= s.bytes) {
    *out = s.data;
    return gcclSuccess;
  }
  *out = nullptr;
  GCCL_REQUIRE(bytes <= SIZE_MAX - 63, gcclInvalidArgument, "scratch of %zu bytes is too large",
               bytes);
  size_t rounded = bytes == 0 ? 64 : (bytes + 63) & ~size_t{63};
  if (s.data != nullptr) exec_.deallocate(s.data, type);
  s.data = nullptr;
  s.bytes = 0;
  void* p = nullptr;
  GCCL_CHECK(exec_.allocate(rounded, type, &p));
  s.data = p;
  s.bytes = rounded;
  *out = p;
  return gcclSuccess;
}

void ScratchPool::release() {
  for (size_t i = 0; i < kTypes; ++i) {
    if (slots_[i].data != nullptr) exec_.deallocate(slots_[i].data, static_cast<MemoryType>(i));
    slots_[i] = Slot();
  }
}

}  // namespace gccl
