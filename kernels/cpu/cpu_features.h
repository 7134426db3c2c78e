// What the CPU we run on can do, checked once at run time.
#pragma once

namespace gccl::kernels {

// F16C and AVX usable (the OS saves YMM registers). Always false off x86-64
// or when built with GCCL_NO_F16C.
bool cpuHasF16c();

}  // namespace gccl::kernels
