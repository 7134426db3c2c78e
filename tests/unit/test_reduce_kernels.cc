// Element-wise reduction kernels (kernels/cpu/reduce.h) and the 16-bit float
// conversions (kernels/cpu/half.h), checked against reference arithmetic that
// shares no code with them: floats are computed in double and rounded with
// frexp/ldexp/nearbyint; integers are computed in __int128 and wrapped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/half.h"
#include "kernels/cpu/reduce.h"

namespace gccl::kernels {
namespace {

// ---- Reference floating point ------------------------------------------------

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

// x rounded to nearest even in `f`, with overflow to infinity.
double roundTo(double x, const Format& f) {
  if (!std::isfinite(x) || x == 0) return x;
  int e;
  std::frexp(x, &e);
  const int quantum = std::max(e - 1, f.minExp) - (f.precision - 1);
  const double r = std::ldexp(std::nearbyint(std::ldexp(x, -quantum)), quantum);
  return std::fabs(r) >= std::ldexp(1.0, f.maxExp + 1) ? std::copysign(INFINITY, x) : r;
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

// Bits of a value that `f` represents exactly (or ±Inf); NaN gives the canonical NaN.
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
  const int lead = e - 1;
  if (lead < f.minExp) {
    return static_cast<uint16_t>(sign | static_cast<int>(std::ldexp(a, mantBits - f.minExp)));
  }
  const int mant = static_cast<int>(std::ldexp(a, mantBits - lead)) - (1 << mantBits);
  return static_cast<uint16_t>(sign | ((lead + f.maxExp) << mantBits) | mant);
}

template <class To, class From>
To bitCast(From from) {
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}
uint32_t bitsOf(float f) {
  return bitCast<uint32_t>(f);
}
float floatOf(uint32_t u) {
  return bitCast<float>(u);
}

// ---- Types under test ----------------------------------------------------------

const gcclDataType_t kTypes[] = {gcclInt8,   gcclUint8,   gcclInt32,    gcclUint32,  gcclInt64,
                                 gcclUint64, gcclFloat16, gcclBfloat16, gcclFloat32, gcclFloat64};
const gcclRedOp_t kOps[] = {gcclSum, gcclProd, gcclMax, gcclMin, gcclAvg};
const size_t kSizes[] = {0, 1, 7, 1000, 65537};

const char* const kTypeNames[] = {"int8",   "uint8",   "int32",   "uint32",  "int64",
                                  "uint64", "float16", "float32", "float64", "bfloat16"};
const char* const kOpNames[] = {"sum", "prod", "max", "min", "avg"};
std::string typeName(gcclDataType_t t) {
  return kTypeNames[t];
}
bool isFloat(gcclDataType_t t) {
  return t == gcclFloat16 || t == gcclBfloat16 || t == gcclFloat32 || t == gcclFloat64;
}
bool isSigned(gcclDataType_t t) {
  return t == gcclInt8 || t == gcclInt32 || t == gcclInt64;
}
const Format& formatOf(gcclDataType_t t) {
  return t == gcclFloat16 ? kHalf : t == gcclBfloat16 ? kBf16 : t == gcclFloat32 ? kF32 : kF64;
}

// Element i of a buffer as raw bits (little-endian, zero-extended).
uint64_t loadBits(const std::vector<uint8_t>& buf, gcclDataType_t t, size_t i) {
  uint64_t v = 0;
  std::memcpy(&v, buf.data() + i * typeSize(t), typeSize(t));
  return v;
}
void storeBits(std::vector<uint8_t>& buf, gcclDataType_t t, size_t i, uint64_t v) {
  std::memcpy(buf.data() + i * typeSize(t), &v, typeSize(t));
}

// An integer element as its mathematical value.
__int128 intValue(gcclDataType_t t, uint64_t bits) {
  const int width = static_cast<int>(typeSize(t) * 8);
  const bool negative = isSigned(t) && (bits >> (width - 1)) & 1;
  return static_cast<__int128>(bits) - (negative ? static_cast<__int128>(1) << width : 0);
}
uint64_t wrapInt(gcclDataType_t t, __int128 v) {
  const __int128 modulus = static_cast<__int128>(1) << (typeSize(t) * 8);
  __int128 w = v % modulus;
  if (w < 0) w += modulus;
  return static_cast<uint64_t>(w);
}

// A float element as an exact double (NaN for every NaN).
double floatValue(gcclDataType_t t, uint64_t bits) {
  if (typeSize(t) == 2) return decode16(static_cast<uint16_t>(bits), formatOf(t));
  if (t == gcclFloat32) return floatOf(static_cast<uint32_t>(bits));
  return bitCast<double>(bits);
}
// An exact result rounded into type t, as the kernels define it: float32 first,
// then the 16-bit format. NaN becomes the canonical quiet NaN.
uint64_t floatBits(gcclDataType_t t, double v) {
  if (t == gcclFloat64) return std::isnan(v) ? 0x7FF8000000000000ull : bitCast<uint64_t>(v);
  if (std::isnan(v)) return t == gcclFloat32 ? 0x7FC00000u : t == gcclFloat16 ? 0x7E00u : 0x7FC0u;
  const double v32 = roundTo(v, kF32);
  if (t == gcclFloat32) return bitsOf(static_cast<float>(v32));
  return encode16(roundTo(v32, formatOf(t)), formatOf(t));
}

uint64_t referenceOp(gcclDataType_t t, gcclRedOp_t op, uint64_t a, uint64_t b) {
  if (t == gcclUint64 && op == gcclProd) {  // the product may exceed __int128
    return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b);
  }
  if (!isFloat(t)) {
    const __int128 x = intValue(t, a), y = intValue(t, b);
    return wrapInt(t, op == gcclProd  ? x * y
                      : op == gcclMax ? std::max(x, y)
                      : op == gcclMin ? std::min(x, y)
                                      : x + y);
  }
  const double x = floatValue(t, a), y = floatValue(t, b);
  if (std::isnan(x) || std::isnan(y)) return floatBits(t, NAN);
  // On a tie, max picks +0 over -0 and min the reverse.
  return floatBits(t, op == gcclProd  ? x * y
                      : op == gcclMax ? (x == y ? (std::signbit(x) ? y : x) : std::max(x, y))
                      : op == gcclMin ? (x == y ? (std::signbit(x) ? x : y) : std::min(x, y))
                                      : x + y);
}

uint64_t referenceDivide(gcclDataType_t t, uint64_t a, int divisor) {
  if (!isFloat(t)) return wrapInt(t, intValue(t, a) / divisor);  // truncates toward zero
  return floatBits(t, floatValue(t, a) / divisor);
}

// ---- Test data -----------------------------------------------------------------

std::vector<uint64_t> specialValues(gcclDataType_t t) {
  switch (t) {
    case gcclFloat16:  // 0, -0, 1, -1, 1+ulp, tiny subnormals, largest subnormal,
                       // smallest normal, ±max, ±Inf, quiet/signalling/payload NaNs
      return {0x0000, 0x8000, 0x3C00, 0xBC00, 0x3C01, 0x0001, 0x8001, 0x03FF, 0x0400,
              0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7D23};
    case gcclBfloat16:
      return {0x0000, 0x8000, 0x3F80, 0xBF80, 0x3F81, 0x0001, 0x8001, 0x007F, 0x0080,
              0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x7FA3};
    case gcclFloat32:
      return {0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x3F800001, 0x00000001,
              0x80000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000,
              0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FC12345};
    case gcclFloat64:
      return {0x0000000000000000, 0x8000000000000000, 0x3FF0000000000000, 0xBFF0000000000000,
              0x3FF0000000000001, 0x0000000000000001, 0x8000000000000001, 0x000FFFFFFFFFFFFF,
              0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x7FF0000000000000,
              0xFFF0000000000000, 0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001,
              0x7FF8123456789ABC};
    default: {  // 0, 1, -1 (all ones), 2, signed min/max, their neighbours
      const int width = static_cast<int>(typeSize(t) * 8);
      const uint64_t ones = width == 64 ? ~0ull : (1ull << width) - 1;
      const uint64_t signBit = 1ull << (width - 1);
      return {0, 1, ones, 2, signBit, signBit - 1, signBit + 1, ones - 1, 3, 0x55};
    }
  }
}

// Operand `which` (0 or 1) of n elements: first every pair of special values
// (a walks the list slowly, b quickly), then random elements. Floats mix
// uniformly random bits (every class of value) with numbers of similar
// magnitude, whose sums and products round non-trivially.
std::vector<uint8_t> makeOperand(gcclDataType_t t, size_t n, int which, uint64_t seed) {
  std::vector<uint8_t> buf(n * typeSize(t));
  const std::vector<uint64_t> specials = specialValues(t);
  const size_t s = specials.size();
  std::mt19937_64 rng(seed * 2 + which);
  const uint64_t mask = typeSize(t) == 8 ? ~0ull : (1ull << (typeSize(t) * 8)) - 1;
  for (size_t i = 0; i < n; ++i) {
    uint64_t v = rng() & mask;
    if (i < s * s) {
      v = specials[which == 0 ? i / s : i % s];
    } else if (isFloat(t) && (v & 1)) {
      const int mantBits = formatOf(t).precision - 1, expBits = formatOf(t).expBits;
      const uint64_t bias = (1ull << (expBits - 1)) - 1;
      const uint64_t exponent = bias - 4 + rng() % 9;
      v = (rng() & (1ull << (mantBits + expBits))) | (exponent << mantBits) |
          (rng() & ((1ull << mantBits) - 1));
    }
    storeBits(buf, t, i, v);
  }
  return buf;
}

std::vector<uint8_t> referenceReduce(gcclDataType_t t, gcclRedOp_t op,
                                     const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  std::vector<uint8_t> out(a.size());
  for (size_t i = 0; i < a.size() / typeSize(t); ++i) {
    storeBits(out, t, i, referenceOp(t, op, loadBits(a, t, i), loadBits(b, t, i)));
  }
  return out;
}

// Names the first differing element, in hex, instead of dumping whole buffers.
::testing::AssertionResult sameBits(gcclDataType_t t, const std::vector<uint8_t>& expected,
                                    const std::vector<uint8_t>& actual) {
  if (expected.size() != actual.size()) return ::testing::AssertionFailure() << "size differs";
  for (size_t i = 0; i < expected.size() / typeSize(t); ++i) {
    if (loadBits(expected, t, i) != loadBits(actual, t, i)) {
      return ::testing::AssertionFailure()
             << "element " << i << ": expected 0x" << std::hex << loadBits(expected, t, i)
             << ", got 0x" << loadBits(actual, t, i);
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- Conversions ---------------------------------------------------------------

struct KnownValue {
  float value;
  uint16_t bits;
};

TEST(HalfConversion, Float16KnownValues) {
  // 1, -2, largest finite, smallest subnormal, smallest normal, largest subnormal, ±0, ±Inf
  const KnownValue known[] = {{1.0f, 0x3C00},     {-2.0f, 0xC000},    {65504.0f, 0x7BFF},
                              {0x1p-24f, 0x0001}, {0x1p-14f, 0x0400}, {1023 * 0x1p-24f, 0x03FF},
                              {0.0f, 0x0000},     {-0.0f, 0x8000},    {INFINITY, 0x7C00},
                              {-INFINITY, 0xFC00}};
  for (const KnownValue& k : known) {
    EXPECT_EQ(floatToHalf(k.value), k.bits) << k.value;
    EXPECT_EQ(bitsOf(halfToFloat(k.bits)), bitsOf(k.value)) << k.value;
  }
}

TEST(HalfConversion, Float16RoundsTiesToEven) {
  EXPECT_EQ(floatToHalf(1.0f + 0x1p-11f), 0x3C00);      // tie, down to even
  EXPECT_EQ(floatToHalf(1.0f + 3 * 0x1p-11f), 0x3C02);  // tie, up to even
  EXPECT_EQ(floatToHalf(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
  EXPECT_EQ(floatToHalf(0x1p-25f), 0x0000);      // half the smallest subnormal
  EXPECT_EQ(floatToHalf(3 * 0x1p-25f), 0x0002);  // 1.5 subnormal units
  EXPECT_EQ(floatToHalf(0x1.000002p-25f), 0x0001);
  EXPECT_EQ(floatToHalf(0x1p-14f - 0x1p-25f), 0x0400);  // largest subnormal rounds up to normal
}

TEST(HalfConversion, Float16OverflowsToInfinity) {
  EXPECT_EQ(floatToHalf(65519.0f), 0x7BFF);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7C00);  // tie between 65504 and 65536: even is Inf
  EXPECT_EQ(floatToHalf(-1e10f), 0xFC00);
  EXPECT_EQ(floatToHalf(std::numeric_limits<float>::max()), 0x7C00);
}

TEST(HalfConversion, Float16NaNStaysQuietNaN) {
  EXPECT_EQ(floatToHalf(floatOf(0x7FC00000)), 0x7E00);
  EXPECT_EQ(floatToHalf(floatOf(0xFFC00000)), 0xFE00);
  EXPECT_EQ(floatToHalf(floatOf(0x7F800001)), 0x7E00);  // payload only in dropped bits
  EXPECT_EQ(floatToHalf(floatOf(0x7FA46000)), 0x7F23);  // signalling: quiet, payload kept
  EXPECT_EQ(bitsOf(halfToFloat(0x7E00)), 0x7FC00000u);
  EXPECT_EQ(bitsOf(halfToFloat(0x7C01)), 0x7FC02000u);  // signalling becomes quiet
}

TEST(HalfConversion, Float16ToFloatIsExactForEveryBitPattern) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const double expected = decode16(static_cast<uint16_t>(h), kHalf);
    const float actual = halfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(actual)) << std::hex << h;
      // Round trip keeps sign and payload, only setting the quiet bit.
      ASSERT_EQ(floatToHalf(actual), h | 0x0200) << std::hex << h;
    } else {
      ASSERT_EQ(bitsOf(actual), bitsOf(static_cast<float>(expected))) << std::hex << h;
      ASSERT_EQ(floatToHalf(actual), h) << std::hex << h;
    }
  }
}

// Every rounding decision sits next to a midpoint between two neighbouring
// 16-bit values: the floats to test are each midpoint and its neighbours, of
// both signs, plus a sweep through all float bit patterns.
std::vector<uint32_t> conversionInputs(const std::vector<uint32_t>& midpoints) {
  std::vector<uint32_t> inputs;
  for (uint32_t mid : midpoints) {
    for (uint32_t x : {mid - 1, mid, mid + 1})
      inputs.insert(inputs.end(), {x, x | 0x80000000u});
  }
  for (uint64_t x = 0; x <= 0xFFFFFFFFu; x += 4099)
    inputs.push_back(static_cast<uint32_t>(x));
  return inputs;
}

TEST(HalfConversion, Float16FromFloatMatchesReference) {
  std::vector<uint32_t> midpoints;
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    // Above 65504 the next step would be 65536, were there one.
    const double next = h == 0x7BFF ? 65536.0 : decode16(static_cast<uint16_t>(h + 1), kHalf);
    midpoints.push_back(
        bitsOf(static_cast<float>((decode16(static_cast<uint16_t>(h), kHalf) + next) / 2)));
  }
  for (uint32_t x : conversionInputs(midpoints)) {
    const float f = floatOf(x);
    if (std::isnan(f)) continue;  // covered by Float16NaNStaysQuietNaN
    ASSERT_EQ(floatToHalf(f), encode16(roundTo(f, kHalf), kHalf)) << std::hex << x;
  }
}

TEST(HalfConversion, Bfloat16KnownValues) {
  // 1, -2, largest finite, smallest subnormal, smallest normal, ±0, ±Inf
  const KnownValue known[] = {{1.0f, 0x3F80},      {-2.0f, 0xC000},     {0x1.FEp127f, 0x7F7F},
                              {0x1p-133f, 0x0001}, {0x1p-126f, 0x0080}, {0.0f, 0x0000},
                              {-0.0f, 0x8000},     {INFINITY, 0x7F80},  {-INFINITY, 0xFF80}};
  for (const KnownValue& k : known) {
    EXPECT_EQ(floatToBfloat16(k.value), k.bits) << k.value;
    EXPECT_EQ(bitsOf(bfloat16ToFloat(k.bits)), bitsOf(k.value)) << k.value;
  }
}

TEST(HalfConversion, Bfloat16RoundsTiesToEvenAndOverflowsToInfinity) {
  EXPECT_EQ(floatToBfloat16(floatOf(0x3F808000)), 0x3F80);  // tie, down to even
  EXPECT_EQ(floatToBfloat16(floatOf(0x3F818000)), 0x3F82);  // tie, up to even
  EXPECT_EQ(floatToBfloat16(floatOf(0x3F808001)), 0x3F81);
  EXPECT_EQ(floatToBfloat16(floatOf(0x00008000)), 0x0000);  // half the smallest subnormal
  EXPECT_EQ(floatToBfloat16(floatOf(0x7F7F8000)), 0x7F80);  // tie above the largest: Inf
  EXPECT_EQ(floatToBfloat16(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(floatToBfloat16(-std::numeric_limits<float>::max()), 0xFF80);
}

TEST(HalfConversion, Bfloat16NaNStaysQuietNaN) {
  EXPECT_EQ(floatToBfloat16(floatOf(0x7FC00000)), 0x7FC0);
  EXPECT_EQ(floatToBfloat16(floatOf(0xFFFFFFFF)), 0xFFFF);  // must not carry into Inf/zero
  EXPECT_EQ(floatToBfloat16(floatOf(0x7F800001)), 0x7FC0);  // payload only in dropped bits
  EXPECT_EQ(floatToBfloat16(floatOf(0x7F810000)), 0x7FC1);  // signalling: quiet, payload kept
  EXPECT_EQ(bitsOf(bfloat16ToFloat(0x7F81)), 0x7FC10000u);
}

TEST(HalfConversion, Bfloat16FromFloatMatchesReference) {
  std::vector<uint32_t> midpoints;
  for (uint32_t h = 0; h < 0x7F80; ++h)
    midpoints.push_back((h << 16) | 0x8000);
  for (uint32_t x : conversionInputs(midpoints)) {
    const float f = floatOf(x);
    if (std::isnan(f)) continue;
    ASSERT_EQ(floatToBfloat16(f), encode16(roundTo(f, kBf16), kBf16)) << std::hex << x;
  }
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    if ((h & 0x7FFF) > 0x7F80) continue;
    ASSERT_EQ(floatToBfloat16(bfloat16ToFloat(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

// ---- reduce(): every type x op ---------------------------------------------------

class ReduceKernel : public ::testing::TestWithParam<std::tuple<gcclDataType_t, gcclRedOp_t>> {
 protected:
  gcclDataType_t type() const { return std::get<0>(GetParam()); }
  gcclRedOp_t op() const { return std::get<1>(GetParam()); }
  std::vector<uint8_t> operand(size_t n, int which) const {
    return makeOperand(type(), n, which, type() * 16 + op());
  }
  std::vector<uint8_t> reduced(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                               decltype(&reduce) fn = &reduce) const {
    std::vector<uint8_t> out(a.size());
    fn(out.data(), a.data(), b.data(), a.size() / typeSize(type()), type(), op());
    return out;
  }
  void expectReferenceAtEverySize(decltype(&reduce) fn) const {
    for (size_t n : kSizes) {
      SCOPED_TRACE("count " + std::to_string(n));
      const auto a = operand(n, 0), b = operand(n, 1);
      EXPECT_TRUE(sameBits(type(), referenceReduce(type(), op(), a, b), reduced(a, b, fn)));
    }
  }
};

TEST_P(ReduceKernel, MatchesReferenceAtEverySize) {
  expectReferenceAtEverySize(&reduce);
}

// reduce() may use CPU-specific instructions (F16C); the portable loops must
// give the same bits, for ranks on CPUs without them.
TEST_P(ReduceKernel, PortableLoopsMatchReference) {
  expectReferenceAtEverySize(&detail::reducePortable);
}

TEST_P(ReduceKernel, WritesNothingPastCount) {
  const size_t n = 1000, size = typeSize(type());
  const auto a = operand(n, 0), b = operand(n, 1);
  std::vector<uint8_t> out(n * size + 64, 0xA5);
  reduce(out.data(), a.data(), b.data(), n, type(), op());
  EXPECT_TRUE(std::all_of(out.begin() + n * size, out.end(), [](uint8_t v) { return v == 0xA5; }));
}

TEST_P(ReduceKernel, IsCommutativeBitForBit) {
  const auto a = operand(65537, 0), b = operand(65537, 1);
  EXPECT_TRUE(sameBits(type(), reduced(a, b), reduced(b, a)));
}

TEST_P(ReduceKernel, InPlaceIntoFirstOperand) {
  const auto a = operand(65537, 0), b = operand(65537, 1);
  auto inout = a;
  reduce(inout.data(), inout.data(), b.data(), 65537, type(), op());
  EXPECT_TRUE(sameBits(type(), reduced(a, b), inout));
}

TEST_P(ReduceKernel, InPlaceIntoSecondOperand) {
  const auto a = operand(65537, 0), b = operand(65537, 1);
  auto inout = b;
  reduce(inout.data(), a.data(), inout.data(), 65537, type(), op());
  EXPECT_TRUE(sameBits(type(), reduced(a, b), inout));
}

TEST_P(ReduceKernel, InPlaceWithBothOperandsTheSameBuffer) {
  const auto a = operand(65537, 0);
  auto inout = a;
  reduce(inout.data(), inout.data(), inout.data(), 65537, type(), op());
  EXPECT_TRUE(sameBits(type(), referenceReduce(type(), op(), a, a), inout));
}

INSTANTIATE_TEST_SUITE_P(AllTypesAndOps, ReduceKernel,
                         ::testing::Combine(::testing::ValuesIn(kTypes), ::testing::ValuesIn(kOps)),
                         [](const ::testing::TestParamInfo<ReduceKernel::ParamType>& info) {
                           return typeName(std::get<0>(info.param)) + "_" +
                                  kOpNames[std::get<1>(info.param)];
                         });

// ---- reduce(): specific behaviours -------------------------------------------------

template <class T>
T reduceOne(T a, T b, gcclDataType_t type, gcclRedOp_t op) {
  T out;
  reduce(&out, &a, &b, 1, type, op);
  return out;
}

TEST(Reduce, TypeSizes) {
  const size_t expected[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};  // in enum order
  for (gcclDataType_t t : kTypes)
    EXPECT_EQ(typeSize(t), expected[t]) << typeName(t);
  EXPECT_EQ(typeSize(gcclNumTypes), 0u);
  EXPECT_EQ(typeSize(static_cast<gcclDataType_t>(15)), 0u);
}

TEST(Reduce, IntegerSumWrapsAround) {
  EXPECT_EQ(reduceOne<int8_t>(127, 1, gcclInt8, gcclSum), -128);
  EXPECT_EQ(reduceOne<uint8_t>(255, 1, gcclUint8, gcclSum), 0);
  EXPECT_EQ(reduceOne<int32_t>(INT32_MAX, 1, gcclInt32, gcclSum), INT32_MIN);
  EXPECT_EQ(reduceOne<int32_t>(INT32_MIN, -1, gcclInt32, gcclSum), INT32_MAX);
  EXPECT_EQ(reduceOne<uint32_t>(UINT32_MAX, 2, gcclUint32, gcclSum), 1u);
  EXPECT_EQ(reduceOne<int64_t>(INT64_MAX, 1, gcclInt64, gcclSum), INT64_MIN);
  EXPECT_EQ(reduceOne<uint64_t>(UINT64_MAX, 1, gcclUint64, gcclSum), 0u);
}

TEST(Reduce, IntegerProdWrapsAround) {
  EXPECT_EQ(reduceOne<int8_t>(16, 16, gcclInt8, gcclProd), 0);
  EXPECT_EQ(reduceOne<int8_t>(-128, -1, gcclInt8, gcclProd), -128);
  EXPECT_EQ(reduceOne<uint8_t>(16, 17, gcclUint8, gcclProd), 16);
  EXPECT_EQ(reduceOne<int32_t>(INT32_MIN, -1, gcclInt32, gcclProd), INT32_MIN);
  EXPECT_EQ(reduceOne<uint32_t>(65536, 65536, gcclUint32, gcclProd), 0u);
  EXPECT_EQ(reduceOne<int64_t>(INT64_MIN, -1, gcclInt64, gcclProd), INT64_MIN);
  EXPECT_EQ(reduceOne<uint64_t>(1ull << 32, (1ull << 32) + 1, gcclUint64, gcclProd), 1ull << 32);
}

TEST(Reduce, IntegerMinMaxRespectSignedness) {
  EXPECT_EQ(reduceOne<int8_t>(-1, 1, gcclInt8, gcclMax), 1);
  EXPECT_EQ(reduceOne<uint8_t>(0xFF, 1, gcclUint8, gcclMax), 0xFF);
  EXPECT_EQ(reduceOne<int32_t>(-1, 1, gcclInt32, gcclMin), -1);
  EXPECT_EQ(reduceOne<uint32_t>(UINT32_MAX, 1, gcclUint32, gcclMin), 1u);
  EXPECT_EQ(reduceOne<int64_t>(INT64_MIN, INT64_MAX, gcclInt64, gcclMin), INT64_MIN);
  EXPECT_EQ(reduceOne<uint64_t>(UINT64_MAX, 0, gcclUint64, gcclMax), UINT64_MAX);
}

TEST(Reduce, FloatMinMaxPropagateNaNFromEitherSide) {
  const float nan = floatOf(0xFFC01234);
  for (gcclRedOp_t op : {gcclMin, gcclMax}) {
    EXPECT_EQ(bitsOf(reduceOne(nan, 1.0f, gcclFloat32, op)), 0x7FC00000u);
    EXPECT_EQ(bitsOf(reduceOne(1.0f, nan, gcclFloat32, op)), 0x7FC00000u);
    const double dnan = std::numeric_limits<double>::signaling_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    EXPECT_TRUE(std::isnan(reduceOne(dnan, -inf, gcclFloat64, op)));
    EXPECT_TRUE(std::isnan(reduceOne(-inf, dnan, gcclFloat64, op)));
    EXPECT_EQ(reduceOne<uint16_t>(0x7C01, 0x3C00, gcclFloat16, op), 0x7E00);
    EXPECT_EQ(reduceOne<uint16_t>(0x3C00, 0xFE00, gcclFloat16, op), 0x7E00);
    EXPECT_EQ(reduceOne<uint16_t>(0x7F81, 0xFF80, gcclBfloat16, op), 0x7FC0);
    EXPECT_EQ(reduceOne<uint16_t>(0xFF80, 0x7F81, gcclBfloat16, op), 0x7FC0);
  }
}

TEST(Reduce, FloatMinMaxOrderNegativeZeroBelowPositiveZero) {
  EXPECT_EQ(bitsOf(reduceOne(0.0f, -0.0f, gcclFloat32, gcclMin)), 0x80000000u);
  EXPECT_EQ(bitsOf(reduceOne(-0.0f, 0.0f, gcclFloat32, gcclMax)), 0x00000000u);
  EXPECT_TRUE(std::signbit(reduceOne(0.0, -0.0, gcclFloat64, gcclMin)));
  EXPECT_FALSE(std::signbit(reduceOne(-0.0, 0.0, gcclFloat64, gcclMax)));
  EXPECT_EQ(reduceOne<uint16_t>(0x0000, 0x8000, gcclFloat16, gcclMin), 0x8000);
  EXPECT_EQ(reduceOne<uint16_t>(0x8000, 0x0000, gcclBfloat16, gcclMax), 0x0000);
}

TEST(Reduce, NaNResultsAreTheCanonicalQuietNaN) {
  // x86 would return the first operand's payload, or a negative NaN for Inf-Inf.
  EXPECT_EQ(bitsOf(reduceOne(floatOf(0xFF812345), 1.0f, gcclFloat32, gcclSum)), 0x7FC00000u);
  EXPECT_EQ(bitsOf(reduceOne(INFINITY, -INFINITY, gcclFloat32, gcclSum)), 0x7FC00000u);
  EXPECT_EQ(bitsOf(reduceOne(INFINITY, 0.0f, gcclFloat32, gcclProd)), 0x7FC00000u);
  const double inf = INFINITY;
  EXPECT_EQ(bitCast<uint64_t>(reduceOne(inf, -inf, gcclFloat64, gcclSum)), 0x7FF8000000000000ull);
  EXPECT_EQ(reduceOne<uint16_t>(0x7C00, 0xFC00, gcclFloat16, gcclSum), 0x7E00);
  EXPECT_EQ(reduceOne<uint16_t>(0xFD23, 0x3C00, gcclFloat16, gcclProd), 0x7E00);
  EXPECT_EQ(reduceOne<uint16_t>(0xFFA3, 0x3F80, gcclBfloat16, gcclSum), 0x7FC0);
}

TEST(Reduce, HalfTypesRoundTheFloat32ResultToNearestEven) {
  EXPECT_EQ(reduceOne<uint16_t>(0x6800, 0x3C00, gcclFloat16, gcclSum), 0x6800);   // 2048+1: tie
  EXPECT_EQ(reduceOne<uint16_t>(0x6800, 0x4200, gcclFloat16, gcclSum), 0x6802);   // 2048+3: tie
  EXPECT_EQ(reduceOne<uint16_t>(0x7BFF, 0x7BFF, gcclFloat16, gcclSum), 0x7C00);   // overflow
  EXPECT_EQ(reduceOne<uint16_t>(0x0001, 0x3800, gcclFloat16, gcclProd), 0x0000);  // 2^-25: tie
  EXPECT_EQ(reduceOne<uint16_t>(0x3F80, 0x3B80, gcclBfloat16, gcclSum), 0x3F80);  // 1+2^-8: tie
  EXPECT_EQ(reduceOne<uint16_t>(0x7F7F, 0x7F7F, gcclBfloat16, gcclSum), 0x7F80);  // overflow
}

TEST(Reduce, AvgReducesAsSum) {
  EXPECT_EQ(reduceOne<int32_t>(5, 8, gcclInt32, gcclAvg), 13);
  EXPECT_EQ(reduceOne(0.5f, 0.25f, gcclFloat32, gcclAvg), 0.75f);
  EXPECT_EQ(reduceOne<uint16_t>(0x3C00, 0x3C00, gcclFloat16, gcclAvg), 0x4000);
}

TEST(Reduce, ZeroCountTouchesNoMemory) {
  for (gcclDataType_t t : kTypes)
    reduce(nullptr, nullptr, nullptr, 0, t, gcclSum);
  for (gcclDataType_t t : kTypes)
    divide(nullptr, nullptr, 0, t, 2);
}

TEST(Reduce, InvalidTypeOrOpLeavesDstUntouched) {
  int32_t a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, dst[4] = {9, 9, 9, 9};
  reduce(dst, a, b, 4, gcclNumTypes, gcclSum);
  reduce(dst, a, b, 4, gcclInt32, gcclNumOps);
  reduce(dst, a, b, 4, gcclInt32, static_cast<gcclRedOp_t>(7));
  for (int32_t v : dst)
    EXPECT_EQ(v, 9);
}

// ---- divide() ----------------------------------------------------------------------

template <class T>
T divideOne(T x, gcclDataType_t type, int divisor) {
  T out;
  divide(&out, &x, 1, type, divisor);
  return out;
}

TEST(Divide, IntegersTruncateTowardZero) {
  EXPECT_EQ(divideOne<int8_t>(-7, gcclInt8, 2), -3);
  EXPECT_EQ(divideOne<int8_t>(7, gcclInt8, 2), 3);
  EXPECT_EQ(divideOne<int8_t>(-128, gcclInt8, 3), -42);
  EXPECT_EQ(divideOne<uint8_t>(255, gcclUint8, 2), 127);
  EXPECT_EQ(divideOne<int32_t>(-7, gcclInt32, 4), -1);
  EXPECT_EQ(divideOne<uint32_t>(UINT32_MAX, gcclUint32, 2), UINT32_MAX / 2);
  EXPECT_EQ(divideOne<int64_t>(INT64_MIN, gcclInt64, 2), INT64_MIN / 2);
  EXPECT_EQ(divideOne<uint64_t>(UINT64_MAX, gcclUint64, 3), UINT64_MAX / 3);
}

TEST(Divide, DivisorBeyondTheTypeRangeGivesZero) {
  EXPECT_EQ(divideOne<int8_t>(-128, gcclInt8, 1000), 0);
  EXPECT_EQ(divideOne<uint8_t>(255, gcclUint8, 256), 0);
}

void expectDivideMatchesReference(decltype(&divide) fn, gcclDataType_t t, int divisor) {
  SCOPED_TRACE(typeName(t) + " / " + std::to_string(divisor));
  const auto src = makeOperand(t, 65537, 0, 99);
  std::vector<uint8_t> expected(src.size()), out(src.size());
  for (size_t i = 0; i < 65537; ++i)
    storeBits(expected, t, i, referenceDivide(t, loadBits(src, t, i), divisor));
  fn(out.data(), src.data(), 65537, t, divisor);
  EXPECT_TRUE(sameBits(t, expected, out));
}

TEST(Divide, MatchesReferenceForEveryType) {
  for (gcclDataType_t t : kTypes) {
    for (int divisor : {1, 3, 7, 1024})
      expectDivideMatchesReference(&divide, t, divisor);
  }
}

TEST(Divide, PortableLoopsMatchReference) {
  for (gcclDataType_t t : kTypes)
    expectDivideMatchesReference(&detail::dividePortable, t, 3);
}

TEST(Divide, WorksInPlace) {
  for (gcclDataType_t t : kTypes) {
    SCOPED_TRACE(typeName(t));
    const auto src = makeOperand(t, 1000, 1, 7);
    std::vector<uint8_t> expected(src.size()), inout = src;
    divide(expected.data(), src.data(), 1000, t, 5);
    divide(inout.data(), inout.data(), 1000, t, 5);
    EXPECT_TRUE(sameBits(t, expected, inout));
  }
}

TEST(Divide, HalfTypesRoundTheFloat32QuotientToNearestEven) {
  EXPECT_EQ(divideOne<uint16_t>(0x3C00, gcclFloat16, 3), 0x3555);   // 1/3
  EXPECT_EQ(divideOne<uint16_t>(0x0001, gcclFloat16, 2), 0x0000);   // 2^-25: tie to even
  EXPECT_EQ(divideOne<uint16_t>(0x0003, gcclFloat16, 2), 0x0002);   // 1.5 units: tie to even
  EXPECT_EQ(divideOne<uint16_t>(0x3F80, gcclBfloat16, 3), 0x3EAB);  // 1/3
}

TEST(Divide, NaNStaysTheCanonicalQuietNaN) {
  EXPECT_EQ(bitsOf(divideOne(floatOf(0xFF812345), gcclFloat32, 2)), 0x7FC00000u);
  EXPECT_EQ(divideOne<uint16_t>(0xFD23, gcclFloat16, 2), 0x7E00);
  EXPECT_EQ(divideOne<uint16_t>(0xFF81, gcclBfloat16, 2), 0x7FC0);
  EXPECT_TRUE(std::isnan(divideOne(std::numeric_limits<double>::quiet_NaN(), gcclFloat64, 2)));
}

TEST(Divide, NonPositiveDivisorOrInvalidTypeLeavesDstUntouched) {
  int32_t src[2] = {10, 20}, dst[2] = {9, 9};
  divide(dst, src, 2, gcclInt32, 0);
  divide(dst, src, 2, gcclInt32, -2);
  divide(dst, src, 2, gcclNumTypes, 2);
  EXPECT_EQ(dst[0], 9);
  EXPECT_EQ(dst[1], 9);
}

}  // namespace
}  // namespace gccl::kernels
