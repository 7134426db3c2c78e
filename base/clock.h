// Monotonic time, the one clock every deadline in gccl is measured on.
#pragma once

#include <cstdint>
#include <ctime>

namespace gccl {

inline int64_t nowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

inline int64_t nowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// The same clock at the kernel's tick (1 to 4 ms), for the bookkeeping of
// hot loops: far cheaper to read than nowMs, and never ahead of it.
inline int64_t coarseNowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace gccl
