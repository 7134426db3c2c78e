#include "kernels/cpu/cpu_features.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(GCCL_NO_F16C)
#include <cpuid.h>
#endif

namespace gccl::kernels {

bool cpuHasF16c() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(GCCL_NO_F16C)
  static const bool has = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    if (!(c & bit_F16C) || !(c & bit_AVX) || !(c & bit_OSXSAVE)) return false;
    // AVX also needs the OS to save YMM registers (XCR0 bits 1-2).
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0x6u) == 0x6u;
  }();
  return has;
#else
  return false;
#endif
}

}  // namespace gccl::kernels
