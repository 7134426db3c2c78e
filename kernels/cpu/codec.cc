#include "kernels/cpu/codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "base/check.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/kernel_attrs.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

// No multiply-add is fused, whatever the command line says: the scalar and
// vector paths must round the same way (see mix.cc).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

// Loops are written as in mix.cc: fixed blocks plus a scalar tail, built for
// AVX2 as well on x86-64 (picked at load time).

namespace gccl::kernels::codec {
namespace {

constexpr size_t kChunk = 256;  // elements per pass over L1-resident buffers; a multiple of 4
constexpr size_t kLanes = 32;
constexpr size_t kBlock = 64;  // fixed inner trip count, which GCC's -O2 cost model vectorises

const char* typeName(gcclDataType_t t) {
  switch (t) {
    case gcclInt8:
      return "int8";
    case gcclUint8:
      return "uint8";
    case gcclInt32:
      return "int32";
    case gcclUint32:
      return "uint32";
    case gcclInt64:
      return "int64";
    case gcclUint64:
      return "uint64";
    case gcclFloat16:
      return "float16";
    case gcclFloat32:
      return "float32";
    case gcclFloat64:
      return "float64";
    case gcclBfloat16:
      return "bfloat16";
    default:
      return "unknown";
  }
}

bool isFloating(gcclDataType_t t) {
  return t == gcclFloat16 || t == gcclBfloat16 || t == gcclFloat32 || t == gcclFloat64;
}

// ---- Hashing --------------------------------------------------------------------

// A bijective 64-bit finaliser (xor-shift / multiply, Stafford's "mix13"
// constants): every input bit affects every output bit.
GCCL_KERNEL_INLINE uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

GCCL_KERNEL_INLINE uint64_t streamKey(uint64_t seed) {
  return mix64(seed ^ 0x6A09E667F3BCC909ull);
}

// 24 random bits of (key, index) as a float in [0, 1), exact.
GCCL_KERNEL_INLINE float uniformAt(uint64_t key, uint64_t index) {
  const uint64_t h = mix64(key + index * 0x9E3779B97F4A7C15ull);
  return static_cast<float>(static_cast<uint32_t>(h >> 40)) * (1.0f / 16777216.0f);
}

// ---- float64 to the 16-bit formats, rounded once --------------------------------

// Round to nearest even straight from the float64 bits (converting through
// float32 would round twice). Same NaN rule as half.h: sign and top payload
// bits kept, quiet bit set.
inline uint16_t doubleToHalf(double d) {
  const uint64_t x = doubleToBits(d);
  const uint16_t sign = static_cast<uint16_t>((x >> 48) & 0x8000u);
  const uint64_t a = x & 0x7FFFFFFFFFFFFFFFull;
  uint64_t mag;
  if (a > 0x7FF0000000000000ull) {
    mag = 0x7E00u | ((a >> 42) & 0x3FFu);
  } else if (a >= 0x40EFFE0000000000ull) {  // 65520: the tie above 65504 rounds to Inf
    mag = 0x7C00u;
  } else if ((a >> 52) >= 1009) {  // normal half: exponent >= -14
    const uint64_t n = a - (1008ull << 52);
    mag = (n + ((1ull << 41) - 1) + ((n >> 42) & 1u)) >> 42;
  } else {  // subnormal half, in units of 2^-24
    const int e = static_cast<int>(a >> 52);
    const uint64_t m = (a & 0x000FFFFFFFFFFFFFull) | (1ull << 52);
    const int s = std::min(1051 - e, 54);
    mag = (m + ((1ull << (s - 1)) - 1) + ((m >> s) & 1u)) >> s;
  }
  return static_cast<uint16_t>(sign | mag);
}

inline uint16_t doubleToBfloat16(double d) {
  const uint64_t x = doubleToBits(d);
  const uint16_t sign = static_cast<uint16_t>((x >> 48) & 0x8000u);
  const uint64_t a = x & 0x7FFFFFFFFFFFFFFFull;
  uint64_t mag;
  if (a > 0x7FF0000000000000ull) {
    mag = 0x7FC0u | ((a >> 45) & 0x7Fu);
  } else if (a >= 0x47EFF00000000000ull) {  // (2 - 2^-8) * 2^127: the tie rounds to Inf
    mag = 0x7F80u;
  } else if ((a >> 52) >= 897) {  // normal: exponent >= -126
    const uint64_t n = a - (896ull << 52);
    mag = (n + ((1ull << 44) - 1) + ((n >> 45) & 1u)) >> 45;
  } else {  // subnormal, in units of 2^-133
    const int e = static_cast<int>(a >> 52);
    const uint64_t m = (a & 0x000FFFFFFFFFFFFFull) | (1ull << 52);
    const int s = std::min(942 - e, 54);
    mag = (m + ((1ull << (s - 1)) - 1) + ((m >> s) & 1u)) >> s;
  }
  return static_cast<uint16_t>(sign | mag);
}

// ---- Casts ------------------------------------------------------------------------

GCCL_KERNEL void castF32(const float* __restrict s, uint16_t* __restrict d, size_t n, bool half) {
  size_t i = 0;
  if (half) {
    for (; i + 64 <= n; i += 64) {
      for (size_t j = 0; j < 64; ++j)
        d[i + j] = floatToHalf(s[i + j]);
    }
    for (; i < n; ++i)
      d[i] = floatToHalf(s[i]);
  } else {
    for (; i + 64 <= n; i += 64) {
      for (size_t j = 0; j < 64; ++j)
        d[i + j] = floatToBfloat16(s[i + j]);
    }
    for (; i < n; ++i)
      d[i] = floatToBfloat16(s[i]);
  }
}

GCCL_KERNEL void uncastF32(const uint16_t* __restrict s, float* __restrict d, size_t n, bool half) {
  size_t i = 0;
  if (half) {
    for (; i + 64 <= n; i += 64) {
      for (size_t j = 0; j < 64; ++j)
        d[i + j] = halfToFloat(s[i + j]);
    }
    for (; i < n; ++i)
      d[i] = halfToFloat(s[i]);
  } else {
    for (; i + 64 <= n; i += 64) {
      for (size_t j = 0; j < 64; ++j)
        d[i + j] = bfloat16ToFloat(s[i + j]);
    }
    for (; i < n; ++i)
      d[i] = bfloat16ToFloat(s[i]);
  }
}

void castF64(const double* s, uint16_t* d, size_t n, bool half) {
  for (size_t i = 0; i < n; ++i)
    d[i] = half ? doubleToHalf(s[i]) : doubleToBfloat16(s[i]);
}

void uncastF64(const uint16_t* s, double* d, size_t n, bool half) {
  for (size_t i = 0; i < n; ++i)
    d[i] = half ? halfToFloat(s[i]) : bfloat16ToFloat(s[i]);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(GCCL_NO_F16C)
#define GCCL_CODEC_F16C 1
#define GCCL_F16C_FN __attribute__((target("avx,f16c")))

// The hardware conversions round to nearest even (MXCSR is not consulted with
// an explicit rounding immediate) and quiet NaN keeping its top payload bits:
// the rules of half.h, so the bits match the portable path.
GCCL_F16C_FN void castF32HalfF16c(const float* s, uint16_t* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i)
    d[i] = floatToHalf(s[i]);
}

GCCL_F16C_FN void uncastF32HalfF16c(const uint16_t* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i)
    d[i] = halfToFloat(s[i]);
}
#endif

// ---- Bucket layout and code packing -------------------------------------------------

size_t codeBytes(size_t m, int bits) {
  return (m * static_cast<size_t>(bits) + 7) / 8;
}

struct Layout {
  size_t buckets = 0;
  size_t headerBytes = 0;  // all headers together
  size_t total = 0;
  // Byte offset of bucket j's codes.
  size_t codesAt(size_t j, size_t bucket, int bits) const {
    return headerBytes + j * codeBytes(bucket, bits);
  }
};

Layout bucketLayout(size_t count, size_t bucket, int bits, size_t headerPerBucket) {
  Layout l;
  if (count == 0) return l;
  l.buckets = (count + bucket - 1) / bucket;
  l.headerBytes = l.buckets * headerPerBucket;
  const size_t last = count - (l.buckets - 1) * bucket;
  l.total = l.headerBytes + (l.buckets - 1) * codeBytes(bucket, bits) + codeBytes(last, bits);
  return l;
}

// Packs n codes (each < 2^bits), low bits first.
GCCL_KERNEL_INLINE void pack(const uint8_t* __restrict q, size_t n, int bits,
                             uint8_t* __restrict out) {
  if (bits == 8) {
    std::memcpy(out, q, n);
  } else if (bits == 4) {
    const size_t pairs = n / 2;
    for (size_t j = 0; j < pairs; ++j)
      out[j] = static_cast<uint8_t>(q[2 * j] | (q[2 * j + 1] << 4));
    if (n % 2) out[pairs] = q[n - 1];
  } else {
    const size_t quads = n / 4;
    for (size_t j = 0; j < quads; ++j)
      out[j] = static_cast<uint8_t>(q[4 * j] | (q[4 * j + 1] << 2) | (q[4 * j + 2] << 4) |
                                    (q[4 * j + 3] << 6));
    if (n % 4) {
      uint8_t b = 0;
      for (size_t t = 0; t < n % 4; ++t)
        b = static_cast<uint8_t>(b | (q[4 * quads + t] << (2 * t)));
      out[quads] = b;
    }
  }
}

GCCL_KERNEL_INLINE void unpack(const uint8_t* __restrict in, size_t n, int bits,
                               uint8_t* __restrict q) {
  if (bits == 8) {
    std::memcpy(q, in, n);
  } else if (bits == 4) {
    for (size_t j = 0; j < n / 2; ++j) {
      q[2 * j] = in[j] & 0xF;
      q[2 * j + 1] = static_cast<uint8_t>(in[j] >> 4);
    }
    if (n % 2) q[n - 1] = in[n / 2] & 0xF;
  } else {
    for (size_t j = 0; j < n / 4; ++j) {
      q[4 * j] = in[j] & 3;
      q[4 * j + 1] = (in[j] >> 2) & 3;
      q[4 * j + 2] = (in[j] >> 4) & 3;
      q[4 * j + 3] = static_cast<uint8_t>(in[j] >> 6);
    }
    for (size_t t = 0; t < n % 4; ++t)
      q[4 * (n / 4) + t] = (in[n / 4] >> (2 * t)) & 3;
  }
}

// ---- Element formats: storage type and the type the codecs compute in ------------

struct F32 {
  using T = float;
  using C = float;
  static C widen(T v) { return v; }
  static T narrowD(double v) { return static_cast<float>(v); }
};
struct F64 {
  using T = double;
  using C = double;
  static C widen(T v) { return v; }
  static T narrowD(double v) { return v; }
};
struct F16 {
  using T = uint16_t;
  using C = float;
  static C widen(T v) { return halfToFloat(v); }
  static T narrowD(double v) { return doubleToHalf(v); }
};
struct BF16 {
  using T = uint16_t;
  using C = float;
  static C widen(T v) { return bfloat16ToFloat(v); }
  static T narrowD(double v) { return doubleToBfloat16(v); }
};

GCCL_KERNEL_INLINE bool nonFinite(float v) {
  return (floatToBits(v) & 0x7F800000u) == 0x7F800000u;
}
GCCL_KERNEL_INLINE bool nonFinite(double v) {
  return (doubleToBits(v) & 0x7FF0000000000000ull) == 0x7FF0000000000000ull;
}

// Loads elements [i, i + n) of src as C: a pointer into src when no
// conversion is needed, else widened into buf.
template <class Fmt>
GCCL_KERNEL_INLINE const typename Fmt::C* loadChunk(const typename Fmt::T* __restrict src, size_t n,
                                                    typename Fmt::C* __restrict buf) {
  if constexpr (std::is_same_v<typename Fmt::T, typename Fmt::C>) {
    (void)n;
    (void)buf;
    return src;
  } else {
    size_t i = 0;
    for (; i + kBlock <= n; i += kBlock) {
      for (size_t j = 0; j < kBlock; ++j)
        buf[i + j] = Fmt::widen(src[i + j]);
    }
    for (; i < n; ++i)
      buf[i] = Fmt::widen(src[i]);
    return buf;
  }
}

// Min and max of v[0..n) in lanes (vectorisable), and whether any is NaN/Inf.
template <class C>
struct Range {
  C mn[kLanes];
  C mx[kLanes];
  uint32_t bad[kLanes];
  Range() {
    for (size_t j = 0; j < kLanes; ++j) {
      mn[j] = std::numeric_limits<C>::infinity();
      mx[j] = -std::numeric_limits<C>::infinity();
      bad[j] = 0;
    }
  }
  // The lanes are worked on in locals, which stay in registers; members
  // would be loaded and stored back on every block.
  GCCL_KERNEL_INLINE void add(const C* __restrict v, size_t n) {
    C lmn[kLanes], lmx[kLanes];
    uint32_t lbad[kLanes];
    for (size_t j = 0; j < kLanes; ++j) {
      lmn[j] = mn[j];
      lmx[j] = mx[j];
      lbad[j] = bad[j];
    }
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (size_t j = 0; j < kLanes; ++j) {
        const C x = v[i + j];
        lmn[j] = x < lmn[j] ? x : lmn[j];
        lmx[j] = x > lmx[j] ? x : lmx[j];
        lbad[j] |= nonFinite(x) ? 1u : 0u;
      }
    }
    for (; i < n; ++i) {
      lmn[0] = v[i] < lmn[0] ? v[i] : lmn[0];
      lmx[0] = v[i] > lmx[0] ? v[i] : lmx[0];
      lbad[0] |= nonFinite(v[i]) ? 1u : 0u;
    }
    for (size_t j = 0; j < kLanes; ++j) {
      mn[j] = lmn[j];
      mx[j] = lmx[j];
      bad[j] = lbad[j];
    }
  }
  bool anyBad() const {
    uint32_t b = 0;
    for (size_t j = 0; j < kLanes; ++j)
      b |= bad[j];
    return b != 0;
  }
  // Pairwise over the lanes (a short dependency chain): lane j against lane
  // j + w, the upper one taken only when strictly smaller (larger). Every
  // path reduces the same lanes this way, so a choice between -0 and +0 is
  // the same everywhere.
  C min() const {
    C t[kLanes];
    std::memcpy(t, mn, sizeof t);
    for (size_t w = kLanes / 2; w > 0; w /= 2) {
      for (size_t j = 0; j < w; ++j)
        t[j] = t[j + w] < t[j] ? t[j + w] : t[j];
    }
    return t[0];
  }
  C max() const {
    C t[kLanes];
    std::memcpy(t, mx, sizeof t);
    for (size_t w = kLanes / 2; w > 0; w /= 2) {
      for (size_t j = 0; j < w; ++j)
        t[j] = t[j] < t[j + w] ? t[j + w] : t[j];
    }
    return t[0];
  }
};

#if defined(__x86_64__) && defined(__GNUC__) && !defined(GCCL_NO_TARGET_CLONES)
#define GCCL_CODEC_AVX2 1
#define GCCL_AVX2_FN __attribute__((target("avx2")))

bool cpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// Range<float>::add with the same lanes (lane j: the elements i % 32 == j of
// the full blocks; lane 0: the tail) and the same comparisons (MINPS(a, b) is
// a < b ? a : b, MAXPS(a, b) is a > b ? a : b), so the same result bits,
// signed zeros included.
// Lanes whose element is NaN or Inf (all exponent bits set). Functions, not
// lambdas: a lambda does not inherit its caller's target attribute (clang).
GCCL_AVX2_FN inline __m256i nonFiniteLanes(__m256 x, __m256i expo) {
  const __m256i e = _mm256_and_si256(_mm256_castps_si256(x), expo);
  return _mm256_cmpeq_epi32(e, expo);
}

GCCL_AVX2_FN void rangeF32Avx2(const float* v, size_t n, Range<float>& r) {
  static_assert(kLanes == 32 && kChunk % kLanes == 0, "four vectors of lanes");
  // Four named accumulators of each: an array of vectors indexed in a loop
  // stays in memory at -O2.
  __m256 mn0 = _mm256_loadu_ps(r.mn), mn1 = _mm256_loadu_ps(r.mn + 8);
  __m256 mn2 = _mm256_loadu_ps(r.mn + 16), mn3 = _mm256_loadu_ps(r.mn + 24);
  __m256 mx0 = _mm256_loadu_ps(r.mx), mx1 = _mm256_loadu_ps(r.mx + 8);
  __m256 mx2 = _mm256_loadu_ps(r.mx + 16), mx3 = _mm256_loadu_ps(r.mx + 24);
  __m256i bad = _mm256_setzero_si256();
  const __m256i expo = _mm256_set1_epi32(0x7F800000);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + i + 8);
    const __m256 x2 = _mm256_loadu_ps(v + i + 16), x3 = _mm256_loadu_ps(v + i + 24);
    mn0 = _mm256_min_ps(x0, mn0);
    mn1 = _mm256_min_ps(x1, mn1);
    mn2 = _mm256_min_ps(x2, mn2);
    mn3 = _mm256_min_ps(x3, mn3);
    mx0 = _mm256_max_ps(x0, mx0);
    mx1 = _mm256_max_ps(x1, mx1);
    mx2 = _mm256_max_ps(x2, mx2);
    mx3 = _mm256_max_ps(x3, mx3);
    bad = _mm256_or_si256(
        bad, _mm256_or_si256(_mm256_or_si256(nonFiniteLanes(x0, expo), nonFiniteLanes(x1, expo)),
                             _mm256_or_si256(nonFiniteLanes(x2, expo), nonFiniteLanes(x3, expo))));
  }
  _mm256_storeu_ps(r.mn, mn0);
  _mm256_storeu_ps(r.mn + 8, mn1);
  _mm256_storeu_ps(r.mn + 16, mn2);
  _mm256_storeu_ps(r.mn + 24, mn3);
  _mm256_storeu_ps(r.mx, mx0);
  _mm256_storeu_ps(r.mx + 8, mx1);
  _mm256_storeu_ps(r.mx + 16, mx2);
  _mm256_storeu_ps(r.mx + 24, mx3);
  // Only whether any lane saw NaN/Inf matters (anyBad()).
  r.bad[0] |= _mm256_testz_si256(bad, bad) ? 0u : 1u;
  if (i < n) r.add(v + i, n - i);
}
#endif

template <class Fmt>
gcclResult_t nonFiniteError(const typename Fmt::T* src, size_t base, size_t m, const char* what) {
  for (size_t i = 0; i < m; ++i) {
    const auto v = Fmt::widen(src[base + i]);
    if (nonFinite(v)) {
      return setError(gcclInvalidArgument, "codec: element %zu is %s; %s needs finite values",
                      base + i, v != v ? "NaN" : "infinite", what);
    }
  }
  return setError(gcclInternalError, "codec: a non-finite element was reported but not found");
}

// ---- Uniform quantization -------------------------------------------------------------

template <class C>
struct QHeader {
  C offset;
  C scale;
};

// Codes of v[0..n) (elements first..first+n of the tensor) into q.
template <class C, class W, bool kStochastic>
GCCL_KERNEL_INLINE uint8_t quantizeOne(C v, W off, W inv, W top, uint64_t key, uint64_t index) {
  const W t = (static_cast<W>(v) - off) * inv;
  W r;
  if constexpr (kStochastic) {
    r = t + static_cast<W>(uniformAt(key, index));
  } else {
    r = t + W(0.5);
  }
  r = r < top ? r : top;
  r = r > W(0) ? r : W(0);
  // r is in [0, 255]: the signed conversion truncates it (it vectorises, the
  // unsigned one does not).
  return static_cast<uint8_t>(static_cast<int32_t>(r));
}

// Codes of v[0..n) (elements first..first+n of the tensor) into q.
template <class C, class W, bool kStochastic>
GCCL_KERNEL_INLINE void quantizeCodes(const C* __restrict v, size_t n, W off, W inv,
                                      uint32_t levels, uint64_t key, uint64_t first,
                                      uint8_t* __restrict q) {
  const W top = static_cast<W>(levels);
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (size_t j = 0; j < kBlock; ++j)
      q[i + j] = quantizeOne<C, W, kStochastic>(v[i + j], off, inv, top, key, first + i + j);
  }
  for (; i < n; ++i)
    q[i] = quantizeOne<C, W, kStochastic>(v[i], off, inv, top, key, first + i);
}

#ifdef GCCL_CODEC_AVX2
// quantizeCodes<float, float, false> eight lanes at a time: the same
// operations in the same order, so the same codes.
// Eight codes: clamp((x - off) * inv + 1/2, 0, top), truncated.
GCCL_AVX2_FN inline __m256i nearestCodes(const float* p, __m256 voff, __m256 vinv, __m256 half,
                                         __m256 top, __m256 zero) {
  __m256 r = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p), voff), vinv), half);
  r = _mm256_max_ps(_mm256_min_ps(r, top), zero);
  return _mm256_cvttps_epi32(r);
}

GCCL_AVX2_FN void quantizeNearestF32Avx2(const float* v, size_t n, float off, float inv,
                                         uint32_t levels, uint8_t* q) {
  const __m256 voff = _mm256_set1_ps(off), vinv = _mm256_set1_ps(inv);
  const __m256 half = _mm256_set1_ps(0.5f), zero = _mm256_setzero_ps();
  const __m256 top = _mm256_set1_ps(static_cast<float>(levels));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i c01 = _mm256_packs_epi32(nearestCodes(v + i, voff, vinv, half, top, zero),
                                           nearestCodes(v + i + 8, voff, vinv, half, top, zero));
    const __m256i c23 = _mm256_packs_epi32(nearestCodes(v + i + 16, voff, vinv, half, top, zero),
                                           nearestCodes(v + i + 24, voff, vinv, half, top, zero));
    // Bytes in 4-element groups 0,8,16,24,4,12,20,28 (by first element): reorder.
    const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(c01, c23), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), b);
  }
  const float ftop = static_cast<float>(levels);
  for (; i < n; ++i)
    q[i] = quantizeOne<float, float, false>(v[i], off, inv, ftop, 0, 0);
}
#endif

template <class Fmt, class W>
GCCL_KERNEL_INLINE void quantizeBucket(const Params& p, const typename Fmt::T* src, size_t base,
                                       size_t m, W off, W inv, uint8_t* out,
                                       [[maybe_unused]] bool avx2) {
  using C = typename Fmt::C;
  const uint32_t levels = (1u << p.bits) - 1;
  const uint64_t key = streamKey(p.seed);
  C buf[kChunk];
  uint8_t q[kChunk];
#ifdef GCCL_CODEC_AVX2
  if constexpr (std::is_same_v<Fmt, F32> && std::is_same_v<W, float>) {
    if (avx2 && p.rounding == Rounding::kNearest && p.bits == 8) {
      quantizeNearestF32Avx2(src + base, m, off, inv, levels, out);
      return;
    }
  }
#endif
  for (size_t c = 0; c < m; c += kChunk) {
    const size_t n = std::min(kChunk, m - c);
    const C* v = loadChunk<Fmt>(src + base + c, n, buf);
#ifdef GCCL_CODEC_AVX2
    if constexpr (std::is_same_v<Fmt, F32> && std::is_same_v<W, float>) {
      if (avx2 && p.rounding == Rounding::kNearest) {
        uint8_t* dst = out + c * static_cast<size_t>(p.bits) / 8;
        if (p.bits == 8) {
          quantizeNearestF32Avx2(v, n, off, inv, levels, dst);
        } else {
          quantizeNearestF32Avx2(v, n, off, inv, levels, q);
          pack(q, n, p.bits, dst);
        }
        continue;
      }
    }
#endif
    if (p.rounding == Rounding::kStochastic) {
      quantizeCodes<C, W, true>(v, n, off, inv, levels, key, base + c, q);
    } else {
      quantizeCodes<C, W, false>(v, n, off, inv, levels, key, base + c, q);
    }
    pack(q, n, p.bits, out + c * static_cast<size_t>(p.bits) / 8);
  }
}

template <class Fmt>
GCCL_KERNEL_INLINE gcclResult_t quantizeEncode(const Params& p, const void* srcv, size_t count,
                                               uint8_t* out, [[maybe_unused]] bool avx2) {
  using T = typename Fmt::T;
  using C = typename Fmt::C;
  const T* src = static_cast<const T*>(srcv);
  const Layout l = bucketLayout(count, p.bucket, p.bits, sizeof(QHeader<C>));
  const double levels = static_cast<double>((1u << p.bits) - 1);
  C buf[kChunk];
  for (size_t b = 0; b < l.buckets; ++b) {
    const size_t base = b * p.bucket;
    const size_t m = std::min(p.bucket, count - base);
    Range<C> r;
    bool scanned = false;
#ifdef GCCL_CODEC_AVX2
    // The whole bucket at once: kChunk is a multiple of kLanes, so the lanes
    // get the same elements as chunk by chunk.
    if constexpr (std::is_same_v<Fmt, F32>) {
      if (avx2) {
        rangeF32Avx2(src + base, m, r);
        scanned = true;
      }
    }
#endif
    for (size_t c = 0; c < m && !scanned; c += kChunk) {
      const size_t n = std::min(kChunk, m - c);
      r.add(loadChunk<Fmt>(src + base + c, n, buf), n);
    }
    if (r.anyBad()) return nonFiniteError<Fmt>(src, base, m, "quantization");
    const C mn = r.min();
    const C mx = r.max();
    // The range in double is exact for float32 and never overflows; the scale
    // is rounded up so that (max - min) / scale <= levels.
    QHeader<C> h;
    h.offset = mn;
    const double range = static_cast<double>(mx) - static_cast<double>(mn);
    if (std::is_same_v<C, double> && !std::isfinite(range)) {
      return setError(gcclInvalidArgument,
                      "codec: bucket %zu (elements %zu..%zu) spans more than the float64 range; "
                      "use a smaller bucket",
                      b, base, base + m - 1);
    }
    C scale = static_cast<C>(range / levels);
    while (static_cast<double>(scale) * levels < range)
      scale = std::nextafter(scale, std::numeric_limits<C>::infinity());
    h.scale = scale;
    std::memcpy(out + b * sizeof h, &h, sizeof h);
    uint8_t* codes = out + l.codesAt(b, p.bucket, p.bits);
    if (scale == 0) {
      std::memset(codes, 0, codeBytes(m, p.bits));
      continue;
    }
    if (std::is_same_v<C, float> && (!std::isfinite(mx - mn) || !std::isfinite(C(1) / scale))) {
      // x - offset or 1 / scale (a subnormal scale) overflows float32:
      // compute this bucket in double.
      quantizeBucket<Fmt, double>(p, src, base, m, static_cast<double>(mn), 1.0 / scale, codes,
                                  avx2);
    } else {
      quantizeBucket<Fmt, C>(p, src, base, m, mn, C(1) / scale, codes, avx2);
    }
  }
  return gcclSuccess;
}

template <class Fmt, class W>
GCCL_KERNEL_INLINE typename Fmt::T dequantizeOne(uint8_t q, W off, W scale) {
  const W v = off + static_cast<W>(q) * scale;
  if constexpr (std::is_same_v<typename Fmt::T, typename Fmt::C>) {
    return static_cast<typename Fmt::T>(v);
  } else if constexpr (std::is_same_v<Fmt, F16>) {
    return floatToHalf(static_cast<float>(v));
  } else {
    return floatToBfloat16(static_cast<float>(v));
  }
}

template <class Fmt, class W>
GCCL_KERNEL_INLINE void dequantizeBucket(const uint8_t* codes, size_t m, int bits, W off, W scale,
                                         typename Fmt::T* __restrict dst) {
  uint8_t q[kChunk];
  for (size_t c = 0; c < m; c += kChunk) {
    const size_t n = std::min(kChunk, m - c);
    unpack(codes + c * static_cast<size_t>(bits) / 8, n, bits, q);
    typename Fmt::T* d = dst + c;
    size_t i = 0;
    for (; i + kBlock <= n; i += kBlock) {
      for (size_t j = 0; j < kBlock; ++j)
        d[i + j] = dequantizeOne<Fmt, W>(q[i + j], off, scale);
    }
    for (; i < n; ++i)
      d[i] = dequantizeOne<Fmt, W>(q[i], off, scale);
  }
}

template <class Fmt>
GCCL_KERNEL_INLINE void quantizeDecode(const Params& p, const uint8_t* in, size_t count,
                                       void* dstv) {
  using C = typename Fmt::C;
  auto* dst = static_cast<typename Fmt::T*>(dstv);
  const Layout l = bucketLayout(count, p.bucket, p.bits, sizeof(QHeader<C>));
  const C levels = static_cast<C>((1u << p.bits) - 1);
  for (size_t b = 0; b < l.buckets; ++b) {
    const size_t base = b * p.bucket;
    const size_t m = std::min(p.bucket, count - base);
    QHeader<C> h;
    std::memcpy(&h, in + b * sizeof h, sizeof h);
    const uint8_t* codes = in + l.codesAt(b, p.bucket, p.bits);
    if (std::is_same_v<C, float> && !std::isfinite(h.offset + levels * h.scale)) {
      dequantizeBucket<Fmt, double>(codes, m, p.bits, h.offset, h.scale, dst + base);
    } else {
      dequantizeBucket<Fmt, C>(codes, m, p.bits, h.offset, h.scale, dst + base);
    }
  }
}

GCCL_KERNEL gcclResult_t quantizeEncodeTyped(const Params& p, const void* src, size_t count,
                                             gcclDataType_t type, uint8_t* out, bool avx2) {
  switch (type) {
    case gcclFloat32:
      return quantizeEncode<F32>(p, src, count, out, avx2);
    case gcclFloat64:
      return quantizeEncode<F64>(p, src, count, out, avx2);
    case gcclFloat16:
      return quantizeEncode<F16>(p, src, count, out, avx2);
    default:
      return quantizeEncode<BF16>(p, src, count, out, avx2);
  }
}

GCCL_KERNEL void quantizeDecodeTyped(const Params& p, const uint8_t* in, size_t count,
                                     gcclDataType_t type, void* dst) {
  switch (type) {
    case gcclFloat32:
      return quantizeDecode<F32>(p, in, count, dst);
    case gcclFloat64:
      return quantizeDecode<F64>(p, in, count, dst);
    case gcclFloat16:
      return quantizeDecode<F16>(p, in, count, dst);
    default:
      return quantizeDecode<BF16>(p, in, count, dst);
  }
}

// ---- Lattice quantization -----------------------------------------------------------

constexpr double kLatticeLimit = 4503599627370496.0;  // 2^52

GCCL_KERNEL_INLINE uint64_t bucketHashStart(size_t bucketIndex) {
  return mix64(0xB5AD4ECEDA1CE2A9ull ^ static_cast<uint64_t>(bucketIndex));
}
GCCL_KERNEL_INLINE uint64_t bucketHashStep(uint64_t h, int64_t n) {
  return mix64(h ^ static_cast<uint64_t>(n));
}

template <class Fmt>
gcclResult_t latticeEncode(const Params& p, const void* srcv, size_t count, uint8_t* out) {
  const auto* src = static_cast<const typename Fmt::T*>(srcv);
  const Layout l = bucketLayout(count, p.bucket, p.bits, 8);
  const uint64_t key = streamKey(p.seed);
  const uint64_t mask = (1u << p.bits) - 1;
  uint8_t q[kChunk];
  for (size_t b = 0; b < l.buckets; ++b) {
    const size_t base = b * p.bucket;
    const size_t m = std::min(p.bucket, count - base);
    uint8_t* codes = out + l.codesAt(b, p.bucket, p.bits);
    uint64_t h = bucketHashStart(b);
    for (size_t c = 0; c < m; c += kChunk) {
      const size_t n = std::min(kChunk, m - c);
      for (size_t j = 0; j < n; ++j) {
        const size_t i = base + c + j;
        const double t = static_cast<double>(Fmt::widen(src[i])) / p.delta;
        if (!(std::fabs(t) < kLatticeLimit)) {
          return setError(gcclInvalidArgument,
                          "codec: element %zu is %s; lattice quantization needs |x / delta| < "
                          "2^52 (delta %g)",
                          i, t != t ? "NaN" : "too large or infinite", p.delta);
        }
        const double r = p.rounding == Rounding::kStochastic
                             ? std::floor(t + static_cast<double>(uniformAt(key, i)))
                             : std::nearbyint(t);
        const auto nInt = static_cast<int64_t>(r);
        h = bucketHashStep(h, nInt);
        q[j] = static_cast<uint8_t>(static_cast<uint64_t>(nInt) & mask);
      }
      pack(q, n, p.bits, codes + c * static_cast<size_t>(p.bits) / 8);
    }
    std::memcpy(out + b * 8, &h, 8);
  }
  return gcclSuccess;
}

template <class Fmt>
gcclResult_t latticeDecode(const Params& p, const uint8_t* in, size_t count, void* dstv,
                           const void* refv) {
  auto* dst = static_cast<typename Fmt::T*>(dstv);
  const auto* ref = static_cast<const typename Fmt::T*>(refv);
  const Layout l = bucketLayout(count, p.bucket, p.bits, 8);
  const int64_t modulus = int64_t{1} << p.bits;
  const int64_t half = modulus / 2;
  uint8_t q[kChunk];
  // n' of each element of one chunk, kept between the check and the write.
  std::vector<int64_t> nb(std::min(p.bucket, count));
  for (size_t b = 0; b < l.buckets; ++b) {
    const size_t base = b * p.bucket;
    const size_t m = std::min(p.bucket, count - base);
    const uint8_t* codes = in + l.codesAt(b, p.bucket, p.bits);
    uint64_t h = bucketHashStart(b);
    for (size_t c = 0; c < m; c += kChunk) {
      const size_t n = std::min(kChunk, m - c);
      unpack(codes + c * static_cast<size_t>(p.bits) / 8, n, p.bits, q);
      for (size_t j = 0; j < n; ++j) {
        const size_t i = base + c + j;
        const double t = static_cast<double>(Fmt::widen(ref[i])) / p.delta;
        if (!(std::fabs(t) < kLatticeLimit)) {
          return setError(gcclInvalidArgument,
                          "codec: reference element %zu is %s; lattice decoding needs "
                          "|r / delta| < 2^52 (delta %g)",
                          i, t != t ? "NaN" : "too large or infinite", p.delta);
        }
        const auto centre = static_cast<int64_t>(std::nearbyint(t));
        int64_t d = (static_cast<int64_t>(q[j]) - centre) & (modulus - 1);
        d = d >= half ? d - modulus : d;
        const int64_t n2 = centre + d;
        h = bucketHashStep(h, n2);
        nb[c + j] = n2;
      }
    }
    uint64_t sent;
    std::memcpy(&sent, in + b * 8, 8);
    if (sent != h) {
      return setError(gcclInvalidArgument,
                      "codec: lattice check of bucket %zu (elements %zu..%zu) failed: the "
                      "reference is too far from the encoded tensor (or the data is corrupt)",
                      b, base, base + m - 1);
    }
    for (size_t j = 0; j < m; ++j)
      dst[base + j] = Fmt::narrowD(static_cast<double>(nb[j]) * p.delta);
  }
  return gcclSuccess;
}

// ---- Top-k ------------------------------------------------------------------------

// Larger |acc| first, the lower index among equals.
struct ByMagnitude {
  const float* acc;
  bool operator()(uint32_t a, uint32_t b) const {
    const float x = std::fabs(acc[a]);
    const float y = std::fabs(acc[b]);
    return x > y || (x == y && a < b);
  }
};

// ---- Argument checks -------------------------------------------------------------------

gcclResult_t checkParams(const Params& p, size_t count, gcclDataType_t type) {
  switch (p.codec) {
    case Codec::kCast:
      GCCL_REQUIRE(type == gcclFloat32 || type == gcclFloat64, gcclInvalidArgument,
                   "codec: the cast codec takes float32 or float64 tensors, not %s",
                   typeName(type));
      GCCL_REQUIRE(p.castTo == gcclFloat16 || p.castTo == gcclBfloat16, gcclInvalidArgument,
                   "codec: the cast codec casts to float16 or bfloat16, not %s",
                   typeName(p.castTo));
      return gcclSuccess;
    case Codec::kQuantize:
    case Codec::kLattice:
      GCCL_REQUIRE(isFloating(type), gcclInvalidArgument,
                   "codec: %s takes a floating type (float16, bfloat16, float32, float64), not "
                   "%s",
                   p.codec == Codec::kQuantize ? "quantization" : "lattice quantization",
                   typeName(type));
      GCCL_REQUIRE(p.bits == 8 || p.bits == 4 || p.bits == 2, gcclInvalidArgument,
                   "codec: bits must be 8, 4 or 2, not %d", p.bits);
      GCCL_REQUIRE(p.bucket > 0, gcclInvalidArgument, "codec: the bucket size must be > 0");
      GCCL_REQUIRE(p.rounding == Rounding::kNearest || p.rounding == Rounding::kStochastic,
                   gcclInvalidArgument, "codec: unknown rounding mode %d",
                   static_cast<int>(p.rounding));
      if (p.codec == Codec::kLattice) {
        GCCL_REQUIRE(std::isfinite(p.delta) && p.delta > 0, gcclInvalidArgument,
                     "codec: the lattice step delta must be finite and > 0, not %g", p.delta);
      }
      return gcclSuccess;
    case Codec::kTopK:
      GCCL_REQUIRE(type == gcclFloat32, gcclInvalidArgument,
                   "codec: top-k takes float32 tensors, not %s", typeName(type));
      GCCL_REQUIRE(p.k <= count, gcclInvalidArgument, "codec: top-k k = %zu exceeds count = %zu",
                   p.k, count);
      GCCL_REQUIRE(p.k <= UINT32_MAX && count <= static_cast<size_t>(UINT32_MAX) + 1,
                   gcclInvalidArgument, "codec: top-k indices are uint32: count = %zu is too large",
                   count);
      GCCL_REQUIRE(p.select == TopKSelect::kExact || p.select == TopKSelect::kThreshold,
                   gcclInvalidArgument, "codec: unknown top-k selection %d",
                   static_cast<int>(p.select));
      GCCL_REQUIRE(p.select != TopKSelect::kThreshold || p.sample > 0, gcclInvalidArgument,
                   "codec: the top-k threshold sample size must be > 0");
      return gcclSuccess;
  }
  return setError(gcclInvalidArgument, "codec: unknown codec %d", static_cast<int>(p.codec));
}

size_t sizeFor(const Params& p, size_t count, gcclDataType_t type) {
  switch (p.codec) {
    case Codec::kCast:
      return 2 * count;
    case Codec::kQuantize:
      return bucketLayout(count, p.bucket, p.bits, type == gcclFloat64 ? 16 : 8).total;
    case Codec::kLattice:
      return bucketLayout(count, p.bucket, p.bits, 8).total;
    case Codec::kTopK:
      return count == 0 ? 0 : 8 + 8 * p.k;
  }
  return 0;
}

gcclResult_t encodeImpl(const Params& p, const void* src, size_t count, gcclDataType_t type,
                        void* out, size_t outBytes, size_t* written, float* residual, bool vector) {
  GCCL_CHECK(checkParams(p, count, type));
  if (written != nullptr) *written = 0;
  const size_t need = sizeFor(p, count, type);
  GCCL_REQUIRE(outBytes >= need, gcclInvalidArgument,
               "codec: the output buffer has %zu bytes, the encoding needs %zu", outBytes, need);
  if (count == 0) return gcclSuccess;
  GCCL_REQUIRE(out != nullptr, gcclInvalidArgument, "codec: null output buffer");
  if (p.codec == Codec::kTopK) {
    auto* o = static_cast<uint8_t*>(out);
    size_t kept = 0;
    GCCL_REQUIRE(src != nullptr, gcclInvalidArgument, "codec: null source tensor");
    GCCL_CHECK(topkSelect(p, static_cast<const float*>(src), residual, count,
                          reinterpret_cast<uint32_t*>(o + 8),
                          reinterpret_cast<float*>(o + 8 + 4 * p.k), &kept));
    // Values were written after room for k indices: close the gap.
    if (kept < p.k) std::memmove(o + 8 + 4 * kept, o + 8 + 4 * p.k, 4 * kept);
    const uint64_t k64 = kept;
    std::memcpy(o, &k64, 8);
    if (written != nullptr) *written = 8 + 8 * kept;
    return gcclSuccess;
  }
  GCCL_REQUIRE(src != nullptr, gcclInvalidArgument, "codec: null source tensor");
  GCCL_REQUIRE(residual == nullptr, gcclInvalidArgument, "codec: a residual is for top-k only");
  auto* o = static_cast<uint8_t*>(out);
  switch (p.codec) {
    case Codec::kCast: {
      const bool half = p.castTo == gcclFloat16;
      auto* d = static_cast<uint16_t*>(out);
      if (type == gcclFloat64) {
        castF64(static_cast<const double*>(src), d, count, half);
#ifdef GCCL_CODEC_F16C
      } else if (half && vector && cpuHasF16c()) {
        castF32HalfF16c(static_cast<const float*>(src), d, count);
#endif
      } else {
        castF32(static_cast<const float*>(src), d, count, half);
      }
      break;
    }
    case Codec::kQuantize:
#ifdef GCCL_CODEC_AVX2
      GCCL_CHECK(quantizeEncodeTyped(p, src, count, type, o, vector && cpuHasAvx2()));
#else
      GCCL_CHECK(quantizeEncodeTyped(p, src, count, type, o, false));
#endif
      break;
    case Codec::kLattice:
      switch (type) {
        case gcclFloat32:
          GCCL_CHECK(latticeEncode<F32>(p, src, count, o));
          break;
        case gcclFloat64:
          GCCL_CHECK(latticeEncode<F64>(p, src, count, o));
          break;
        case gcclFloat16:
          GCCL_CHECK(latticeEncode<F16>(p, src, count, o));
          break;
        default:
          GCCL_CHECK(latticeEncode<BF16>(p, src, count, o));
          break;
      }
      break;
    case Codec::kTopK:
      break;
  }
  if (written != nullptr) *written = need;
  (void)vector;
  return gcclSuccess;
}

gcclResult_t decodeImpl(const Params& p, const void* in, size_t inBytes, size_t count,
                        gcclDataType_t type, void* dst, const void* reference, bool vector) {
  GCCL_CHECK(checkParams(p, count, type));
  (void)vector;
  if (count == 0) return gcclSuccess;
  if (p.codec == Codec::kTopK) {
    GCCL_REQUIRE(inBytes >= 8 && in != nullptr, gcclInvalidArgument,
                 "codec: a top-k encoding has at least 8 bytes, got %zu", inBytes);
    const auto* b = static_cast<const uint8_t*>(in);
    uint64_t kept;
    std::memcpy(&kept, b, 8);
    GCCL_REQUIRE(kept <= p.k && inBytes >= 8 + 8 * kept, gcclInvalidArgument,
                 "codec: the top-k encoding holds %llu entries (k = %zu) in %zu bytes",
                 static_cast<unsigned long long>(kept), p.k, inBytes);
    GCCL_REQUIRE(dst != nullptr, gcclInvalidArgument, "codec: null destination tensor");
    auto* d = static_cast<float*>(dst);
    uint32_t prev = 0;
    for (uint64_t j = 0; j < kept; ++j) {
      uint32_t idx;
      std::memcpy(&idx, b + 8 + 4 * j, 4);
      GCCL_REQUIRE(idx < count && (j == 0 || idx > prev), gcclInvalidArgument,
                   "codec: top-k index %u (entry %llu) is out of range or out of order", idx,
                   static_cast<unsigned long long>(j));
      prev = idx;
    }
    std::fill(d, d + count, 0.0f);
    for (uint64_t j = 0; j < kept; ++j) {
      uint32_t idx;
      std::memcpy(&idx, b + 8 + 4 * j, 4);
      std::memcpy(d + idx, b + 8 + 4 * kept + 4 * j, 4);
    }
    return gcclSuccess;
  }
  const size_t need = sizeFor(p, count, type);
  GCCL_REQUIRE(inBytes >= need, gcclInvalidArgument,
               "codec: the encoding has %zu bytes, %zu elements need %zu", inBytes, count, need);
  if (count == 0) return gcclSuccess;
  GCCL_REQUIRE(in != nullptr, gcclInvalidArgument, "codec: null encoded buffer");
  GCCL_REQUIRE(dst != nullptr, gcclInvalidArgument, "codec: null destination tensor");
  const auto* b = static_cast<const uint8_t*>(in);
  switch (p.codec) {
    case Codec::kCast: {
      GCCL_REQUIRE(reference == nullptr, gcclInvalidArgument,
                   "codec: a reference tensor is for lattice decoding only");
      const bool half = p.castTo == gcclFloat16;
      const auto* s = static_cast<const uint16_t*>(in);
      if (type == gcclFloat64) {
        uncastF64(s, static_cast<double*>(dst), count, half);
#ifdef GCCL_CODEC_F16C
      } else if (half && vector && cpuHasF16c()) {
        uncastF32HalfF16c(s, static_cast<float*>(dst), count);
#endif
      } else {
        uncastF32(s, static_cast<float*>(dst), count, half);
      }
      return gcclSuccess;
    }
    case Codec::kQuantize:
      GCCL_REQUIRE(reference == nullptr, gcclInvalidArgument,
                   "codec: a reference tensor is for lattice decoding only");
      quantizeDecodeTyped(p, b, count, type, dst);
      return gcclSuccess;
    case Codec::kLattice:
      GCCL_REQUIRE(reference != nullptr, gcclInvalidArgument,
                   "codec: lattice decoding needs the receiver's reference tensor (null)");
      switch (type) {
        case gcclFloat32:
          return latticeDecode<F32>(p, b, count, dst, reference);
        case gcclFloat64:
          return latticeDecode<F64>(p, b, count, dst, reference);
        case gcclFloat16:
          return latticeDecode<F16>(p, b, count, dst, reference);
        default:
          return latticeDecode<BF16>(p, b, count, dst, reference);
      }
    case Codec::kTopK:
      break;
  }
  return gcclSuccess;
}

}  // namespace

// |v| as the bits of a non-negative float: ordered like the magnitudes.
inline uint32_t magnitudeBits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u & 0x7fffffffu;
}

// The bits of the k-th largest magnitude of a[0..n) (1 <= k <= n), by two
// 16-bit histogram passes; *ties gets how many elements equal to it belong
// to the k largest.
uint32_t kthLargestMagnitude(const float* a, size_t n, size_t k, size_t* ties) {
  std::vector<size_t> hist(size_t{1} << 16, 0);
  for (size_t i = 0; i < n; ++i)
    ++hist[magnitudeBits(a[i]) >> 16];
  size_t need = k;
  uint32_t hi = 0xffff;
  while (hist[hi] < need) {
    need -= hist[hi];
    --hi;
  }
  std::fill(hist.begin(), hist.end(), 0);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t m = magnitudeBits(a[i]);
    if ((m >> 16) == hi) ++hist[m & 0xffff];
  }
  uint32_t lo = 0xffff;
  while (hist[lo] < need) {
    need -= hist[lo];
    --lo;
  }
  *ties = need;
  return hi << 16 | lo;
}

gcclResult_t topkSelect(const Params& p, const float* x, float* residual, size_t count,
                        uint32_t* indices, float* values, size_t* kept) {
  GCCL_REQUIRE(p.codec == Codec::kTopK, gcclInvalidArgument,
               "codec: topkSelect needs Params::codec == kTopK");
  GCCL_CHECK(checkParams(p, count, gcclFloat32));
  GCCL_REQUIRE(kept != nullptr, gcclInvalidArgument, "codec: null kept-count pointer");
  *kept = 0;
  if (count == 0) return gcclSuccess;
  GCCL_REQUIRE(x != nullptr, gcclInvalidArgument, "codec: null source tensor");
  GCCL_REQUIRE(residual != nullptr, gcclInvalidArgument,
               "codec: top-k needs the caller's residual tensor (null)");
  GCCL_REQUIRE(p.k == 0 || (indices != nullptr && values != nullptr), gcclInvalidArgument,
               "codec: null index or value array");
  // Check first: nothing changes when acc holds NaN or Inf.
  for (size_t i = 0; i < count; ++i) {
    const float a = x[i] + residual[i];
    if (nonFinite(a)) {
      return setError(gcclInvalidArgument,
                      "codec: element %zu of x + residual is %s; top-k needs finite values", i,
                      a != a ? "NaN" : "infinite");
    }
  }
  for (size_t i = 0; i < count; ++i)
    residual[i] = x[i] + residual[i];
  const float* acc = residual;
  const ByMagnitude larger{acc};
  std::vector<uint32_t> chosen;
  if (p.k == 0) {
    // Nothing kept: the residual is acc.
  } else if (p.select == TopKSelect::kExact || p.k == count) {
    // The k-th largest magnitude T by a radix select on the magnitudes' bits
    // (their order as unsigned integers is their order as floats), then one
    // pass in index order: everything above T, and the first of those equal
    // to T until k are kept (ties go to the lower index).
    size_t ties = 0;
    const uint32_t t = kthLargestMagnitude(acc, count, p.k, &ties);
    chosen.reserve(p.k);
    for (size_t i = 0; i < count; ++i) {
      const uint32_t m = magnitudeBits(acc[i]);
      if (m > t || (m == t && ties > 0)) {
        if (m == t) --ties;
        chosen.push_back(static_cast<uint32_t>(i));
      }
    }
  } else {
    // Threshold from a sample: the magnitude expected to have about k (plus
    // 10%) elements at or above it; the overshoot is trimmed exactly below.
    const size_t s = std::min(p.sample, count);
    const uint64_t key = streamKey(p.seed ^ 0x243F6A8885A308D3ull);
    std::vector<float> mags(s);
    for (size_t j = 0; j < s; ++j) {
      const uint64_t i = s == count ? j : mix64(key + j * 0x9E3779B97F4A7C15ull) % count;
      mags[j] = std::fabs(acc[i]);
    }
    const double want = std::ceil(1.1 * static_cast<double>(p.k) * static_cast<double>(s) /
                                  static_cast<double>(count));
    const size_t rank = std::min(s, std::max<size_t>(1, static_cast<size_t>(want)));
    std::nth_element(mags.begin(), mags.begin() + static_cast<ptrdiff_t>(rank - 1), mags.end(),
                     [](float a, float b) { return a > b; });
    const float threshold = mags[rank - 1];
    for (size_t i = 0; i < count; ++i) {
      if (std::fabs(acc[i]) >= threshold) chosen.push_back(static_cast<uint32_t>(i));
    }
    if (chosen.size() > p.k) {
      std::nth_element(chosen.begin(), chosen.begin() + static_cast<ptrdiff_t>(p.k - 1),
                       chosen.end(), larger);
      chosen.resize(p.k);
    }
  }
  std::sort(chosen.begin(), chosen.end());
  for (size_t j = 0; j < chosen.size(); ++j) {
    indices[j] = chosen[j];
    values[j] = residual[chosen[j]];
    residual[chosen[j]] = 0.0f;
  }
  *kept = chosen.size();
  return gcclSuccess;
}

gcclResult_t encodedBytes(const Params& p, size_t count, gcclDataType_t type, size_t* bytes) {
  GCCL_REQUIRE(bytes != nullptr, gcclInvalidArgument, "codec: null size pointer");
  GCCL_CHECK(checkParams(p, count, type));
  *bytes = sizeFor(p, count, type);
  return gcclSuccess;
}

gcclResult_t encode(const Params& p, const void* src, size_t count, gcclDataType_t type, void* out,
                    size_t outBytes, size_t* written, float* residual) {
  return encodeImpl(p, src, count, type, out, outBytes, written, residual, true);
}

gcclResult_t decode(const Params& p, const void* in, size_t inBytes, size_t count,
                    gcclDataType_t type, void* dst, const void* reference) {
  return decodeImpl(p, in, inBytes, count, type, dst, reference, true);
}

namespace detail {

gcclResult_t encodePortable(const Params& p, const void* src, size_t count, gcclDataType_t type,
                            void* out, size_t outBytes, size_t* written, float* residual) {
  return encodeImpl(p, src, count, type, out, outBytes, written, residual, false);
}

gcclResult_t decodePortable(const Params& p, const void* in, size_t inBytes, size_t count,
                            gcclDataType_t type, void* dst, const void* reference) {
  return decodeImpl(p, in, inBytes, count, type, dst, reference, false);
}

float uniform(uint64_t seed, uint64_t index) {
  return uniformAt(streamKey(seed), index);
}

}  // namespace detail

}  // namespace gccl::kernels::codec
