// Mixing kernels (kernels/cpu/mix.h) against two references that share no code
// with them: long double arithmetic with error bounds, and a scalar model of
// the evaluation order mix.h defines, which must match bit for bit. 16-bit
// floats are decoded and rounded here with frexp/ldexp/nearbyint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/mix.h"

namespace gccl::kernels {
namespace {

// ---- Formats and element access ---------------------------------------------------

struct Format {
  int precision;  // significand bits, implicit bit included
  int minExp;     // exponent of the smallest normal
  int maxExp;     // exponent of the largest finite
  int expBits;
};
constexpr Format kHalf{11, -14, 15, 5};
constexpr Format kBf16{8, -126, 127, 8};
constexpr Format kF32{24, -126, 127, 8};
constexpr Format kF64{53, -1022, 1023, 11};

// What the tests need to know of each floating type.
struct TypeInfo {
  gcclDataType_t type;
  const char* name;
  Format format;
  size_t size;
  uint64_t canonicalNaN;   // what every NaN result must be
  uint64_t negativeNaN;    // quiet, sign set, with a payload
  uint64_t signallingNaN;  // quiet bit clear
};
const TypeInfo kTypes[] = {
    {gcclFloat16, "Float16", kHalf, 2, 0x7E00, 0xFE55, 0x7C01},
    {gcclBfloat16, "Bfloat16", kBf16, 2, 0x7FC0, 0xFFC5, 0x7F81},
    {gcclFloat32, "Float32", kF32, 4, 0x7FC00000u, 0xFFC12345u, 0x7F800001u},
    {gcclFloat64, "Float64", kF64, 8, 0x7FF8000000000000ull, 0xFFF8000000012345ull,
     0x7FF0000000000001ull},
};

const TypeInfo& typeInfo(gcclDataType_t t) {
  for (const TypeInfo& i : kTypes) {
    if (i.type == t) return i;
  }
  return kTypes[3];
}
const Format& formatOf(gcclDataType_t t) {
  return typeInfo(t).format;
}
size_t sizeOf(gcclDataType_t t) {
  return typeInfo(t).size;
}
uint64_t canonicalNaN(gcclDataType_t t) {
  return typeInfo(t).canonicalNaN;
}
bool isHalf(gcclDataType_t t) {
  return sizeOf(t) == 2;
}

// The value nearest to x in `f` (ties to even), overflowing to infinity.
double roundTo(double x, const Format& f) {
  if (!std::isfinite(x) || x == 0) return x;
  int e;
  std::frexp(x, &e);
  const int quantum = std::max(e - 1, f.minExp) - (f.precision - 1);
  const double r = std::ldexp(std::nearbyint(std::ldexp(x, -quantum)), quantum);
  const double maxFinite = std::ldexp(2.0 - std::ldexp(1.0, 1 - f.precision), f.maxExp);
  return std::fabs(r) > maxFinite ? std::copysign(INFINITY, x) : r;
}

double decode16(uint16_t bits, const Format& f) {
  const int mantBits = f.precision - 1;
  const int expField = (bits >> mantBits) & ((1 << f.expBits) - 1);
  const int mant = bits & ((1 << mantBits) - 1);
  double v;
  if (expField == (1 << f.expBits) - 1) {
    v = mant != 0 ? NAN : INFINITY;
  } else if (expField == 0) {
    v = std::ldexp(mant, f.minExp - mantBits);
  } else {
    v = std::ldexp(mant + (1 << mantBits), expField - f.maxExp - mantBits);
  }
  return (bits & 0x8000) ? -v : v;
}

// Bits of a value that `f` holds exactly (or ±Inf); NaN gives the canonical NaN.
uint16_t encode16(double v, const Format& f) {
  const int mantBits = f.precision - 1;
  const int expMax = (1 << f.expBits) - 1;
  if (std::isnan(v)) return static_cast<uint16_t>((expMax << mantBits) | (1 << (mantBits - 1)));
  const int sign = std::signbit(v) ? 0x8000 : 0;
  const double a = std::fabs(v);
  if (std::isinf(a)) return static_cast<uint16_t>(sign | (expMax << mantBits));
  if (a == 0) return static_cast<uint16_t>(sign);
  int e;
  std::frexp(a, &e);
  if (e - 1 < f.minExp)
    return static_cast<uint16_t>(sign | static_cast<int>(std::ldexp(a, mantBits - f.minExp)));
  const int mant = static_cast<int>(std::ldexp(a, mantBits - (e - 1))) - (1 << mantBits);
  return static_cast<uint16_t>(sign | ((e - 1 + f.maxExp) << mantBits) | mant);
}

// A buffer of `type` elements, read and written as exact doubles or as bits.
class Tensor {
 public:
  Tensor(gcclDataType_t type, size_t n) : type_(type), bytes_(n * sizeOf(type)) {}
  void* data() { return bytes_.data(); }
  const void* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size() / sizeOf(type_); }
  bool operator==(const Tensor& o) const { return bytes_ == o.bytes_; }

  uint64_t bits(size_t i) const {
    uint64_t b = 0;
    std::memcpy(&b, &bytes_[i * sizeOf(type_)], sizeOf(type_));  // little-endian
    return b;
  }
  void setBits(size_t i, uint64_t b) { std::memcpy(&bytes_[i * sizeOf(type_)], &b, sizeOf(type_)); }

  double get(size_t i) const {
    float f;
    double d;
    if (isHalf(type_)) return decode16(static_cast<uint16_t>(bits(i)), formatOf(type_));
    if (type_ == gcclFloat32) return std::memcpy(&f, &bytes_[i * 4], 4), f;
    return std::memcpy(&d, &bytes_[i * 8], 8), d;
  }
  // v must be representable in the type.
  void set(size_t i, double v) {
    const float f = static_cast<float>(v);
    if (isHalf(type_)) return setBits(i, encode16(v, formatOf(type_)));
    std::memcpy(&bytes_[i * sizeOf(type_)],
                type_ == gcclFloat32 ? static_cast<const void*>(&f) : &v, sizeOf(type_));
  }

 private:
  gcclDataType_t type_;
  std::vector<uint8_t> bytes_;
};

// ±[1/16, 16) with a random significand: ordinary numbers of every type.
double moderate(const Format& f, std::mt19937_64& rng) {
  const uint64_t mant = rng() & ((uint64_t{1} << (f.precision - 1)) - 1);
  const int e = static_cast<int>(rng() % 8) - 4;
  const double v = std::ldexp(1.0 + std::ldexp(static_cast<double>(mant), 1 - f.precision), e);
  return (rng() & 1) ? -v : v;
}

// wild: half the elements are arbitrary bit patterns (NaNs of any sign and
// payload, infinities, subnormals, huge values), for bit-for-bit comparisons.
Tensor randomTensor(gcclDataType_t t, size_t n, uint64_t seed, bool wild) {
  std::mt19937_64 rng(seed);
  Tensor v(t, n);
  const uint64_t mask = sizeOf(t) == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * sizeOf(t))) - 1;
  for (size_t i = 0; i < n; ++i) {
    if (wild && (rng() & 1)) {
      v.setBits(i, rng() & mask);
    } else {
      v.set(i, moderate(formatOf(t), rng));
    }
  }
  return v;
}
Tensor moderateTensor(gcclDataType_t t, size_t n, uint64_t seed) {
  return randomTensor(t, n, seed, false);
}
Tensor wildTensor(gcclDataType_t t, size_t n, uint64_t seed) {
  return randomTensor(t, n, seed, true);
}

struct Messages {
  std::vector<Tensor> ys;
  std::vector<const void*> ptrs;
  std::vector<double> b;
};

Messages messages(gcclDataType_t t, size_t n, int ny, uint64_t seed, bool wild = false) {
  Messages m;
  for (int j = 0; j < ny; ++j) {
    const uint64_t s = seed * 1000 + static_cast<uint64_t>(j);
    m.ys.push_back(randomTensor(t, n, s, wild));
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> coefficient(-1.0, 1.0);
  for (const Tensor& y : m.ys) {
    m.ptrs.push_back(y.data());
    m.b.push_back(coefficient(rng));
  }
  return m;
}

// ---- Reference with error bounds ----------------------------------------------------

// Allowed |result - exact| for a value whose terms have magnitudes summing to
// `mag` (a bound that holds through cancellation):
//  - float64: (ny+2) roundings of 2^-53 each, at most 1.2e-15 for ny = 9.
//  - float32: the same in float32 plus one for each coefficient, (ny+3)*2^-24
//    = 7.2e-7 for ny = 9, so 1e-6 (the brief's float32 tolerance).
//  - float16/bfloat16: that float32 error plus the final rounding, half an ulp
//    of the result; the result is at most a hair above mag, so one ulp of the
//    type at mag covers it (this is tighter than 1e-2 relative and is the
//    guarantee the format actually gives).
double tolerance(gcclDataType_t t, double mag) {
  if (t == gcclFloat64) return 1e-14 * mag;
  if (t == gcclFloat32) return 1e-6 * mag;
  const Format& f = formatOf(t);
  int e = f.minExp + 1;
  if (mag > 0) std::frexp(mag, &e);
  return std::ldexp(1.0, std::max(e - 1, f.minExp) - (f.precision - 1)) + 1e-6 * mag;
}

// a*x + sum b[j]*y[j] in long double, and the sum of its terms' magnitudes.
struct Reference {
  std::vector<long double> exact, mag;
};
Reference mixReference(double a, const Tensor& x, const Messages& m) {
  Reference r{std::vector<long double>(x.size()), std::vector<long double>(x.size())};
  for (size_t i = 0; i < x.size(); ++i) {
    r.exact[i] = static_cast<long double>(a) * x.get(i);
    r.mag[i] = std::fabs(r.exact[i]);
    for (size_t j = 0; j < m.ys.size(); ++j) {
      const long double term = static_cast<long double>(m.b[j]) * m.ys[j].get(i);
      r.exact[i] += term;
      r.mag[i] += std::fabs(term);
    }
  }
  return r;
}

::testing::AssertionResult nearReference(const Tensor& got, const Reference& ref,
                                         gcclDataType_t t) {
  for (size_t i = 0; i < ref.exact.size(); ++i) {
    const double err = static_cast<double>(std::fabs(got.get(i) - ref.exact[i]));
    const double tol = tolerance(t, static_cast<double>(ref.mag[i]));
    if (!(err <= tol)) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << got.get(i) << ", exact "
             << static_cast<double>(ref.exact[i]) << ", error " << err << " > " << tol;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult sameBits(const Tensor& got, const Tensor& want) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (got.bits(i) != want.bits(i)) {
      return ::testing::AssertionFailure() << "element " << i << ": bits " << std::hex
                                           << got.bits(i) << ", expected " << want.bits(i);
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- Model of the defined evaluation order ------------------------------------------

// Out of line so that the compiler cannot fuse a multiply and an add of this
// file into an FMA, whatever the build flags.
template <class F>
__attribute__((noinline)) F mul(F a, F b) {
  return a * b;
}
template <class F>
__attribute__((noinline)) F add(F a, F b) {
  return a + b;
}

// Bits of ((a*x + b0*y0) + b1*y1) + ... in the type's accumulation precision,
// with float32 coefficients for the float32-accumulating types.
uint64_t modelMix(gcclDataType_t t, double a, const Tensor& x, const Messages& m, size_t i) {
  double r;
  if (t == gcclFloat64) {
    double v = mul(a, x.get(i));
    for (size_t j = 0; j < m.ys.size(); ++j)
      v = add(v, mul(m.b[j], m.ys[j].get(i)));
    r = v;
  } else {
    float v = mul(static_cast<float>(a), static_cast<float>(x.get(i)));
    for (size_t j = 0; j < m.ys.size(); ++j)
      v = add(v, mul(static_cast<float>(m.b[j]), static_cast<float>(m.ys[j].get(i))));
    r = v;
  }
  if (std::isnan(r)) return canonicalNaN(t);
  Tensor out(t, 1);
  out.set(0, isHalf(t) ? roundTo(r, formatOf(t)) : r);
  return out.bits(0);
}

// ---- Per-type tests -------------------------------------------------------------------

const size_t kSizes[] = {0, 1, 7, 1000, 65537};

class MixKernel : public ::testing::TestWithParam<gcclDataType_t> {
 protected:
  gcclDataType_t type() const { return GetParam(); }
};

TEST_P(MixKernel, MixMatchesReference) {
  for (size_t n : kSizes) {
    for (int ny : {0, 1, 3, 9}) {
      Tensor x = moderateTensor(type(), n, n + 1);
      const Messages m = messages(type(), n, ny, n + 2);
      const Reference ref = mixReference(0.3, x, m);
      ASSERT_TRUE(mix(x.data(), 0.3, m.ptrs.data(), m.b.data(), ny, n, type()));
      EXPECT_TRUE(nearReference(x, ref, type())) << "n " << n << ", ny " << ny;
    }
  }
}

TEST_P(MixKernel, ScaleMatchesReference) {
  for (size_t n : kSizes) {
    Tensor x = moderateTensor(type(), n, n + 3);
    const Reference ref = mixReference(-0.7, x, Messages());
    ASSERT_TRUE(scale(x.data(), -0.7, n, type()));
    EXPECT_TRUE(nearReference(x, ref, type())) << "n " << n;
  }
}

TEST_P(MixKernel, AxpyMatchesReference) {
  for (size_t n : kSizes) {
    Tensor x = moderateTensor(type(), n, n + 4);
    const Messages m = messages(type(), n, 1, n + 5);
    const Reference ref = mixReference(1.0, x, m);
    ASSERT_TRUE(axpy(x.data(), m.b[0], m.ptrs[0], n, type()));
    EXPECT_TRUE(nearReference(x, ref, type())) << "n " << n;
  }
}

TEST_P(MixKernel, DebiasMatchesReference) {
  for (size_t n : kSizes) {
    for (double w : {0.37, 3.1, -1.9}) {
      const Tensor x = moderateTensor(type(), n, n + 6);
      Tensor z(type(), n);
      Reference ref{std::vector<long double>(n), std::vector<long double>(n)};
      for (size_t i = 0; i < n; ++i) {
        ref.exact[i] = x.get(i) / static_cast<long double>(w);
        ref.mag[i] = std::fabs(ref.exact[i]);
      }
      ASSERT_TRUE(debias(z.data(), x.data(), w, n, type()));
      EXPECT_TRUE(nearReference(z, ref, type())) << "n " << n << ", w " << w;
    }
  }
}

TEST_P(MixKernel, DebiasInPlaceGivesTheSameBits) {
  const size_t n = 1003;
  Tensor x = wildTensor(type(), n, 8);
  Tensor z(type(), n);
  ASSERT_TRUE(debias(z.data(), x.data(), 0.61, n, type()));
  ASSERT_TRUE(debias(x.data(), x.data(), 0.61, n, type()));
  EXPECT_TRUE(sameBits(x, z));
}

// Pins the order of terms, the single rounding of halves, and float32
// coefficients for the float32 types; the inputs include NaNs, infinities and
// subnormals. ny = 8, 9, 17 and 20 cover full, split and multi-group passes.
TEST_P(MixKernel, FollowsTheDefinedOrderBitForBit) {
  for (size_t n : {size_t{1}, size_t{7}, size_t{1003}, size_t{65537}}) {
    for (int ny : {0, 1, 3, 8, 9, 17, 20}) {
      Tensor x = wildTensor(type(), n, n + 9);
      const Messages m = messages(type(), n, ny, n + 10, /*wild=*/true);
      const double a = 0.55;
      Tensor want(type(), n);
      for (size_t i = 0; i < n; ++i)
        want.setBits(i, modelMix(type(), a, x, m, i));
      ASSERT_TRUE(mix(x.data(), a, m.ptrs.data(), m.b.data(), ny, n, type()));
      EXPECT_TRUE(sameBits(x, want)) << "n " << n << ", ny " << ny;
    }
  }
}

// The public entry points take the AVX2 build and F16C where the CPU has them;
// the portable ones take neither.
TEST_P(MixKernel, PortablePathGivesTheSameBits) {
  for (size_t n : {size_t{7}, size_t{1003}, size_t{65537}}) {
    for (int ny : {0, 1, 3, 8, 9, 17}) {
      Tensor x = wildTensor(type(), n, n + 11);
      Tensor xp = x;
      const Messages m = messages(type(), n, ny, n + 12, /*wild=*/true);
      ASSERT_TRUE(mix(x.data(), -1.3, m.ptrs.data(), m.b.data(), ny, n, type()));
      ASSERT_TRUE(detail::mixPortable(xp.data(), -1.3, m.ptrs.data(), m.b.data(), ny, n, type()));
      EXPECT_TRUE(sameBits(x, xp)) << "n " << n << ", ny " << ny;
    }
  }
}

TEST_P(MixKernel, DebiasPortablePathGivesTheSameBits) {
  for (size_t n : {size_t{7}, size_t{1003}, size_t{65537}}) {
    const Tensor x = wildTensor(type(), n, n + 13);
    Tensor z(type(), n), zp(type(), n);
    ASSERT_TRUE(debias(z.data(), x.data(), 0.0123, n, type()));
    ASSERT_TRUE(detail::debiasPortable(zp.data(), x.data(), 0.0123, n, type()));
    EXPECT_TRUE(sameBits(z, zp)) << "n " << n;
  }
}

// Halves of sums of small integers are exact in every type (|values| <= 32 in
// steps of 1/2 need 7 significand bits; bfloat16 has 8).
TEST_P(MixKernel, ExactOnSmallIntegers) {
  const size_t n = 1000;
  std::mt19937 rng(14);
  Tensor x(type(), n), z(type(), n);
  Messages m = messages(type(), n, 3, 14);
  m.b.assign(3, 0.5);
  for (size_t i = 0; i < n; ++i) {
    for (Tensor* t : {&x, &m.ys[0], &m.ys[1], &m.ys[2]})
      t->set(i, static_cast<int>(rng() % 33) - 16);
  }
  Tensor x1 = x, x2 = x, x3 = x;
  ASSERT_TRUE(mix(x1.data(), 0.5, m.ptrs.data(), m.b.data(), 3, n, type()));
  ASSERT_TRUE(axpy(x2.data(), 0.5, m.ptrs[0], n, type()));
  ASSERT_TRUE(scale(x3.data(), 0.5, n, type()));
  ASSERT_TRUE(debias(z.data(), x.data(), 0.5, n, type()));
  for (size_t i = 0; i < n; ++i) {
    const double xi = x.get(i), y0 = m.ys[0].get(i);
    ASSERT_EQ(x1.get(i), 0.5 * (xi + y0 + m.ys[1].get(i) + m.ys[2].get(i))) << i;
    ASSERT_EQ(x2.get(i), xi + 0.5 * y0) << i;
    ASSERT_EQ(x3.get(i), 0.5 * xi) << i;
    ASSERT_EQ(z.get(i), 2 * xi) << i;
  }
}

// Negative NaNs with payloads and signalling NaNs come out canonical; a zero
// coefficient does not skip its term.
TEST_P(MixKernel, NaNPropagatesThroughMixAsTheCanonicalNaN) {
  const uint64_t negPayload = typeInfo(type()).negativeNaN;
  Tensor x(type(), 4), y(type(), 4);
  x.setBits(0, negPayload), y.set(0, 1);                      // NaN in x
  x.set(1, 1), y.setBits(1, typeInfo(type()).signallingNaN);  // NaN in y
  x.set(2, INFINITY), y.set(2, INFINITY);                     // Inf - Inf
  x.set(3, 2), y.set(3, 4);                                   // stays a number
  ASSERT_TRUE(axpy(x.data(), -1.0, y.data(), 4, type()));
  EXPECT_EQ(x.bits(0), canonicalNaN(type()));
  EXPECT_EQ(x.bits(1), canonicalNaN(type()));
  EXPECT_EQ(x.bits(2), canonicalNaN(type()));
  EXPECT_EQ(x.get(3), -2.0);

  Tensor z(type(), 2);
  z.set(0, INFINITY);
  z.setBits(1, negPayload);
  ASSERT_TRUE(scale(z.data(), 0.0, 2, type()));  // 0 * Inf, 0 * NaN
  EXPECT_EQ(z.bits(0), canonicalNaN(type()));
  EXPECT_EQ(z.bits(1), canonicalNaN(type()));
}

TEST_P(MixKernel, NaNPropagatesThroughDebiasAsTheCanonicalNaN) {
  Tensor x(type(), 9);  // 9: through the 8-wide F16C loop and its tail
  for (size_t i = 0; i < 9; ++i)
    x.set(i, 1);
  x.setBits(2, typeInfo(type()).negativeNaN);
  x.setBits(8, typeInfo(type()).signallingNaN);
  ASSERT_TRUE(debias(x.data(), x.data(), 2.0, 9, type()));
  EXPECT_EQ(x.bits(2), canonicalNaN(type()));
  EXPECT_EQ(x.bits(8), canonicalNaN(type()));
  EXPECT_EQ(x.get(0), 0.5);
}

TEST_P(MixKernel, WritesNothingPastCount) {
  for (size_t n : {size_t{1}, size_t{7}, size_t{65}, size_t{300}}) {
    const size_t guard = 24;
    Tensor x = moderateTensor(type(), n + guard, 15);
    Tensor z = moderateTensor(type(), n + guard, 16);
    const Tensor before = x, zBefore = z;
    const Messages m = messages(type(), n + guard, 9, 17);
    ASSERT_TRUE(mix(x.data(), 0.5, m.ptrs.data(), m.b.data(), 9, n, type()));
    ASSERT_TRUE(axpy(x.data(), 0.5, m.ptrs[0], n, type()));
    ASSERT_TRUE(debias(z.data(), x.data(), 3.0, n, type()));
    for (size_t i = n; i < n + guard; ++i) {
      ASSERT_EQ(x.bits(i), before.bits(i)) << "n " << n << ", element " << i;
      ASSERT_EQ(z.bits(i), zBefore.bits(i)) << "n " << n << ", element " << i;
    }
  }
}

TEST_P(MixKernel, ZeroCountTouchesNoMemory) {
  EXPECT_TRUE(scale(nullptr, 2.0, 0, type()));
  EXPECT_TRUE(axpy(nullptr, 2.0, nullptr, 0, type()));
  EXPECT_TRUE(mix(nullptr, 2.0, nullptr, nullptr, 0, 0, type()));
  EXPECT_TRUE(debias(nullptr, nullptr, 2.0, 0, type()));
}

TEST_P(MixKernel, RejectsAYThatIsXOrANegativeCount) {
  Tensor x = moderateTensor(type(), 10, 18);
  const Tensor before = x;
  const Tensor y = moderateTensor(type(), 10, 19);
  const std::vector<const void*> ptrs = {y.data(), x.data()};
  const std::vector<double> b = {0.5, 0.5};
  EXPECT_FALSE(axpy(x.data(), 0.5, x.data(), 10, type()));
  EXPECT_FALSE(mix(x.data(), 0.5, ptrs.data(), b.data(), 2, 10, type()));
  EXPECT_FALSE(mix(x.data(), 0.5, ptrs.data(), b.data(), -1, 10, type()));
  EXPECT_TRUE(x == before);
}

TEST_P(MixKernel, DebiasRejectsZeroOrNonFiniteWeight) {
  const Tensor x = moderateTensor(type(), 10, 20);
  Tensor z = moderateTensor(type(), 10, 21);
  const Tensor before = z;
  const double inf = std::numeric_limits<double>::infinity();
  for (double w : {0.0, -0.0, inf, -inf, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_FALSE(debias(z.data(), x.data(), w, 10, type())) << w;
    EXPECT_FALSE(detail::debiasPortable(z.data(), x.data(), w, 10, type())) << w;
  }
  EXPECT_TRUE(z == before);
}

INSTANTIATE_TEST_SUITE_P(FloatingTypes, MixKernel,
                         ::testing::Values(gcclFloat16, gcclBfloat16, gcclFloat32, gcclFloat64),
                         [](const ::testing::TestParamInfo<gcclDataType_t>& p) {
                           return std::string(typeInfo(p.param).name);
                         });

// ---- Behaviour specific to some types ------------------------------------------------

// With the accumulator in the storage type, scale then one axpy per message
// performs the same roundings as mix, so the bits agree (ny = 9 includes the
// grouped path).
void expectMixEqualsScaleThenAxpys(gcclDataType_t t) {
  const size_t n = 1003;
  const Tensor x0 = moderateTensor(t, n, 22);
  const Messages m = messages(t, n, 9, 23);
  Tensor viaMix = x0, viaAxpy = x0;
  ASSERT_TRUE(mix(viaMix.data(), 0.8, m.ptrs.data(), m.b.data(), 9, n, t));
  ASSERT_TRUE(scale(viaAxpy.data(), 0.8, n, t));
  for (int j = 0; j < 9; ++j)
    ASSERT_TRUE(axpy(viaAxpy.data(), m.b[j], m.ptrs[j], n, t));
  EXPECT_TRUE(sameBits(viaMix, viaAxpy));
}

TEST(Mix, EqualsScaleThenAxpysInFloat64) {
  expectMixEqualsScaleThenAxpys(gcclFloat64);
}

TEST(Mix, EqualsScaleThenAxpysInFloat32) {
  expectMixEqualsScaleThenAxpys(gcclFloat32);
}

// Nine terms of 1/16 ulp each: rounded once they add up to more than half an
// ulp and move x; rounded after each term, every one would be lost.
TEST(Mix, HalfTypesRoundOnceAtTheEnd) {
  for (gcclDataType_t t : {gcclFloat16, gcclBfloat16}) {
    const Format& f = formatOf(t);
    const double ulp = std::ldexp(1.0, 1 - f.precision);
    for (size_t n : {size_t{1}, size_t{9}, size_t{100}}) {
      Tensor x(t, n);
      Messages m = messages(t, n, 9, 25);
      m.b.assign(9, 1.0);
      for (size_t i = 0; i < n; ++i) {
        x.set(i, 1.0);
        for (Tensor& y : m.ys)
          y.set(i, ulp / 16);
      }
      ASSERT_TRUE(mix(x.data(), 1.0, m.ptrs.data(), m.b.data(), 9, n, t));
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(x.get(i), 1.0 + ulp) << "type " << t << ", n " << n << ", element " << i;
    }
  }
}

// Those types divide by w rounded to float32, which must not become 0 or Inf.
TEST(Debias, RejectsWeightsOutsideFloat32RangeUnlessFloat64) {
  for (gcclDataType_t t : {gcclFloat16, gcclBfloat16, gcclFloat32, gcclFloat64}) {
    const Tensor x = moderateTensor(t, 4, 24);
    Tensor z(t, 4);
    const bool wide = t == gcclFloat64;
    EXPECT_EQ(debias(z.data(), x.data(), 1e-50, 4, t), wide) << t;
    EXPECT_EQ(debias(z.data(), x.data(), 1e300, 4, t), wide) << t;
  }
}

TEST(Mix, NonFloatingTypesAreRejectedAndTouchNothing) {
  for (gcclDataType_t t :
       {gcclInt8, gcclUint8, gcclInt32, gcclUint32, gcclInt64, gcclUint64, gcclNumTypes}) {
    std::vector<uint8_t> x(64, 0xAB), y(64, 0x11), z(64, 0xCD);
    const std::vector<uint8_t> xBefore = x, zBefore = z;
    const void* ptrs[] = {y.data()};
    const double b[] = {0.5};
    EXPECT_FALSE(scale(x.data(), 0.5, 8, t)) << t;
    EXPECT_FALSE(axpy(x.data(), 0.5, y.data(), 8, t)) << t;
    EXPECT_FALSE(mix(x.data(), 0.5, ptrs, b, 1, 8, t)) << t;
    EXPECT_FALSE(debias(z.data(), x.data(), 2.0, 8, t)) << t;
    EXPECT_FALSE(detail::mixPortable(x.data(), 0.5, ptrs, b, 1, 8, t)) << t;
    EXPECT_FALSE(detail::debiasPortable(z.data(), x.data(), 2.0, 8, t)) << t;
    EXPECT_FALSE(scale(x.data(), 0.5, 0, t)) << t;  // even with nothing to do
    EXPECT_EQ(x, xBefore);
    EXPECT_EQ(z, zBefore);
  }
}

}  // namespace
}  // namespace gccl::kernels
