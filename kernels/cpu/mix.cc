#include "kernels/cpu/mix.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/kernel_attrs.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#endif

// a*x + b*y is exactly the shape a compiler contracts into an FMA wherever the
// target has one (-march=native, -mfma): that rounds once instead of twice and
// would make results depend on build flags and on the vector path. Contraction
// is off for this file, whatever the command line says.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

// The loops follow reduce.cc: fixed 64-element blocks plus a scalar tail over
// __restrict pointers, because GCC's -O2 cost model only vectorises a loop
// whose trip count is a known multiple of the vector width and whose pointers
// cannot alias; entry points are flattened so the element ops get inlined, and
// built for AVX2 as well on x86-64 (picked at load time). The baseline builds
// behind detail:: share the source, so the tests can compare the two.

#define GCCL_MIX_BASELINE __attribute__((flatten))

namespace gccl::kernels {
namespace {

constexpr size_t kBlock = 64;
// Streams per fused loop. Each stream needs its own __restrict parameter (the
// vectoriser must know no y aliases x) and a register for its coefficient, so
// the count is fixed at compile time; larger ny is done in groups.
constexpr int kGroup = 8;
// Elements per chunk when ny > kGroup: their partial sums stay in a stack
// buffer, in L1, from one group to the next.
constexpr size_t kChunk = 256;
constexpr size_t kLine = kPrefetchLine;

// ---- Formats: storage type, accumulation type, conversions ---------------

// Every narrow() turns any NaN into the canonical one (see mix.h).
struct F32 {
  using T = float;
  using Acc = float;
  static Acc widen(T v) { return v; }
  static T narrow(Acc r) { return r != r ? bitsToFloat(0x7FC00000u) : r; }
};

struct F64 {
  using T = double;
  using Acc = double;
  static Acc widen(T v) { return v; }
  static T narrow(Acc r) { return r != r ? bitsToDouble(0x7FF8000000000000ull) : r; }
};

struct F16 {
  using T = uint16_t;
  using Acc = float;
  static Acc widen(T v) { return halfToFloat(v); }
  // The canonical float NaN converts to the canonical half NaN, 0x7E00.
  static T narrow(Acc r) { return floatToHalf(F32::narrow(r)); }
};

struct BF16 {
  using T = uint16_t;
  using Acc = float;
  // A signalling NaN may stay signalling here: every element goes through
  // at least one multiply, which quiets it, and narrow() canonicalises NaN
  // anyway. Keeping NaN handling in one place keeps the loop short.
  static Acc widen(T v) { return bitsToFloat(static_cast<uint32_t>(v) << 16); }
  static T narrow(Acc r) {
    uint32_t x = floatToBits(r);
    x = (x & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC00000u : x;
    // Round to nearest even; a carry into the exponent is correct (FLT_MAX-sized
    // values become Inf).
    return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
  }
};

// ---- Mixing ---------------------------------------------------------------

template <class Fmt, size_t>
using Stream = const typename Fmt::T*;

// One element: start from a*x[k] (kFromX) or the partial sum acc[k], add the
// streams' terms left to right, and store to x, rounded, (kToX) or to acc.
// No __restrict here: it would only promise no aliasing within one element,
// and its scope would replace that of mixLoop's, which covers the whole loop.
template <class Fmt, bool kFromX, bool kToX, size_t... Is>
GCCL_KERNEL_INLINE void mixElement(typename Fmt::T* x, typename Fmt::Acc* acc, typename Fmt::Acc a,
                                   [[maybe_unused]] const typename Fmt::Acc* b, size_t k,
                                   Stream<Fmt, Is>... ys) {
  typename Fmt::Acc v;
  if constexpr (kFromX) {
    v = a * Fmt::widen(x[k]);
  } else {
    v = acc[k];
  }
  ((v = v + b[Is] * Fmt::widen(ys[k])), ...);
  if constexpr (kToX) {
    x[k] = Fmt::narrow(v);
  } else {
    acc[k] = v;
  }
}

template <class Fmt, bool kFromX, bool kToX, size_t... Is>
GCCL_KERNEL_INLINE void mixLoop(typename Fmt::T* __restrict x, typename Fmt::Acc* __restrict acc,
                                typename Fmt::Acc a, const typename Fmt::Acc* __restrict b,
                                size_t n, Stream<Fmt, Is> __restrict... ys) {
  constexpr size_t kBlockBytes = kBlock * sizeof(typename Fmt::T);
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    // acc is a small stack buffer, already in L1.
    if constexpr (kFromX) prefetchAhead(x + i, kBlockBytes);
    (prefetchAhead(ys + i, kBlockBytes), ...);
    for (size_t j = 0; j < kBlock; ++j)
      mixElement<Fmt, kFromX, kToX, Is...>(x, acc, a, b, i + j, ys...);
  }
  for (; i < n; ++i)
    mixElement<Fmt, kFromX, kToX, Is...>(x, acc, a, b, i, ys...);
}

// The streams of one group, out of their array and into restrict parameters.
template <class Fmt, bool kFromX, bool kToX, size_t... Is>
GCCL_KERNEL_INLINE void mixGroup(typename Fmt::T* x, typename Fmt::Acc* acc, typename Fmt::Acc a,
                                 const typename Fmt::Acc* b, const typename Fmt::T* const* ys,
                                 size_t n, std::index_sequence<Is...>) {
  mixLoop<Fmt, kFromX, kToX, Is...>(x, acc, a, b, n, ys[Is]...);
}

// A group of k <= kGroup streams, k known only at run time: one loop per k.
template <class Fmt, bool kFromX, bool kToX>
GCCL_KERNEL_INLINE void mixGroupOf(int k, typename Fmt::T* x, typename Fmt::Acc* acc,
                                   typename Fmt::Acc a, const typename Fmt::Acc* b,
                                   const typename Fmt::T* const* ys, size_t n) {
  static_assert(kGroup == 8, "one case per group size");
  switch (k) {
    case 0:
      return mixGroup<Fmt, kFromX, kToX>(x, acc, a, b, ys, n, std::make_index_sequence<0>());
    case 1:
      return mixGroup<Fmt, kFromX, kToX>(x, acc, a, b, ys, n, std::make_index_sequence<1>());
    case 2:
      return mixGroup<Fmt, kFromX, kToX>(x, acc, a, b, ys, n, std::make_index_sequence<2>());
    case 3:
      return mixGroup<Fmt, kFromX, kToX>(x, acc, a, b, ys, n, std::make_index_sequence<3>());
    case 4:
      return mixGroup<Fmt, kFromX, kToX>(x, acc, a, b, ys, n, std::make_index_sequence<4>());
    case 5:
      return mixGroup<Fmt, kFromX, kToX>(x, acc, a, b, ys, n, std::make_index_sequence<5>());
    case 6:
      return mixGroup<Fmt, kFromX, kToX>(x, acc, a, b, ys, n, std::make_index_sequence<6>());
    case 7:
      return mixGroup<Fmt, kFromX, kToX>(x, acc, a, b, ys, n, std::make_index_sequence<7>());
    default:
      return mixGroup<Fmt, kFromX, kToX>(x, acc, a, b, ys, n, std::make_index_sequence<8>());
  }
}

template <class Fmt>
GCCL_KERNEL_INLINE void mixAll(void* xv, double a, const void* const* ys, const double* b, int ny,
                               size_t n) {
  using T = typename Fmt::T;
  using Acc = typename Fmt::Acc;
  T* x = static_cast<T*>(xv);
  const Acc ca = static_cast<Acc>(a);
  Acc cb[kGroup] = {};
  const T* yp[kGroup] = {};
  // Converting a coefficient again for each chunk gives the same value, so
  // it is still "rounded once".
  auto load = [&](int first, int k, size_t offset) {
    for (int j = 0; j < k; ++j) {
      cb[j] = static_cast<Acc>(b[first + j]);
      yp[j] = static_cast<const T*>(ys[first + j]) + offset;
    }
  };
  if (ny <= kGroup) {
    load(0, ny, 0);
    return mixGroupOf<Fmt, true, true>(ny, x, nullptr, ca, cb, yp, n);
  }
  // The partial sums stay in Acc between groups, so float16/bfloat16 are
  // still rounded once, and the order of terms is that of the formula.
  Acc acc[kChunk];
  for (size_t off = 0; off < n; off += kChunk) {
    const size_t m = std::min(kChunk, n - off);
    load(0, kGroup, off);
    mixGroup<Fmt, true, false>(x + off, acc, ca, cb, yp, m, std::make_index_sequence<kGroup>());
    int j = kGroup;
    for (; ny - j > kGroup; j += kGroup) {
      load(j, kGroup, off);
      mixGroup<Fmt, false, false>(nullptr, acc, ca, cb, yp, m, std::make_index_sequence<kGroup>());
    }
    load(j, ny - j, off);
    mixGroupOf<Fmt, false, true>(ny - j, x + off, acc, ca, cb, yp, m);
  }
}

GCCL_KERNEL_INLINE void mixTyped(void* x, double a, const void* const* ys, const double* b, int ny,
                                 size_t n, gcclDataType_t type) {
  switch (type) {
    case gcclFloat16:
      return mixAll<F16>(x, a, ys, b, ny, n);
    case gcclBfloat16:
      return mixAll<BF16>(x, a, ys, b, ny, n);
    case gcclFloat32:
      return mixAll<F32>(x, a, ys, b, ny, n);
    case gcclFloat64:
      return mixAll<F64>(x, a, ys, b, ny, n);
    default:
      return;
  }
}

// ---- De-biasing -------------------------------------------------------------

template <class Fmt>
GCCL_KERNEL_INLINE void quotientOutOfPlace(typename Fmt::T* __restrict d,
                                           const typename Fmt::T* __restrict s, typename Fmt::Acc w,
                                           size_t n) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    prefetchAhead(s + i, kBlock * sizeof(*s));
    for (size_t j = 0; j < kBlock; ++j)
      d[i + j] = Fmt::narrow(Fmt::widen(s[i + j]) / w);
  }
  for (; i < n; ++i)
    d[i] = Fmt::narrow(Fmt::widen(s[i]) / w);
}

// dst == src: one pointer, nothing to alias.
template <class Fmt>
GCCL_KERNEL_INLINE void quotientInPlace(typename Fmt::T* x, typename Fmt::Acc w, size_t n) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    prefetchAhead(x + i, kBlock * sizeof(*x));
    for (size_t j = 0; j < kBlock; ++j)
      x[i + j] = Fmt::narrow(Fmt::widen(x[i + j]) / w);
  }
  for (; i < n; ++i)
    x[i] = Fmt::narrow(Fmt::widen(x[i]) / w);
}

template <class Fmt>
GCCL_KERNEL_INLINE void debiasAll(void* dst, const void* src, double w, size_t n) {
  using T = typename Fmt::T;
  T* d = static_cast<T*>(dst);
  const T* s = static_cast<const T*>(src);
  const auto cw = static_cast<typename Fmt::Acc>(w);
  if (d == s) {
    quotientInPlace<Fmt>(d, cw, n);
  } else {
    quotientOutOfPlace<Fmt>(d, s, cw, n);
  }
}

GCCL_KERNEL_INLINE void debiasTyped(void* dst, const void* src, double w, size_t n,
                                    gcclDataType_t type) {
  switch (type) {
    case gcclFloat16:
      return debiasAll<F16>(dst, src, w, n);
    case gcclBfloat16:
      return debiasAll<BF16>(dst, src, w, n);
    case gcclFloat32:
      return debiasAll<F32>(dst, src, w, n);
    case gcclFloat64:
      return debiasAll<F64>(dst, src, w, n);
    default:
      return;
  }
}

// ---- Entry points: AVX2/default clones, and the baseline build -------------

GCCL_KERNEL void mixKernel(void* x, double a, const void* const* ys, const double* b, int ny,
                           size_t n, gcclDataType_t type) {
  mixTyped(x, a, ys, b, ny, n, type);
}
GCCL_MIX_BASELINE void mixBaseline(void* x, double a, const void* const* ys, const double* b,
                                   int ny, size_t n, gcclDataType_t type) {
  mixTyped(x, a, ys, b, ny, n, type);
}
GCCL_KERNEL void debiasKernel(void* dst, const void* src, double w, size_t n, gcclDataType_t type) {
  debiasTyped(dst, src, w, n, type);
}
GCCL_MIX_BASELINE void debiasBaseline(void* dst, const void* src, double w, size_t n,
                                      gcclDataType_t type) {
  debiasTyped(dst, src, w, n, type);
}

// ---- float16 through F16C ----------------------------------------------------
//
// The portable float16 conversions are some 30 integer instructions per
// element, which GCC does not vectorise; F16C converts 8 elements in one. Both
// round to nearest even and keep NaN a NaN (canonicalised below), and both do
// the float32 arithmetic in the same order, so the bits are the same; the
// tests compare them.

#if defined(__x86_64__) && defined(__GNUC__) && !defined(GCCL_NO_F16C)
#define GCCL_MIX_F16C 1

#define GCCL_F16C_FN __attribute__((target("avx,f16c")))

GCCL_F16C_FN inline __m256 loadHalves(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Rounds to nearest even and canonicalises NaN on the 16-bit integers: GCC
// turns a float blend on an unordered compare into per-lane scalar code.
GCCL_F16C_FN inline void storeHalves(uint16_t* p, __m256 v) {
  const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
  const __m128i isNaN =
      _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7FFF)), _mm_set1_epi16(0x7C00));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm_blendv_epi8(h, _mm_set1_epi16(0x7E00), isNaN));
}

// K >= 0: exactly K streams, with coefficients and pointers held in registers.
// K < 0: any ny, each coefficient converted as it is used (the same value).
template <int K>
GCCL_F16C_FN void float16MixF16c(void* xv, double a, const void* const* ys, const double* b, int ny,
                                 size_t n) {
  constexpr int kSlots = K > 0 ? K : 1;
  const int m = K >= 0 ? K : ny;
  uint16_t* x = static_cast<uint16_t*>(xv);
  const float ca = static_cast<float>(a);
  const __m256 va = _mm256_set1_ps(ca);
  __m256 vb[kSlots];
  const uint16_t* yp[kSlots];
  for (int j = 0; j < K; ++j) {
    vb[j] = _mm256_set1_ps(static_cast<float>(b[j]));
    yp[j] = static_cast<const uint16_t*>(ys[j]);
  }
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (i % (kLine / sizeof(uint16_t)) == 0) {
      prefetchAhead(x + i, kLine);
      for (int j = 0; j < m; ++j)
        prefetchAhead((K >= 0 ? yp[j] : static_cast<const uint16_t*>(ys[j])) + i, kLine);
    }
    __m256 v = _mm256_mul_ps(va, loadHalves(x + i));
    if constexpr (K >= 0) {
      for (int j = 0; j < K; ++j)
        v = _mm256_add_ps(v, _mm256_mul_ps(vb[j], loadHalves(yp[j] + i)));
    } else {
      for (int j = 0; j < ny; ++j) {
        const __m256 bj = _mm256_set1_ps(static_cast<float>(b[j]));
        v = _mm256_add_ps(v,
                          _mm256_mul_ps(bj, loadHalves(static_cast<const uint16_t*>(ys[j]) + i)));
      }
    }
    storeHalves(x + i, v);
  }
  for (; i < n; ++i) {
    float v = ca * F16::widen(x[i]);
    for (int j = 0; j < m; ++j)
      v = v + static_cast<float>(b[j]) * F16::widen(static_cast<const uint16_t*>(ys[j])[i]);
    x[i] = F16::narrow(v);
  }
}

GCCL_F16C_FN void float16MixF16cAny(void* x, double a, const void* const* ys, const double* b,
                                    int ny, size_t n) {
  static_assert(kGroup == 8, "one case per count up to kGroup");
  switch (ny) {
    case 0:
      return float16MixF16c<0>(x, a, ys, b, ny, n);
    case 1:
      return float16MixF16c<1>(x, a, ys, b, ny, n);
    case 2:
      return float16MixF16c<2>(x, a, ys, b, ny, n);
    case 3:
      return float16MixF16c<3>(x, a, ys, b, ny, n);
    case 4:
      return float16MixF16c<4>(x, a, ys, b, ny, n);
    case 5:
      return float16MixF16c<5>(x, a, ys, b, ny, n);
    case 6:
      return float16MixF16c<6>(x, a, ys, b, ny, n);
    case 7:
      return float16MixF16c<7>(x, a, ys, b, ny, n);
    case 8:
      return float16MixF16c<8>(x, a, ys, b, ny, n);
    default:
      return float16MixF16c<-1>(x, a, ys, b, ny, n);
  }
}

// Loads and stores go 8 lanes at a time, each loaded before it is stored, so
// dst may be src.
GCCL_F16C_FN void float16DebiasF16c(void* dst, const void* src, double w, size_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  const uint16_t* s = static_cast<const uint16_t*>(src);
  const float cw = static_cast<float>(w);
  const __m256 vw = _mm256_set1_ps(cw);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (i % (kLine / sizeof(uint16_t)) == 0) prefetchAhead(s + i, kLine);
    storeHalves(d + i, _mm256_div_ps(loadHalves(s + i), vw));
  }
  for (; i < n; ++i)
    d[i] = F16::narrow(F16::widen(s[i]) / cw);
}
#endif

// ---- Argument checks shared by every path -------------------------------------

bool isFloating(gcclDataType_t type) {
  return type == gcclFloat16 || type == gcclBfloat16 || type == gcclFloat32 || type == gcclFloat64;
}

// Exact aliasing of x by a y is caught (the restrict loops would be undefined
// for it); partial overlap is the caller's to avoid.
bool mixArgsOk(const void* x, const void* const* ys, int ny, size_t count, gcclDataType_t type) {
  if (!isFloating(type) || ny < 0) return false;
  if (count == 0) return true;
  for (int j = 0; j < ny; ++j) {
    if (ys[j] == x) return false;
  }
  return true;
}

bool debiasArgsOk(double w, gcclDataType_t type) {
  if (!isFloating(type) || !std::isfinite(w) || w == 0) return false;
  if (type == gcclFloat64) return true;
  // The other types divide by w rounded to float32, which may overflow or vanish.
  const float f = static_cast<float>(w);
  return std::isfinite(f) && f != 0;
}

}  // namespace

namespace detail {

bool mixPortable(void* x, double a, const void* const* ys, const double* b, int ny, size_t count,
                 gcclDataType_t type) {
  if (!mixArgsOk(x, ys, ny, count, type)) return false;
  if (count > 0) mixBaseline(x, a, ys, b, ny, count, type);
  return true;
}

bool debiasPortable(void* dst, const void* src, double w, size_t count, gcclDataType_t type) {
  if (!debiasArgsOk(w, type)) return false;
  if (count > 0) debiasBaseline(dst, src, w, count, type);
  return true;
}

}  // namespace detail

bool mix(void* x, double a, const void* const* ys, const double* b, int ny, size_t count,
         gcclDataType_t type) {
  if (!mixArgsOk(x, ys, ny, count, type)) return false;
  if (count == 0) return true;
#ifdef GCCL_MIX_F16C
  if (type == gcclFloat16 && cpuHasF16c()) {
    float16MixF16cAny(x, a, ys, b, ny, count);
    return true;
  }
#endif
  mixKernel(x, a, ys, b, ny, count, type);
  return true;
}

bool scale(void* x, double a, size_t count, gcclDataType_t type) {
  return mix(x, a, nullptr, nullptr, 0, count, type);
}

// 1 * x[i] == x[i] exactly, so this is x + b*y with the same bits, and one
// kernel serves all three operations.
bool axpy(void* x, double b, const void* y, size_t count, gcclDataType_t type) {
  return mix(x, 1.0, &y, &b, 1, count, type);
}

bool debias(void* dst, const void* src, double w, size_t count, gcclDataType_t type) {
  if (!debiasArgsOk(w, type)) return false;
  if (count == 0) return true;
#ifdef GCCL_MIX_F16C
  if (type == gcclFloat16 && cpuHasF16c()) {
    float16DebiasF16c(dst, src, w, count);
    return true;
  }
#endif
  debiasKernel(dst, src, w, count, type);
  return true;
}

}  // namespace gccl::kernels
