// The dense device codecs: casts, uniform quantization, lattice quantization.
// Bit-exactness with kernels/cpu/codec.cc rests on:
//  - the same operations in the same order, each an IEEE operation rounded
//    to nearest (the _rn intrinsics: never contracted into an FMA, never an
//    approximate division), subnormals kept (--ftz=false);
//  - the 16-bit conversions of kernels/cpu/half.h and codec.cc copied as
//    integer-only device functions (the hardware conversions canonicalise
//    NaN payloads, which the CPU keeps);
//  - quantization's bucket minimum reduced over the CPU's 32 lanes in the
//    CPU's order, so that a bucket whose minimum is zero gets the same sign
//    of zero in its header;
//  - the same counter-based hash for stochastic rounding and lattice checks.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/half.h"
#include "kernels/cuda/codec_detail.cuh"

namespace gccl::cuda::codec::detail {
namespace {

// ---- 16-bit formats (kernels/cpu/half.h, codec.cc) --------------------------------------

using ::gccl::kernels::bfloat16ToFloat;
using ::gccl::kernels::floatToBfloat16;
using ::gccl::kernels::floatToHalf;
using ::gccl::kernels::halfToFloat;

__device__ __forceinline__ uint16_t doubleToHalf(double d) {
  const uint64_t x = static_cast<uint64_t>(__double_as_longlong(d));
  const uint16_t sign = static_cast<uint16_t>((x >> 48) & 0x8000u);
  const uint64_t a = x & 0x7FFFFFFFFFFFFFFFull;
  uint64_t mag;
  if (a > 0x7FF0000000000000ull) {
    mag = 0x7E00u | ((a >> 42) & 0x3FFu);
  } else if (a >= 0x40EFFE0000000000ull) {
    mag = 0x7C00u;
  } else if ((a >> 52) >= 1009) {
    const uint64_t n = a - (1008ull << 52);
    mag = (n + ((1ull << 41) - 1) + ((n >> 42) & 1u)) >> 42;
  } else {
    const int e = static_cast<int>(a >> 52);
    const uint64_t m = (a & 0x000FFFFFFFFFFFFFull) | (1ull << 52);
    const int s = 1051 - e < 54 ? 1051 - e : 54;
    mag = (m + ((1ull << (s - 1)) - 1) + ((m >> s) & 1u)) >> s;
  }
  return static_cast<uint16_t>(sign | mag);
}

__device__ __forceinline__ uint16_t doubleToBfloat16(double d) {
  const uint64_t x = static_cast<uint64_t>(__double_as_longlong(d));
  const uint16_t sign = static_cast<uint16_t>((x >> 48) & 0x8000u);
  const uint64_t a = x & 0x7FFFFFFFFFFFFFFFull;
  uint64_t mag;
  if (a > 0x7FF0000000000000ull) {
    mag = 0x7FC0u | ((a >> 45) & 0x7Fu);
  } else if (a >= 0x47EFF00000000000ull) {
    mag = 0x7F80u;
  } else if ((a >> 52) >= 897) {
    const uint64_t n = a - (896ull << 52);
    mag = (n + ((1ull << 44) - 1) + ((n >> 45) & 1u)) >> 45;
  } else {
    const int e = static_cast<int>(a >> 52);
    const uint64_t m = (a & 0x000FFFFFFFFFFFFFull) | (1ull << 52);
    const int s = 942 - e < 54 ? 942 - e : 54;
    mag = (m + ((1ull << (s - 1)) - 1) + ((m >> s) & 1u)) >> s;
  }
  return static_cast<uint16_t>(sign | mag);
}

// ---- Hashing (codec.cc) ----------------------------------------------------------

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t streamKey(uint64_t seed) {
  // Host copy of mix64 (the launch computes the key once).
  uint64_t z = seed ^ 0x6A09E667F3BCC909ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__device__ __forceinline__ float uniformAt(uint64_t key, uint64_t index) {
  const uint64_t h = mix64(key + index * 0x9E3779B97F4A7C15ull);
  return __fmul_rn(static_cast<float>(static_cast<uint32_t>(h >> 40)), 1.0f / 16777216.0f);
}

__device__ __forceinline__ uint64_t bucketHashStart(uint64_t b) {
  return mix64(0xB5AD4ECEDA1CE2A9ull ^ b);
}

// ---- Arithmetic in the compute type ----------------------------------------------

__device__ __forceinline__ float add(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ __forceinline__ float sub(float a, float b) {
  return __fsub_rn(a, b);
}
__device__ __forceinline__ float mul(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ double add(double a, double b) {
  return __dadd_rn(a, b);
}
__device__ __forceinline__ double sub(double a, double b) {
  return __dsub_rn(a, b);
}
__device__ __forceinline__ double mul(double a, double b) {
  return __dmul_rn(a, b);
}

// ---- Element formats ---------------------------------------------------------------

struct F32 {
  using T = float;
  using C = float;
  __device__ static C widen(T v) { return v; }
  __device__ static T narrowD(double v) { return __double2float_rn(v); }
  __device__ static T narrowW(float v) { return v; }
  __device__ static T narrowW(double v) { return __double2float_rn(v); }
};
struct F64 {
  using T = double;
  using C = double;
  __device__ static C widen(T v) { return v; }
  __device__ static T narrowD(double v) { return v; }
  __device__ static T narrowW(double v) { return v; }
};
struct F16 {
  using T = uint16_t;
  using C = float;
  __device__ static C widen(T v) { return halfToFloat(v); }
  __device__ static T narrowD(double v) { return doubleToHalf(v); }
  __device__ static T narrowW(float v) { return floatToHalf(v); }
  __device__ static T narrowW(double v) { return floatToHalf(__double2float_rn(v)); }
};
struct BF16 {
  using T = uint16_t;
  using C = float;
  __device__ static C widen(T v) { return bfloat16ToFloat(v); }
  __device__ static T narrowD(double v) { return doubleToBfloat16(v); }
  __device__ static T narrowW(float v) { return floatToBfloat16(v); }
  __device__ static T narrowW(double v) { return floatToBfloat16(__double2float_rn(v)); }
};

template <class C>
__device__ __forceinline__ C infinity() {
  if constexpr (std::is_same_v<C, float>) {
    return __int_as_float(0x7f800000);
  } else {
    return __longlong_as_double(0x7ff0000000000000ll);
  }
}

__device__ __forceinline__ size_t codeBytes(size_t m, int bits) {
  return (m * static_cast<size_t>(bits) + 7) / 8;
}

// Bucket b's byte count and where its codes start.
struct Layout {
  size_t count, bucket, headerBytes;
  int bits;
  __device__ size_t size(size_t b) const {
    const size_t base = b * bucket;
    return count - base < bucket ? count - base : bucket;
  }
  __device__ size_t codesAt(size_t b) const { return headerBytes + b * codeBytes(bucket, bits); }
};

Layout makeLayout(size_t count, size_t bucket, int bits, size_t headerPerBucket) {
  const size_t buckets = (count + bucket - 1) / bucket;
  return Layout{count, bucket, buckets * headerPerBucket, bits};
}

// ---- Casts -------------------------------------------------------------------------

template <class T>
__global__ void castKernel(const T* __restrict src, uint16_t* __restrict dst, size_t n, bool half) {
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * kThreads) {
    if constexpr (std::is_same_v<T, float>) {
      dst[i] = half ? floatToHalf(src[i]) : floatToBfloat16(src[i]);
    } else {
      dst[i] = half ? doubleToHalf(src[i]) : doubleToBfloat16(src[i]);
    }
  }
}

template <class T>
__global__ void uncastKernel(const uint16_t* __restrict src, T* __restrict dst, size_t n,
                             bool half) {
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * kThreads) {
    const float v = half ? halfToFloat(src[i]) : bfloat16ToFloat(src[i]);
    dst[i] = static_cast<T>(v);
  }
}

// ---- Uniform quantization ------------------------------------------------------------

template <class C, class W>
__device__ __forceinline__ uint8_t quantizeOne(C v, W off, W inv, W top, bool stochastic,
                                               uint64_t key, uint64_t index) {
  const W t = mul(sub(static_cast<W>(v), off), inv);
  W r = stochastic ? add(t, static_cast<W>(uniformAt(key, index))) : add(t, W(0.5));
  r = r < top ? r : top;
  r = r > W(0) ? r : W(0);
  return static_cast<uint8_t>(static_cast<int32_t>(r));
}

// One byte of packed codes: elements [first, first + per) of the bucket.
template <class Fmt, class W>
__device__ void quantizeBytes(const typename Fmt::T* src, size_t base, size_t m, int bits, W off,
                              W inv, bool stochastic, uint64_t key, uint8_t* codes) {
  const int per = 8 / bits;
  const W top = static_cast<W>((1u << bits) - 1);
  const size_t nbytes = codeBytes(m, bits);
  for (size_t k = threadIdx.x; k < nbytes; k += blockDim.x) {
    unsigned byte = 0;
    for (int t = 0; t < per; ++t) {
      const size_t j = k * per + t;
      if (j >= m) break;
      const unsigned q = quantizeOne<typename Fmt::C, W>(Fmt::widen(src[base + j]), off, inv, top,
                                                         stochastic, key, base + j);
      byte |= q << (bits * t);
    }
    codes[k] = static_cast<uint8_t>(byte);
  }
}

// One block per bucket. The minimum and maximum follow the CPU's Range: lane
// j holds the elements i % 32 == j of the bucket's full 32-element blocks
// (lane 0 also the tail), each lane keeps the first of equal values (strict
// comparisons), and the lanes are folded pairwise, the upper lane taken only
// when strictly smaller (larger). Only which zero is kept is at stake.
template <class Fmt>
__global__ void __launch_bounds__(kThreads)
    quantizeEncodeKernel(const typename Fmt::T* __restrict src, Layout l, size_t buckets,
                         bool stochastic, uint64_t key, uint8_t* __restrict out, Status* status) {
  using C = typename Fmt::C;
  __shared__ C sMin[kThreads], sMax[kThreads];
  __shared__ uint64_t sMinAt[kThreads], sMaxAt[kThreads];
  __shared__ C lMin[32], lMax[32];
  __shared__ int sBad;
  __shared__ C sOff;
  __shared__ double sOffD, sInvD;
  __shared__ C sInv;
  __shared__ int sMode;  // 0: codes zero, 1: compute in C, 2: compute in double, 3: skip
  const double levels = static_cast<double>((1u << l.bits) - 1);
  for (size_t b = blockIdx.x; b < buckets; b += gridDim.x) {
    const size_t base = b * l.bucket;
    const size_t m = l.size(b);
    const size_t full = m / 32 * 32;
    if (threadIdx.x == 0) sBad = 0;
    __syncthreads();
    // Per thread: the first minimum / maximum (lowest element index among
    // equal values) of its elements, which all belong to lane threadIdx % 32.
    C mn = infinity<C>(), mx = -infinity<C>();
    uint64_t mnAt = kNone, mxAt = kNone;
    bool bad = false;
    auto visit = [&](size_t i) {
      const C x = Fmt::widen(src[base + i]);
      if (x < mn) {
        mn = x;
        mnAt = i;
      }
      if (x > mx) {
        mx = x;
        mxAt = i;
      }
      bad |= nonFinite(x);
    };
    for (size_t i = threadIdx.x; i < full; i += kThreads)
      visit(i);
    if (threadIdx.x == 0) {
      for (size_t i = full; i < m; ++i)
        visit(i);
    }
    if (bad) sBad = 1;
    sMin[threadIdx.x] = mn;
    sMax[threadIdx.x] = mx;
    sMinAt[threadIdx.x] = mnAt;
    sMaxAt[threadIdx.x] = mxAt;
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane j: threads j, j + 32, ...; equal values go to the lower index.
      C lmn = infinity<C>(), lmx = -infinity<C>();
      uint64_t lmnAt = kNone, lmxAt = kNone;
      for (int t = threadIdx.x; t < kThreads; t += 32) {
        if (sMin[t] < lmn || (sMin[t] == lmn && sMinAt[t] < lmnAt)) {
          lmn = sMin[t];
          lmnAt = sMinAt[t];
        }
        if (sMax[t] > lmx || (sMax[t] == lmx && sMaxAt[t] < lmxAt)) {
          lmx = sMax[t];
          lmxAt = sMaxAt[t];
        }
      }
      lMin[threadIdx.x] = lmn;
      lMax[threadIdx.x] = lmx;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      sMode = 3;
      if (sBad) {
        for (size_t i = 0; i < m; ++i) {
          if (nonFinite(Fmt::widen(src[base + i]))) {
            recordMin(&status->element, base + i);
            break;
          }
        }
      } else {
        for (int w = 16; w > 0; w /= 2) {
          for (int j = 0; j < w; ++j) {
            lMin[j] = lMin[j + w] < lMin[j] ? lMin[j + w] : lMin[j];
            lMax[j] = lMax[j] < lMax[j + w] ? lMax[j + w] : lMax[j];
          }
        }
        const C lo = lMin[0], hi = lMax[0];
        const double range = __dsub_rn(static_cast<double>(hi), static_cast<double>(lo));
        if (std::is_same_v<C, double> && nonFinite(range)) {
          recordMin(&status->bucket, b);
        } else {
          C scale;
          if constexpr (std::is_same_v<C, float>) {
            scale = __double2float_rn(__ddiv_rn(range, levels));
            while (__dmul_rn(static_cast<double>(scale), levels) < range)
              scale = nextafterf(scale, infinity<float>());
          } else {
            scale = __ddiv_rn(range, levels);
            while (__dmul_rn(scale, levels) < range)
              scale = nextafter(scale, infinity<double>());
          }
          C header[2] = {lo, scale};
          memcpy(out + b * sizeof header, header, sizeof header);
          sOff = lo;
          if (scale == C(0)) {
            sMode = 0;
          } else if constexpr (std::is_same_v<C, float>) {
            const float inv = __fdiv_rn(1.0f, scale);
            if (nonFinite(__fsub_rn(hi, lo)) || nonFinite(inv)) {
              sMode = 2;
              sOffD = static_cast<double>(lo);
              sInvD = __ddiv_rn(1.0, static_cast<double>(scale));
            } else {
              sMode = 1;
              sInv = inv;
            }
          } else {
            sMode = 1;
            sInv = __ddiv_rn(C(1), scale);
          }
        }
      }
    }
    __syncthreads();
    uint8_t* codes = out + l.codesAt(b);
    const int mode = sMode;
    if (mode == 0) {
      for (size_t k = threadIdx.x; k < codeBytes(m, l.bits); k += blockDim.x)
        codes[k] = 0;
    } else if (mode == 1) {
      quantizeBytes<Fmt, C>(src, base, m, l.bits, sOff, sInv, stochastic, key, codes);
    } else if (mode == 2) {
      quantizeBytes<Fmt, double>(src, base, m, l.bits, sOffD, sInvD, stochastic, key, codes);
    }
    __syncthreads();
  }
}

template <class Fmt, class W>
__device__ __forceinline__ typename Fmt::T dequantizeOne(unsigned q, W off, W scale) {
  return Fmt::narrowW(add(off, mul(static_cast<W>(q), scale)));
}

template <class Fmt>
__global__ void quantizeDecodeKernel(const uint8_t* __restrict in, Layout l,
                                     typename Fmt::T* __restrict dst) {
  using C = typename Fmt::C;
  const C levels = static_cast<C>((1u << l.bits) - 1);
  const int per = 8 / l.bits;
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < l.count;
       i += size_t{gridDim.x} * kThreads) {
    const size_t b = i / l.bucket;
    const size_t j = i - b * l.bucket;
    C h[2];
    memcpy(h, in + b * sizeof h, sizeof h);
    const unsigned byte = in[l.codesAt(b) + j / per];
    const unsigned q = (byte >> (l.bits * (j % per))) & ((1u << l.bits) - 1);
    if (std::is_same_v<C, float> && nonFinite(add(h[0], mul(levels, h[1])))) {
      dst[i] = dequantizeOne<Fmt, double>(q, static_cast<double>(h[0]), static_cast<double>(h[1]));
    } else {
      dst[i] = dequantizeOne<Fmt, C>(q, h[0], h[1]);
    }
  }
}

// ---- Lattice quantization --------------------------------------------------------------

constexpr double kLatticeLimit = 4503599627370496.0;  // 2^52

// n for element i, or false when |x / delta| is not below 2^52 (or NaN).
template <class Fmt>
__device__ __forceinline__ bool latticeInt(typename Fmt::T x, double delta, bool stochastic,
                                           uint64_t key, uint64_t i, int64_t* n) {
  const double t = __ddiv_rn(static_cast<double>(Fmt::widen(x)), delta);
  if (!(fabs(t) < kLatticeLimit)) return false;
  const double r =
      stochastic ? floor(__dadd_rn(t, static_cast<double>(uniformAt(key, i)))) : rint(t);
  *n = static_cast<int64_t>(r);
  return true;
}

// One block per bucket: the threads write the codes, thread 0 chains the
// bucket's hash (sequential by definition) and writes it.
template <class Fmt>
__global__ void __launch_bounds__(kThreads)
    latticeEncodeKernel(const typename Fmt::T* __restrict src, Layout l, size_t buckets,
                        double delta, bool stochastic, uint64_t key, uint8_t* __restrict out,
                        Status* status) {
  const int per = 8 / l.bits;
  const uint64_t mask = (1u << l.bits) - 1;
  for (size_t b = blockIdx.x; b < buckets; b += gridDim.x) {
    const size_t base = b * l.bucket;
    const size_t m = l.size(b);
    uint8_t* codes = out + l.codesAt(b);
    for (size_t k = threadIdx.x; k < codeBytes(m, l.bits); k += blockDim.x) {
      unsigned byte = 0;
      for (int t = 0; t < per; ++t) {
        const size_t j = k * per + t;
        if (j >= m) break;
        int64_t n = 0;
        if (!latticeInt<Fmt>(src[base + j], delta, stochastic, key, base + j, &n)) {
          recordMin(&status->element, base + j);
        }
        byte |= static_cast<unsigned>(static_cast<uint64_t>(n) & mask) << (l.bits * t);
      }
      codes[k] = static_cast<uint8_t>(byte);
    }
    if (threadIdx.x == 0) {
      uint64_t h = bucketHashStart(b);
      for (size_t j = 0; j < m; ++j) {
        int64_t n = 0;
        latticeInt<Fmt>(src[base + j], delta, stochastic, key, base + j, &n);
        h = mix64(h ^ static_cast<uint64_t>(n));
      }
      memcpy(out + b * 8, &h, 8);
    }
  }
}

template <class Fmt>
__device__ __forceinline__ bool latticeNearest(typename Fmt::T r, unsigned code, double delta,
                                               int bits, int64_t* n) {
  const double t = __ddiv_rn(static_cast<double>(Fmt::widen(r)), delta);
  if (!(fabs(t) < kLatticeLimit)) return false;
  const int64_t modulus = int64_t{1} << bits;
  const auto centre = static_cast<int64_t>(rint(t));
  int64_t d = (static_cast<int64_t>(code) - centre) & (modulus - 1);
  d = d >= modulus / 2 ? d - modulus : d;
  *n = centre + d;
  return true;
}

// One block per bucket: thread 0 checks the bucket (every reference element
// in range, the hash of the n' equal to the one sent); then, only if it
// passed, the threads write it. Every read of the reference happens before
// the first write, so dst may be the reference.
template <class Fmt>
__global__ void __launch_bounds__(kThreads)
    latticeDecodeKernel(const uint8_t* __restrict in, Layout l, size_t buckets, double delta,
                        const typename Fmt::T* ref, typename Fmt::T* dst, Status* status) {
  __shared__ int sPass;
  const int per = 8 / l.bits;
  const unsigned mask = (1u << l.bits) - 1;
  for (size_t b = blockIdx.x; b < buckets; b += gridDim.x) {
    const size_t base = b * l.bucket;
    const size_t m = l.size(b);
    const uint8_t* codes = in + l.codesAt(b);
    if (threadIdx.x == 0) {
      uint64_t h = bucketHashStart(b);
      int pass = 1;
      for (size_t j = 0; j < m; ++j) {
        const unsigned code = (codes[j / per] >> (l.bits * (j % per))) & mask;
        int64_t n = 0;
        if (!latticeNearest<Fmt>(ref[base + j], code, delta, l.bits, &n)) {
          recordMin(&status->element, base + j);
          pass = 0;
          break;
        }
        h = mix64(h ^ static_cast<uint64_t>(n));
      }
      uint64_t sent;
      memcpy(&sent, in + b * 8, 8);
      if (pass && sent != h) {
        recordMin(&status->bucket, b);
        pass = 0;
      }
      sPass = pass;
    }
    __syncthreads();
    if (sPass) {
      for (size_t j = threadIdx.x; j < m; j += blockDim.x) {
        const unsigned code = (codes[j / per] >> (l.bits * (j % per))) & mask;
        int64_t n = 0;
        latticeNearest<Fmt>(ref[base + j], code, delta, l.bits, &n);
        dst[base + j] = Fmt::narrowD(__dmul_rn(static_cast<double>(n), delta));
      }
    }
    __syncthreads();
  }
}

// ---- Launchers --------------------------------------------------------------------------

template <class Fmt>
void quantizeEncodeLaunch(const Params& p, const void* src, size_t count, uint8_t* out,
                          Status* status, cudaStream_t stream) {
  const Layout l = makeLayout(count, p.bucket, p.bits, 2 * sizeof(typename Fmt::C));
  const size_t buckets = (count + p.bucket - 1) / p.bucket;
  const unsigned grid = gridForBlocks(buckets);
  quantizeEncodeKernel<Fmt><<<grid, kThreads, 0, stream>>>(
      static_cast<const typename Fmt::T*>(src), l, buckets, p.rounding == Rounding::kStochastic,
      streamKey(p.seed), out, status);
}

template <class Fmt>
void quantizeDecodeLaunch(const Params& p, const uint8_t* in, size_t count, void* dst,
                          cudaStream_t stream) {
  const Layout l = makeLayout(count, p.bucket, p.bits, 2 * sizeof(typename Fmt::C));
  quantizeDecodeKernel<Fmt>
      <<<gridFor(count), kThreads, 0, stream>>>(in, l, static_cast<typename Fmt::T*>(dst));
}

template <class Fmt>
void latticeEncodeLaunch(const Params& p, const void* src, size_t count, uint8_t* out,
                         Status* status, cudaStream_t stream) {
  const Layout l = makeLayout(count, p.bucket, p.bits, 8);
  const size_t buckets = (count + p.bucket - 1) / p.bucket;
  const unsigned grid = gridForBlocks(buckets);
  latticeEncodeKernel<Fmt><<<grid, kThreads, 0, stream>>>(
      static_cast<const typename Fmt::T*>(src), l, buckets, p.delta,
      p.rounding == Rounding::kStochastic, streamKey(p.seed), out, status);
}

template <class Fmt>
void latticeDecodeLaunch(const Params& p, const uint8_t* in, size_t count, void* dst,
                         const void* ref, Status* status, cudaStream_t stream) {
  const Layout l = makeLayout(count, p.bucket, p.bits, 8);
  const size_t buckets = (count + p.bucket - 1) / p.bucket;
  const unsigned grid = gridForBlocks(buckets);
  latticeDecodeKernel<Fmt><<<grid, kThreads, 0, stream>>>(
      in, l, buckets, p.delta, static_cast<const typename Fmt::T*>(ref),
      static_cast<typename Fmt::T*>(dst), status);
}

}  // namespace

#define GCCL_CODEC_BY_TYPE(type, call) \
  switch (type) {                      \
    case gcclFloat32:                  \
      call(F32);                       \
      break;                           \
    case gcclFloat64:                  \
      call(F64);                       \
      break;                           \
    case gcclFloat16:                  \
      call(F16);                       \
      break;                           \
    default:                           \
      call(BF16);                      \
      break;                           \
  }

gcclResult_t castEncode(const Params& p, const void* src, size_t count, gcclDataType_t type,
                        void* out, cudaStream_t stream) {
  const bool half = p.castTo == gcclFloat16;
  auto* d = static_cast<uint16_t*>(out);
  if (type == gcclFloat64) {
    castKernel<double>
        <<<gridFor(count), kThreads, 0, stream>>>(static_cast<const double*>(src), d, count, half);
  } else {
    castKernel<float>
        <<<gridFor(count), kThreads, 0, stream>>>(static_cast<const float*>(src), d, count, half);
  }
  return lastLaunch();
}

gcclResult_t castDecode(const Params& p, const void* in, size_t count, gcclDataType_t type,
                        void* dst, cudaStream_t stream) {
  const bool half = p.castTo == gcclFloat16;
  const auto* s = static_cast<const uint16_t*>(in);
  if (type == gcclFloat64) {
    uncastKernel<double>
        <<<gridFor(count), kThreads, 0, stream>>>(s, static_cast<double*>(dst), count, half);
  } else {
    uncastKernel<float>
        <<<gridFor(count), kThreads, 0, stream>>>(s, static_cast<float*>(dst), count, half);
  }
  return lastLaunch();
}

gcclResult_t quantizeEncode(const Params& p, const void* src, size_t count, gcclDataType_t type,
                            uint8_t* out, Status* status, cudaStream_t stream) {
#define GCCL_CALL(Fmt) quantizeEncodeLaunch<Fmt>(p, src, count, out, status, stream)
  GCCL_CODEC_BY_TYPE(type, GCCL_CALL)
#undef GCCL_CALL
  return lastLaunch();
}

gcclResult_t quantizeDecode(const Params& p, const uint8_t* in, size_t count, gcclDataType_t type,
                            void* dst, cudaStream_t stream) {
#define GCCL_CALL(Fmt) quantizeDecodeLaunch<Fmt>(p, in, count, dst, stream)
  GCCL_CODEC_BY_TYPE(type, GCCL_CALL)
#undef GCCL_CALL
  return lastLaunch();
}

gcclResult_t latticeEncode(const Params& p, const void* src, size_t count, gcclDataType_t type,
                           uint8_t* out, Status* status, cudaStream_t stream) {
#define GCCL_CALL(Fmt) latticeEncodeLaunch<Fmt>(p, src, count, out, status, stream)
  GCCL_CODEC_BY_TYPE(type, GCCL_CALL)
#undef GCCL_CALL
  return lastLaunch();
}

gcclResult_t latticeDecode(const Params& p, const uint8_t* in, size_t count, gcclDataType_t type,
                           void* dst, const void* reference, Status* status, cudaStream_t stream) {
#define GCCL_CALL(Fmt) latticeDecodeLaunch<Fmt>(p, in, count, dst, reference, status, stream)
  GCCL_CODEC_BY_TYPE(type, GCCL_CALL)
#undef GCCL_CALL
  return lastLaunch();
}

#undef GCCL_CODEC_BY_TYPE

}  // namespace gccl::cuda::codec::detail
