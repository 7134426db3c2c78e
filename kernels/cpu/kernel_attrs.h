// Build attributes shared by the CPU kernels (reduce.cc, mix.cc, codec.cc).
//
// GCCL_KERNEL marks an entry point: flattened, so that its element ops
// (half conversions included) are inlined and its loops vectorise under
// GCC's -O2 cost model, which may otherwise refuse; and, on x86-64 Linux with
// GCC, built twice, for AVX2 and for the baseline, the copy picked at load
// time (target_clones). The source is the same, so both copies give the same
// bits as long as no operation can be contracted into an FMA (files with
// a*x + b*y turn contraction off themselves). GCCL_NO_TARGET_CLONES builds the
// baseline only.
//
// GCCL_KERNEL_INLINE marks an element op that must be inlined into its loop.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(GCCL_NO_TARGET_CLONES)
#define GCCL_KERNEL __attribute__((flatten, target_clones("avx2", "default")))
#else
#define GCCL_KERNEL __attribute__((flatten))
#endif
#define GCCL_KERNEL_INLINE inline __attribute__((always_inline))
