#include "kernels/cpu/reduce.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/kernel_attrs.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#endif

// Every loop here is written so that GCC vectorises it at -O2, where its
// "very cheap" cost model only vectorises a loop whose trip count is a known
// multiple of the vector width and whose pointers cannot alias. Hence the
// fixed-size blocks plus a scalar tail, and separate __restrict loop bodies for
// each aliasing pattern (restrict on pointers that do alias would be UB).
//
// The per-type entry points are flattened: a loop only vectorises once its
// element op (half conversions included) is inlined, which GCC's size
// heuristics may otherwise refuse. On x86-64 each is also built for AVX2 and
// picked at load time (target_clones). Both builds give the same bits: the
// source is the same, and no op can be contracted into an FMA.

namespace gccl::kernels {
namespace {

constexpr size_t kBlock = 64;

// ---- Loops, one per aliasing pattern -------------------------------------

template <class T, class Op>
GCCL_KERNEL_INLINE void loopOutOfPlace(T* __restrict d, const T* __restrict a,
                                       const T* __restrict b, size_t n, Op op) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    prefetchAhead(a + i, kBlock * sizeof(T));
    prefetchAhead(b + i, kBlock * sizeof(T));
    for (size_t j = 0; j < kBlock; ++j)
      d[i + j] = op(a[i + j], b[i + j]);
  }
  for (; i < n; ++i)
    d[i] = op(a[i], b[i]);
}

// x[i] = op(x[i], y[i]): covers dst == a, and dst == b since op commutes.
template <class T, class Op>
GCCL_KERNEL_INLINE void loopInPlace(T* __restrict x, const T* __restrict y, size_t n, Op op) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    prefetchAhead(x + i, kBlock * sizeof(T));
    prefetchAhead(y + i, kBlock * sizeof(T));
    for (size_t j = 0; j < kBlock; ++j)
      x[i + j] = op(x[i + j], y[i + j]);
  }
  for (; i < n; ++i)
    x[i] = op(x[i], y[i]);
}

// dst == a == b. One pointer, so nothing to alias.
template <class T, class Op>
GCCL_KERNEL_INLINE void loopSelf(T* x, size_t n, Op op) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (size_t j = 0; j < kBlock; ++j)
      x[i + j] = op(x[i + j], x[i + j]);
  }
  for (; i < n; ++i)
    x[i] = op(x[i], x[i]);
}

template <class T, class Op>
GCCL_KERNEL_INLINE void loopUnary(T* __restrict d, const T* __restrict s, size_t n, Op op) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (size_t j = 0; j < kBlock; ++j)
      d[i + j] = op(s[i + j]);
  }
  for (; i < n; ++i)
    d[i] = op(s[i]);
}

template <class T, class Op>
GCCL_KERNEL_INLINE void loopUnarySelf(T* x, size_t n, Op op) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (size_t j = 0; j < kBlock; ++j)
      x[i + j] = op(x[i + j]);
  }
  for (; i < n; ++i)
    x[i] = op(x[i]);
}

template <class T, class Op>
GCCL_KERNEL_INLINE void binary(void* dst, const void* a, const void* b, size_t n, Op op) {
  T* d = static_cast<T*>(dst);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  if (d == x && d == y) {
    loopSelf(d, n, op);
  } else if (d == x) {
    loopInPlace(d, y, n, op);
  } else if (d == y) {
    loopInPlace(d, x, n, op);
  } else {
    // x == y is fine here: restrict only forbids aliasing with a written object.
    loopOutOfPlace(d, x, y, n, op);
  }
}

template <class T, class Op>
GCCL_KERNEL_INLINE void unary(void* dst, const void* src, size_t n, Op op) {
  T* d = static_cast<T*>(dst);
  const T* s = static_cast<const T*>(src);
  if (d == s) {
    loopUnarySelf(d, n, op);
  } else {
    loopUnary(d, s, n, op);
  }
}

// ---- Integer ops ------------------------------------------------------------

// Arithmetic in the unsigned type wraps instead of overflowing (UB for signed).
template <class T>
struct IntSum {
  using U = std::make_unsigned_t<T>;
  T operator()(T a, T b) const { return static_cast<T>(static_cast<U>(U(a) + U(b))); }
};
template <class T>
struct IntProd {
  using U = std::make_unsigned_t<T>;
  T operator()(T a, T b) const { return static_cast<T>(static_cast<U>(U(a) * U(b))); }
};
template <class T>
struct IntMax {
  T operator()(T a, T b) const { return a > b ? a : b; }
};
template <class T>
struct IntMin {
  T operator()(T a, T b) const { return a < b ? a : b; }
};

template <class T>
struct IntOps {
  using Type = T;
  using Sum = IntSum<T>;
  using Prod = IntProd<T>;
  using Max = IntMax<T>;
  using Min = IntMin<T>;
};

// ---- Floating-point formats --------------------------------------------------

// Bit-level description of a storage format, for the ops that work on bits.
struct F32Format {
  using Type = float;
  using Bits = uint32_t;
  static constexpr Bits kNaN = 0x7FC00000u;
  static Bits bits(float v) { return floatToBits(v); }
  static float value(Bits b) { return bitsToFloat(b); }
};
struct F64Format {
  using Type = double;
  using Bits = uint64_t;
  static constexpr Bits kNaN = 0x7FF8000000000000ull;
  static Bits bits(double v) { return doubleToBits(v); }
  static double value(Bits b) { return bitsToDouble(b); }
};

// x86 gives a NaN result the payload of its first NaN operand, which would make
// a + b and b + a differ in their bits; one canonical NaN keeps ops symmetric.
template <class F>
F canonical(F r) {
  using Fmt = std::conditional_t<std::is_same_v<F, float>, F32Format, F64Format>;
  return r != r ? Fmt::value(Fmt::kNaN) : r;
}

struct F16Format {
  using Type = uint16_t;
  using Bits = uint16_t;
  using SBits = int16_t;
  static constexpr Bits kAbs = 0x7FFFu;
  static constexpr Bits kInf = 0x7C00u;
  static constexpr Bits kNaN = 0x7E00u;
  static Bits bits(uint16_t v) { return v; }
  static uint16_t value(Bits b) { return b; }
  static float widen(uint16_t v) { return halfToFloat(v); }
  // Rounds a result back; any NaN becomes the canonical one.
  static uint16_t narrow(float r) { return floatToHalf(canonical(r)); }
};
struct BF16Format {
  using Type = uint16_t;
  using Bits = uint16_t;
  using SBits = int16_t;
  static constexpr Bits kAbs = 0x7FFFu;
  static constexpr Bits kInf = 0x7F80u;
  static constexpr Bits kNaN = 0x7FC0u;
  static Bits bits(uint16_t v) { return v; }
  static uint16_t value(Bits b) { return b; }
  // Unlike bfloat16ToFloat, leaves a signalling NaN signalling: arithmetic
  // turns it into some NaN anyway, and narrow() canonicalises that. Folding
  // NaN handling into one place matters here: it is a large part of the cost.
  static float widen(uint16_t v) { return bitsToFloat(static_cast<uint32_t>(v) << 16); }
  static uint16_t narrow(float r) {
    uint32_t x = floatToBits(r);
    x = (x & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC00000u : x;
    return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
  }
};

struct Plus {
  template <class F>
  F operator()(F a, F b) const {
    return a + b;
  }
};
struct Times {
  template <class F>
  F operator()(F a, F b) const {
    return a * b;
  }
};
template <class Op>
struct Canonical {
  template <class F>
  F operator()(F a, F b) const {
    return canonical(Op()(a, b));
  }
};

// float16/bfloat16 min/max work on the bits. They compare an integer key that
// orders every non-NaN value the way IEEE does and also puts -0 below +0: flipping the magnitude
// bits of negative numbers makes the sign-magnitude encoding two's complement. Equal keys mean
// equal bits, so the choice is symmetric; NaN on either side wins.
template <class Fmt>
typename Fmt::SBits orderKey(typename Fmt::Bits b) {
  using Bits = typename Fmt::Bits;
  const Bits negMask = static_cast<Bits>(Bits(0) - Bits(b >> (sizeof(Bits) * 8 - 1)));
  return static_cast<typename Fmt::SBits>(b ^ (negMask & Fmt::kAbs));
}

template <class Fmt>
bool isNaNBits(typename Fmt::Bits b) {
  return static_cast<typename Fmt::Bits>(b & Fmt::kAbs) > Fmt::kInf;
}

template <class Fmt, bool kMax>
struct FloatMinMax {
  using T = typename Fmt::Type;
  T operator()(T a, T b) const {
    const auto x = Fmt::bits(a);
    const auto y = Fmt::bits(b);
    const bool xFirst =
        kMax ? orderKey<Fmt>(x) > orderKey<Fmt>(y) : orderKey<Fmt>(x) < orderKey<Fmt>(y);
    const bool nan = isNaNBits<Fmt>(x) || isNaNBits<Fmt>(y);
    return Fmt::value(nan ? Fmt::kNaN : (xFirst ? x : y));
  }
};

// float16/bfloat16 arithmetic: widen, combine in float32, round back. Both
// products and sums are exact or correctly rounded in float32 with room to
// spare (24 >= 2*11+2 bits), so rounding twice gives the correctly rounded
// 16-bit result. min/max need no widening: they only pick an operand.
template <class Fmt, class FloatOp>
struct Widened {
  uint16_t operator()(uint16_t a, uint16_t b) const {
    return Fmt::narrow(FloatOp()(Fmt::widen(a), Fmt::widen(b)));
  }
};

// The same rules for float32/float64, in the floating-point domain where they
// cost a few instructions: `a > b ? a : b` is one MAXPS, which returns b on a
// tie; taking it both ways round and combining the bits (AND for max, OR for
// min) settles -0 against +0 and leaves equal values alone.
template <class Fmt, bool kMax>
struct NativeMinMax {
  using T = typename Fmt::Type;
  T operator()(T a, T b) const {
    const T ab = kMax ? (a > b ? a : b) : (a < b ? a : b);
    const T ba = kMax ? (b > a ? b : a) : (b < a ? b : a);
    const auto r = kMax ? (Fmt::bits(ab) & Fmt::bits(ba)) : (Fmt::bits(ab) | Fmt::bits(ba));
    return Fmt::value(std::isunordered(a, b) ? Fmt::kNaN : r);
  }
};

template <class Fmt>
struct FloatOps {
  using Type = typename Fmt::Type;
  using Sum = Canonical<Plus>;
  using Prod = Canonical<Times>;
  using Max = NativeMinMax<Fmt, true>;
  using Min = NativeMinMax<Fmt, false>;
};

template <class Fmt>
struct HalfOps {
  using Type = uint16_t;
  using Sum = Widened<Fmt, Plus>;
  using Prod = Widened<Fmt, Times>;
  using Max = FloatMinMax<Fmt, true>;
  using Min = FloatMinMax<Fmt, false>;
};

template <class Ops>
GCCL_KERNEL_INLINE void reduceWith(void* d, const void* a, const void* b, size_t n,
                                   gcclRedOp_t op) {
  using T = typename Ops::Type;
  switch (op) {
    case gcclSum:
    case gcclAvg:
      binary<T>(d, a, b, n, typename Ops::Sum());
      break;
    case gcclProd:
      binary<T>(d, a, b, n, typename Ops::Prod());
      break;
    case gcclMax:
      binary<T>(d, a, b, n, typename Ops::Max());
      break;
    case gcclMin:
      binary<T>(d, a, b, n, typename Ops::Min());
      break;
    default:
      break;
  }
}

// ---- Division ---------------------------------------------------------------

// Widening to 64 bits lets any positive int divisor apply to narrow types
// (a divisor above the type's range gives 0, as it should). C++ division
// truncates toward zero.
template <class T>
struct IntDiv {
  using Wide = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  Wide divisor;
  T operator()(T x) const { return static_cast<T>(static_cast<Wide>(x) / divisor); }
};

// A true division, not a multiply by 1/divisor, so results are correctly rounded.
template <class F>
struct FloatDiv {
  F divisor;
  F operator()(F x) const { return canonical(x / divisor); }
};

// Exact in float32 for divisors up to 2^24, so float16/bfloat16 results are
// correctly rounded, as with the other arithmetic.
template <class Fmt>
struct HalfDiv {
  float divisor;
  uint16_t operator()(uint16_t x) const { return Fmt::narrow(Fmt::widen(x) / divisor); }
};

// ---- Per-type entry points (one AVX2/default pair each on x86-64) ---------

GCCL_KERNEL void reduceInt8(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<IntOps<int8_t>>(d, a, b, n, op);
}
GCCL_KERNEL void reduceUint8(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<IntOps<uint8_t>>(d, a, b, n, op);
}
GCCL_KERNEL void reduceInt32(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<IntOps<int32_t>>(d, a, b, n, op);
}
GCCL_KERNEL void reduceUint32(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<IntOps<uint32_t>>(d, a, b, n, op);
}
GCCL_KERNEL void reduceInt64(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<IntOps<int64_t>>(d, a, b, n, op);
}
GCCL_KERNEL void reduceUint64(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<IntOps<uint64_t>>(d, a, b, n, op);
}
GCCL_KERNEL void reduceFloat16(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<HalfOps<F16Format>>(d, a, b, n, op);
}
GCCL_KERNEL void reduceBfloat16(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<HalfOps<BF16Format>>(d, a, b, n, op);
}
GCCL_KERNEL void reduceFloat32(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<FloatOps<F32Format>>(d, a, b, n, op);
}
GCCL_KERNEL void reduceFloat64(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op) {
  reduceWith<FloatOps<F64Format>>(d, a, b, n, op);
}

// x86 has no vector integer division, so the integer versions stay scalar;
// they only finish integer averages.
template <class T>
void divideInt(void* d, const void* s, size_t n, int divisor) {
  using Op = IntDiv<T>;
  unary<T>(d, s, n, Op{static_cast<typename Op::Wide>(divisor)});
}
GCCL_KERNEL void divideFloat16(void* d, const void* s, size_t n, int divisor) {
  unary<uint16_t>(d, s, n, HalfDiv<F16Format>{static_cast<float>(divisor)});
}
GCCL_KERNEL void divideBfloat16(void* d, const void* s, size_t n, int divisor) {
  unary<uint16_t>(d, s, n, HalfDiv<BF16Format>{static_cast<float>(divisor)});
}
GCCL_KERNEL void divideFloat32(void* d, const void* s, size_t n, int divisor) {
  unary<float>(d, s, n, FloatDiv<float>{static_cast<float>(divisor)});
}
GCCL_KERNEL void divideFloat64(void* d, const void* s, size_t n, int divisor) {
  unary<double>(d, s, n, FloatDiv<double>{static_cast<double>(divisor)});
}

// ---- float16 through F16C ----------------------------------------------------
//
// The portable float16 conversions cost some 30 instructions per element even
// vectorised; the F16C instructions (x86-64 CPUs with AVX, since 2012) do it
// in one. They give the same bits: both round to nearest even and quiet NaNs keeping
// their payload, and no float32 value on this path is subnormal (halves are
// normal floats, their sums and products are 0 or >= 2^-48, quotients by an
// int >= 2^-55), so FTZ/DAZ change nothing. The tests check portable and F16C
// results against each other. min/max stay on the portable path: they work on
// bits and are already as fast.

#if defined(__x86_64__) && defined(__GNUC__) && !defined(GCCL_NO_F16C)
#define GCCL_F16C_PATH 1

// Canonicalises NaN after narrowing, on 16-bit integers: GCC turns a float
// blend on an unordered compare into per-lane scalar code.
__attribute__((target("avx"))) inline __m128i canonicalNaN16(__m128i h) {
  const __m128i isNaN = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7FFF)),
                                        _mm_set1_epi16(static_cast<short>(F16Format::kInf)));
  return _mm_blendv_epi8(h, _mm_set1_epi16(static_cast<short>(F16Format::kNaN)), isNaN);
}

struct F16cSum {
  using Scalar = Plus;
  __attribute__((target("avx"))) static __m256 apply(__m256 u, __m256 v) {
    return _mm256_add_ps(u, v);
  }
};
struct F16cProd {
  using Scalar = Times;
  __attribute__((target("avx"))) static __m256 apply(__m256 u, __m256 v) {
    return _mm256_mul_ps(u, v);
  }
};

// Every lane is loaded before it is stored, so dst may alias a or b.
template <class FloatOp>
__attribute__((target("avx,f16c"))) void float16F16c(void* dst, const void* a, const void* b,
                                                     size_t n) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  const uint16_t* x = static_cast<const uint16_t*>(a);
  const uint16_t* y = static_cast<const uint16_t*>(b);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 u = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y + i)));
    const __m128i h = _mm256_cvtps_ph(FloatOp::apply(u, v), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), canonicalNaN16(h));
  }
  for (; i < n; ++i)
    d[i] = Widened<F16Format, typename FloatOp::Scalar>()(x[i], y[i]);
}

__attribute__((target("avx,f16c"))) void float16DivideF16c(void* dst, const void* src, size_t n,
                                                           int divisor) {
  uint16_t* d = static_cast<uint16_t*>(dst);
  const uint16_t* x = static_cast<const uint16_t*>(src);
  const __m256 div = _mm256_set1_ps(static_cast<float>(divisor));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 u = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    const __m128i h = _mm256_cvtps_ph(_mm256_div_ps(u, div), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), canonicalNaN16(h));
  }
  const HalfDiv<F16Format> op{static_cast<float>(divisor)};
  for (; i < n; ++i)
    d[i] = op(x[i]);
}
#endif

}  // namespace

namespace detail {

void reducePortable(void* dst, const void* a, const void* b, size_t count, gcclDataType_t type,
                    gcclRedOp_t op) {
  if (count == 0) return;
  switch (type) {
    case gcclInt8:
      return reduceInt8(dst, a, b, count, op);
    case gcclUint8:
      return reduceUint8(dst, a, b, count, op);
    case gcclInt32:
      return reduceInt32(dst, a, b, count, op);
    case gcclUint32:
      return reduceUint32(dst, a, b, count, op);
    case gcclInt64:
      return reduceInt64(dst, a, b, count, op);
    case gcclUint64:
      return reduceUint64(dst, a, b, count, op);
    case gcclFloat16:
      return reduceFloat16(dst, a, b, count, op);
    case gcclBfloat16:
      return reduceBfloat16(dst, a, b, count, op);
    case gcclFloat32:
      return reduceFloat32(dst, a, b, count, op);
    case gcclFloat64:
      return reduceFloat64(dst, a, b, count, op);
    default:
      return;
  }
}

void dividePortable(void* dst, const void* src, size_t count, gcclDataType_t type, int divisor) {
  if (count == 0 || divisor < 1) return;
  switch (type) {
    case gcclInt8:
      return divideInt<int8_t>(dst, src, count, divisor);
    case gcclUint8:
      return divideInt<uint8_t>(dst, src, count, divisor);
    case gcclInt32:
      return divideInt<int32_t>(dst, src, count, divisor);
    case gcclUint32:
      return divideInt<uint32_t>(dst, src, count, divisor);
    case gcclInt64:
      return divideInt<int64_t>(dst, src, count, divisor);
    case gcclUint64:
      return divideInt<uint64_t>(dst, src, count, divisor);
    case gcclFloat16:
      return divideFloat16(dst, src, count, divisor);
    case gcclBfloat16:
      return divideBfloat16(dst, src, count, divisor);
    case gcclFloat32:
      return divideFloat32(dst, src, count, divisor);
    case gcclFloat64:
      return divideFloat64(dst, src, count, divisor);
    default:
      return;
  }
}

}  // namespace detail

size_t typeSize(gcclDataType_t type) {
  switch (type) {
    case gcclInt8:
    case gcclUint8:
      return 1;
    case gcclFloat16:
    case gcclBfloat16:
      return 2;
    case gcclInt32:
    case gcclUint32:
    case gcclFloat32:
      return 4;
    case gcclInt64:
    case gcclUint64:
    case gcclFloat64:
      return 8;
    default:
      return 0;
  }
}

void reduce(void* dst, const void* a, const void* b, size_t count, gcclDataType_t type,
            gcclRedOp_t op) {
#ifdef GCCL_F16C_PATH
  if (type == gcclFloat16 && cpuHasF16c()) {
    if (op == gcclSum || op == gcclAvg) return float16F16c<F16cSum>(dst, a, b, count);
    if (op == gcclProd) return float16F16c<F16cProd>(dst, a, b, count);
  }
#endif
  detail::reducePortable(dst, a, b, count, type, op);
}

void divide(void* dst, const void* src, size_t count, gcclDataType_t type, int divisor) {
#ifdef GCCL_F16C_PATH
  if (type == gcclFloat16 && divisor >= 1 && cpuHasF16c()) {
    return float16DivideF16c(dst, src, count, divisor);
  }
#endif
  detail::dividePortable(dst, src, count, type, divisor);
}

}  // namespace gccl::kernels
