// Wire codecs (kernels/cpu/codec.h): round trips of every codec and element
// type against references computed here (16-bit rounding with
// frexp/ldexp/nearbyint, quantization bounds from the bucket's own min and
// max, lattice integers from x / delta), the statistics of stochastic
// rounding, the lattice check, top-k with error feedback, and the errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "base/check.h"
#include "kernels/cpu/codec.h"
#include "kernels/cpu/half.h"

namespace gccl::kernels::codec {
namespace {

const size_t kSizes[] = {0, 1, 1001, (size_t{1} << 20) + 3};
const gcclDataType_t kFloatTypes[] = {gcclFloat32, gcclFloat64, gcclFloat16, gcclBfloat16};
const int kBits[] = {8, 4, 2};

struct Format {
  int precision;  // significand bits, implicit bit included
  int minExp;     // exponent of the smallest normal
  int maxExp;     // exponent of the largest finite
};
constexpr Format kHalfFmt{11, -14, 15};
constexpr Format kBf16Fmt{8, -126, 127};

size_t sizeOf(gcclDataType_t t) {
  return t == gcclFloat64 ? 8 : t == gcclFloat32 ? 4 : 2;
}

// v rounded to nearest even in the format, +-Inf past the largest finite.
double roundTo(double v, const Format& f) {
  if (std::isnan(v) || std::isinf(v) || v == 0) return v;
  int e;
  std::frexp(v, &e);  // |v| = m * 2^e, m in [0.5, 1)
  const int exp = std::max(e - 1, f.minExp);
  const double quantum = std::ldexp(1.0, exp - (f.precision - 1));
  const double r = std::nearbyint(v / quantum) * quantum;  // default mode: ties to even
  const double maxFinite = std::ldexp(2.0 - std::ldexp(1.0, 1 - f.precision), f.maxExp);
  if (std::fabs(r) > maxFinite) return std::copysign(INFINITY, v);
  return r == 0 ? std::copysign(0.0, v) : r;
}

// Element i of a tensor of `type` as double, and the reverse (16-bit: from a
// value already representable).
double get(const std::vector<uint8_t>& buf, gcclDataType_t t, size_t i) {
  switch (t) {
    case gcclFloat32: {
      float f;
      std::memcpy(&f, buf.data() + 4 * i, 4);
      return f;
    }
    case gcclFloat64: {
      double d;
      std::memcpy(&d, buf.data() + 8 * i, 8);
      return d;
    }
    default: {
      uint16_t h;
      std::memcpy(&h, buf.data() + 2 * i, 2);
      return t == gcclFloat16 ? halfToFloat(h) : bfloat16ToFloat(h);
    }
  }
}
void put(std::vector<uint8_t>& buf, gcclDataType_t t, size_t i, double v) {
  switch (t) {
    case gcclFloat32: {
      const float f = static_cast<float>(v);
      std::memcpy(buf.data() + 4 * i, &f, 4);
      return;
    }
    case gcclFloat64:
      std::memcpy(buf.data() + 8 * i, &v, 8);
      return;
    default: {
      const uint16_t h = t == gcclFloat16 ? floatToHalf(static_cast<float>(v))
                                          : floatToBfloat16(static_cast<float>(v));
      std::memcpy(buf.data() + 2 * i, &h, 2);
      return;
    }
  }
}

std::vector<uint8_t> tensor(gcclDataType_t t, size_t n) {
  return std::vector<uint8_t>(std::max<size_t>(1, n * sizeOf(t)));
}

// Relative spacing of the type's values (half a unit in the last place).
double halfUlpRel(gcclDataType_t t) {
  switch (t) {
    case gcclFloat64:
      return std::ldexp(1.0, -53);
    case gcclFloat32:
      return std::ldexp(1.0, -24);
    case gcclFloat16:
      return std::ldexp(1.0, -11);
    default:
      return std::ldexp(1.0, -8);
  }
}

std::vector<uint8_t> encodeOk(const Params& p, const void* src, size_t n, gcclDataType_t t) {
  size_t bytes = 0;
  EXPECT_EQ(encodedBytes(p, n, t, &bytes), gcclSuccess) << threadLastError();
  std::vector<uint8_t> out(std::max<size_t>(bytes, 1));
  size_t written = 123;
  EXPECT_EQ(encode(p, src, n, t, out.data(), bytes, &written), gcclSuccess) << threadLastError();
  EXPECT_EQ(written, bytes);
  out.resize(bytes);
  return out;
}

// ---- Casts -------------------------------------------------------------------------

// Values over the whole range of the 16-bit formats and beyond: subnormals,
// ties, overflow, specials.
std::vector<double> castInputs(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mant(1.0, 2.0);
  std::uniform_int_distribution<int> ex(-140, 130);
  std::vector<double> v(n);
  const double specials[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 65504.0, 65520.0, 65519.99,
                             1.0 + std::ldexp(1.0, -11), std::ldexp(1.0, -24), std::ldexp(1.0, -25),
                             std::ldexp(1.0, -26), 3.4e38, -1e300,
                             // Just above a tie of the 16-bit format, by less than float32 keeps:
                             // rounding through float32 first would round these down.
                             1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40),
                             -(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40)),
                             std::ldexp(1.0 + std::ldexp(1.0, -40), -25)};
  for (size_t i = 0; i < n; ++i) {
    if (i < sizeof specials / sizeof specials[0]) {
      v[i] = specials[i];
    } else {
      double m = mant(rng);
      // Half of them exactly on a tie of float16 or bfloat16.
      if (i % 4 == 1) m = 1.0 + (2.0 * static_cast<double>(rng() % 1024) + 1) / 2048.0;
      if (i % 4 == 2) m = 1.0 + (2.0 * static_cast<double>(rng() % 128) + 1) / 256.0;
      v[i] = std::ldexp(rng() % 2 ? -m : m, ex(rng));
    }
  }
  return v;
}

TEST(CodecCast, RoundTripMatchesReferenceRounding) {
  for (gcclDataType_t src : {gcclFloat32, gcclFloat64}) {
    for (gcclDataType_t wire : {gcclFloat16, gcclBfloat16}) {
      const Format& f = wire == gcclFloat16 ? kHalfFmt : kBf16Fmt;
      for (size_t n : kSizes) {
        SCOPED_TRACE(std::to_string(src) + " -> " + std::to_string(wire) +
                     " n=" + std::to_string(n));
        Params p;
        p.codec = Codec::kCast;
        p.castTo = wire;
        const std::vector<double> v = castInputs(n, n + 7);
        std::vector<uint8_t> x = tensor(src, n);
        for (size_t i = 0; i < n; ++i)
          put(x, src, i, v[i]);
        const std::vector<uint8_t> enc = encodeOk(p, x.data(), n, src);
        ASSERT_EQ(enc.size(), 2 * n);
        std::vector<uint8_t> y = tensor(src, n);
        ASSERT_EQ(decode(p, enc.data(), enc.size(), n, src, y.data()), gcclSuccess)
            << threadLastError();
        size_t bad = 0;
        for (size_t i = 0; i < n && bad < 5; ++i) {
          const double in = get(x, src, i);
          const double want = roundTo(in, f);
          const double got = get(y, src, i);
          const bool same = std::isnan(want)
                                ? std::isnan(got) && std::signbit(got) == std::signbit(in)
                                : got == want && std::signbit(got) == std::signbit(want);
          if (!same) {
            ++bad;
            ADD_FAILURE() << "element " << i << ": " << in << " -> " << got << ", want " << want;
          }
        }
        // The portable path gives the same bytes.
        std::vector<uint8_t> enc2(enc.size() + 1);
        ASSERT_EQ(detail::encodePortable(p, x.data(), n, src, enc2.data(), enc2.size()),
                  gcclSuccess);
        EXPECT_EQ(0, std::memcmp(enc.data(), enc2.data(), enc.size()));
      }
    }
  }
}

TEST(CodecCast, NaNStaysQuietNaNAndPathsAgreeOnEveryBitPattern) {
  Params p;
  p.codec = Codec::kCast;
  // Every float16/bfloat16 pattern decodes the same on both paths, NaN quiet.
  for (gcclDataType_t wire : {gcclFloat16, gcclBfloat16}) {
    p.castTo = wire;
    std::vector<uint16_t> all(65536);
    for (size_t i = 0; i < all.size(); ++i)
      all[i] = static_cast<uint16_t>(i);
    std::vector<float> a(65536), b(65536);
    ASSERT_EQ(decode(p, all.data(), 2 * all.size(), all.size(), gcclFloat32, a.data()),
              gcclSuccess);
    ASSERT_EQ(
        detail::decodePortable(p, all.data(), 2 * all.size(), all.size(), gcclFloat32, b.data()),
        gcclSuccess);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), 4 * a.size()));
    for (size_t i = 0; i < all.size(); ++i) {
      const bool nan16 = wire == gcclFloat16 ? (i & 0x7FFF) > 0x7C00 : (i & 0x7FFF) > 0x7F80;
      ASSERT_EQ(std::isnan(a[i]), nan16) << i;
      if (nan16) {
        ASSERT_TRUE(floatToBits(a[i]) & 0x00400000u) << "not quiet: " << i;
      }
    }
  }
  // Random float32 bit patterns (a quarter of them NaN) encode the same on
  // both paths; NaN gives a quiet NaN with the input's sign.
  std::mt19937 rng(5);
  std::vector<float> x(100003);
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t u = rng();
    if (i % 4 == 0) u |= 0x7F800000u;
    x[i] = bitsToFloat(u);
  }
  for (gcclDataType_t wire : {gcclFloat16, gcclBfloat16}) {
    p.castTo = wire;
    std::vector<uint16_t> e1(x.size()), e2(x.size());
    ASSERT_EQ(encode(p, x.data(), x.size(), gcclFloat32, e1.data(), 2 * x.size()), gcclSuccess);
    ASSERT_EQ(detail::encodePortable(p, x.data(), x.size(), gcclFloat32, e2.data(), 2 * x.size()),
              gcclSuccess);
    ASSERT_EQ(0, std::memcmp(e1.data(), e2.data(), 2 * x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      if (!std::isnan(x[i])) continue;
      const uint16_t h = e1[i];
      if (wire == gcclFloat16) {
        ASSERT_TRUE((h & 0x7C00) == 0x7C00 && (h & 0x0200)) << std::hex << h;
      } else {
        ASSERT_TRUE((h & 0x7F80) == 0x7F80 && (h & 0x0040)) << std::hex << h;
      }
      ASSERT_EQ(h >> 15, floatToBits(x[i]) >> 31);
    }
  }
}

// ---- Uniform quantization ------------------------------------------------------------

std::vector<double> smoothInputs(size_t n, uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = u(rng);
  return v;
}

TEST(CodecQuantize, RoundTripWithinTheBound) {
  for (gcclDataType_t t : kFloatTypes) {
    for (int bits : kBits) {
      for (Rounding r : {Rounding::kNearest, Rounding::kStochastic}) {
        for (size_t n : kSizes) {
          // The large size once per type and rounding, to bound the run time.
          if (n > 100000 && bits != 4) continue;
          SCOPED_TRACE("type " + std::to_string(t) + " bits " + std::to_string(bits) +
                       " stochastic " + std::to_string(r == Rounding::kStochastic) + " n " +
                       std::to_string(n));
          Params p;
          p.codec = Codec::kQuantize;
          p.bits = bits;
          p.bucket = 1000;
          p.rounding = r;
          p.seed = 99;
          std::vector<uint8_t> x = tensor(t, n);
          const std::vector<double> v = smoothInputs(n, n + bits, -3.0, 5.0);
          for (size_t i = 0; i < n; ++i)
            put(x, t, i, v[i] * (1 + static_cast<double>(i / p.bucket % 7)));
          const std::vector<uint8_t> enc = encodeOk(p, x.data(), n, t);
          std::vector<uint8_t> y = tensor(t, n);
          ASSERT_EQ(decode(p, enc.data(), enc.size(), n, t, y.data()), gcclSuccess)
              << threadLastError();
          const double levels = (1 << bits) - 1;
          size_t bad = 0;
          for (size_t b = 0; b * p.bucket < n; ++b) {
            const size_t lo = b * p.bucket, hi = std::min(n, lo + p.bucket);
            double mn = INFINITY, mx = -INFINITY;
            for (size_t i = lo; i < hi; ++i) {
              mn = std::min(mn, get(x, t, i));
              mx = std::max(mx, get(x, t, i));
            }
            const double scale = (mx - mn) / levels;
            const double arith = 8 * std::max(std::fabs(mn), std::fabs(mx)) *
                                 (t == gcclFloat64 ? std::ldexp(1.0, -52) : std::ldexp(1.0, -23));
            for (size_t i = lo; i < hi && bad < 5; ++i) {
              const double xi = get(x, t, i), yi = get(y, t, i);
              const double bound = (r == Rounding::kNearest ? scale / 2 : scale) * (1 + 1e-6) +
                                   arith + std::fabs(yi) * halfUlpRel(t);
              if (!(std::fabs(xi - yi) <= bound)) {
                ++bad;
                ADD_FAILURE() << "element " << i << ": " << xi << " -> " << yi << ", scale "
                              << scale;
              }
            }
          }
        }
      }
    }
  }
}

// The vector paths (AVX2 float32 scan and quantization, where the CPU has
// them) give the bytes of the portable ones, signed zeros and ties included.
TEST(CodecQuantize, VectorAndPortablePathsGiveTheSameBytes) {
  for (gcclDataType_t t : kFloatTypes) {
    for (int bits : kBits) {
      for (Rounding r : {Rounding::kNearest, Rounding::kStochastic}) {
        for (size_t bucket : {size_t{1000}, size_t{777}, size_t{32}}) {
          Params p;
          p.codec = Codec::kQuantize;
          p.bits = bits;
          p.bucket = bucket;
          p.rounding = r;
          const size_t n = 100003;
          std::vector<uint8_t> x = tensor(t, n);
          std::mt19937_64 rng(bits * 7 + bucket);
          for (size_t i = 0; i < n; ++i) {
            const uint64_t k = rng() % 8;
            // Signed zeros, values on the code grid, ties, and random ones.
            const double v = k == 0   ? 0.0
                             : k == 1 ? -0.0
                             : k == 2 ? static_cast<double>(rng() % 4) / 3.0
                                      : std::ldexp(static_cast<double>(rng() % 100000), -14);
            put(x, t, i, (i / 5000) % 3 == 2 ? 0.0 : v);
          }
          const std::vector<uint8_t> a = encodeOk(p, x.data(), n, t);
          std::vector<uint8_t> b(a.size());
          ASSERT_EQ(detail::encodePortable(p, x.data(), n, t, b.data(), b.size()), gcclSuccess);
          ASSERT_EQ(a, b) << "type " << t << " bits " << bits << " bucket " << bucket;
        }
      }
    }
  }
}

TEST(CodecQuantize, ConstantBucketIsExactAndLayoutSizeIsExact) {
  for (gcclDataType_t t : kFloatTypes) {
    for (int bits : kBits) {
      Params p;
      p.codec = Codec::kQuantize;
      p.bits = bits;
      p.bucket = 100;
      p.rounding = bits == 4 ? Rounding::kStochastic : Rounding::kNearest;
      const size_t n = 1001;
      std::vector<uint8_t> x = tensor(t, n);
      // 0.1 is not a float32 value: for float64 the header must be float64.
      for (size_t i = 0; i < n; ++i)
        put(x, t, i, i < 500 ? 0.1 : -12345.678);
      const std::vector<uint8_t> enc = encodeOk(p, x.data(), n, t);
      const size_t header = t == gcclFloat64 ? 16 : 8;
      const size_t codes = 10 * ((100 * bits + 7) / 8) + (bits + 7) / 8;
      EXPECT_EQ(enc.size(), 11 * header + codes);
      std::vector<uint8_t> y = tensor(t, n);
      ASSERT_EQ(decode(p, enc.data(), enc.size(), n, t, y.data()), gcclSuccess);
      EXPECT_EQ(0, std::memcmp(x.data(), y.data(), n * sizeOf(t))) << "type " << t;
    }
  }
}

TEST(CodecQuantize, NonFiniteElementIsAnErrorNamingItsIndex) {
  for (gcclDataType_t t : kFloatTypes) {
    for (double bad : {NAN, INFINITY, -INFINITY}) {
      Params p;
      p.codec = Codec::kQuantize;
      p.bucket = 64;
      const size_t n = 300;
      std::vector<uint8_t> x = tensor(t, n);
      for (size_t i = 0; i < n; ++i)
        put(x, t, i, static_cast<double>(i));
      put(x, t, 237, bad);
      size_t bytes;
      ASSERT_EQ(encodedBytes(p, n, t, &bytes), gcclSuccess);
      std::vector<uint8_t> out(bytes);
      EXPECT_EQ(encode(p, x.data(), n, t, out.data(), bytes), gcclInvalidArgument);
      const std::string msg = threadLastError();
      EXPECT_NE(msg.find("element 237 is"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::isnan(bad) ? "NaN" : "infinite"), std::string::npos) << msg;
    }
  }
}

TEST(CodecQuantize, HugeFloat32RangeStaysFinite) {
  Params p;
  p.codec = Codec::kQuantize;
  p.bucket = 4;
  std::vector<float> x = {-3e38f, 3e38f, 0.0f, 1e38f};
  const std::vector<uint8_t> enc = encodeOk(p, x.data(), x.size(), gcclFloat32);
  std::vector<float> y(4);
  ASSERT_EQ(decode(p, enc.data(), enc.size(), 4, gcclFloat32, y.data()), gcclSuccess);
  const double scale = 6e38 / 255;
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(std::isfinite(y[i]));
    EXPECT_LE(std::fabs(static_cast<double>(x[i]) - y[i]), scale / 2 * 1.001) << i;
  }
}

// A range of a few subnormals: 1 / scale overflows float32, and the codes
// must still be exact (k units of 2^-149 are codes 0..3).
TEST(CodecQuantize, SubnormalRangeIsExact) {
  Params p;
  p.codec = Codec::kQuantize;
  p.bucket = 8;
  std::vector<float> x(8);
  for (size_t i = 0; i < 8; ++i)
    x[i] = std::ldexp(static_cast<float>(i % 4), -149);
  const std::vector<uint8_t> enc = encodeOk(p, x.data(), x.size(), gcclFloat32);
  std::vector<float> y(8);
  ASSERT_EQ(decode(p, enc.data(), enc.size(), 8, gcclFloat32, y.data()), gcclSuccess);
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), sizeof(float) * 8));
}

// The mean of 10^4 stochastic encodings (seeds 0..9999) of one tensor is
// within 4 sigma of it, sigma from each element's rounding variance
// scale^2 f (1 - f) (f the fractional part of (x - offset) / scale).
TEST(CodecQuantize, StochasticRoundingIsUnbiased) {
  for (Codec codec : {Codec::kQuantize, Codec::kLattice}) {
    const size_t n = 64;
    Params p;
    p.codec = codec;
    p.bits = 2;
    p.bucket = n;
    p.delta = 0.25;
    p.rounding = Rounding::kStochastic;
    std::vector<float> x(n);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& v : x)
      v = u(rng);
    x[0] = -1.0f;
    x[1] = 1.0f;
    const float mn = *std::min_element(x.begin(), x.end());
    const float mx = *std::max_element(x.begin(), x.end());
    const double step = codec == Codec::kQuantize ? (mx - mn) / 3.0 : p.delta;
    const double origin = codec == Codec::kQuantize ? mn : 0.0;
    std::vector<double> sum(n, 0.0);
    const int trials = 10000;
    std::vector<float> y(n);
    for (int s = 0; s < trials; ++s) {
      p.seed = static_cast<uint64_t>(s);
      const std::vector<uint8_t> enc = encodeOk(p, x.data(), n, gcclFloat32);
      ASSERT_EQ(decode(p, enc.data(), enc.size(), n, gcclFloat32, y.data(),
                       codec == Codec::kLattice ? x.data() : nullptr),
                gcclSuccess)
          << threadLastError();
      for (size_t i = 0; i < n; ++i)
        sum[i] += y[i];
    }
    for (size_t i = 0; i < n; ++i) {
      const double t = (x[i] - origin) / step;
      const double f = t - std::floor(t);
      const double sigma = step * std::sqrt(f * (1 - f) / trials);
      const double mean = sum[i] / trials;
      EXPECT_LE(std::fabs(mean - x[i]), 4 * sigma + 1e-5 * step)
          << "codec " << static_cast<int>(codec) << " element " << i << " x " << x[i] << " mean "
          << mean;
    }
  }
}

TEST(CodecQuantize, SameSeedSameBytesOtherSeedOtherBytes) {
  for (Codec codec : {Codec::kQuantize, Codec::kLattice}) {
    const size_t n = 5000;
    Params p;
    p.codec = codec;
    p.bits = 4;
    p.bucket = 333;
    p.delta = 0.01;
    p.rounding = Rounding::kStochastic;
    p.seed = 42;
    const std::vector<double> v = smoothInputs(n, 1, -1, 1);
    std::vector<float> x(v.begin(), v.end());
    const std::vector<uint8_t> a = encodeOk(p, x.data(), n, gcclFloat32);
    const std::vector<uint8_t> b = encodeOk(p, x.data(), n, gcclFloat32);
    EXPECT_EQ(a, b);
    p.seed = 43;
    const std::vector<uint8_t> c = encodeOk(p, x.data(), n, gcclFloat32);
    EXPECT_NE(a, c);
  }
}

// ---- Lattice --------------------------------------------------------------------------

// |x - r| < (2^(b-1) - 1.5) * delta (the stochastic bound, the smaller): n
// comes back exactly, for every type and size.
TEST(CodecLattice, ExactWithinTheBound) {
  for (gcclDataType_t t : kFloatTypes) {
    for (int bits : kBits) {
      for (Rounding r : {Rounding::kNearest, Rounding::kStochastic}) {
        for (size_t n : kSizes) {
          if (n > 100000 && bits != 2) continue;
          SCOPED_TRACE("type " + std::to_string(t) + " bits " + std::to_string(bits) +
                       " stochastic " + std::to_string(r == Rounding::kStochastic) + " n " +
                       std::to_string(n));
          Params p;
          p.codec = Codec::kLattice;
          p.bits = bits;
          p.bucket = 777;
          p.rounding = r;
          p.seed = 5;
          p.delta = t == gcclBfloat16 ? 1.0 / 8 : 1.0 / 1024;
          const double limit =
              ((1 << (bits - 1)) - (r == Rounding::kNearest ? 1.0 : 1.5)) * p.delta;
          std::vector<uint8_t> x = tensor(t, n), ref = tensor(t, n);
          const std::vector<double> v = smoothInputs(n, n, -4, 4);
          std::mt19937_64 rng(n + 1);
          std::uniform_real_distribution<double> noise(-0.9 * limit, 0.9 * limit);
          for (size_t i = 0; i < n; ++i) {
            put(x, t, i, v[i]);
            // The reference rounded to the type must stay within the bound.
            double ri;
            do {
              put(ref, t, i, get(x, t, i) + noise(rng));
              ri = get(ref, t, i);
            } while (!(std::fabs(ri - get(x, t, i)) < limit));
          }
          const std::vector<uint8_t> enc = encodeOk(p, x.data(), n, t);
          std::vector<uint8_t> y = tensor(t, n);
          ASSERT_EQ(decode(p, enc.data(), enc.size(), n, t, y.data(), ref.data()), gcclSuccess)
              << threadLastError();
          size_t bad = 0;
          for (size_t i = 0; i < n && bad < 5; ++i) {
            const double q = get(x, t, i) / p.delta;
            const double want =
                r == Rounding::kNearest
                    ? std::nearbyint(q)
                    : std::floor(q + static_cast<double>(detail::uniform(p.seed, i)));
            std::vector<uint8_t> w = tensor(t, 1);
            put(w, t, 0, want * p.delta);
            if (get(y, t, i) != get(w, t, 0)) {
              ++bad;
              ADD_FAILURE() << "element " << i << ": x " << get(x, t, i) << " decoded "
                            << get(y, t, i) << " want n " << want;
            }
          }
        }
      }
    }
  }
}

TEST(CodecLattice, FarReferenceFailsInsteadOfReturningWrongValues) {
  for (int bits : kBits) {
    const size_t n = 3000;
    Params p;
    p.codec = Codec::kLattice;
    p.bits = bits;
    p.bucket = 1000;
    p.delta = 0.01;
    std::vector<float> x(n), ref(n);
    for (size_t i = 0; i < n; ++i)
      x[i] = ref[i] = static_cast<float>(std::sin(static_cast<double>(i)));
    // One element of bucket 1 is (2^b + 1) * delta away: its code decodes to
    // the neighbouring grid point, and only the check can tell.
    ref[1500] = x[1500] + static_cast<float>(((1 << bits) + 1) * p.delta);
    const std::vector<uint8_t> enc = encodeOk(p, x.data(), n, gcclFloat32);
    std::vector<float> y(n, -7.0f);
    EXPECT_EQ(decode(p, enc.data(), enc.size(), n, gcclFloat32, y.data(), ref.data()),
              gcclInvalidArgument);
    const std::string msg = threadLastError();
    EXPECT_NE(msg.find("lattice check of bucket 1 (elements 1000..1999) failed"), std::string::npos)
        << msg;
    // Bucket 0 was decoded; nothing of bucket 1 or 2 was written.
    EXPECT_EQ(y[0], static_cast<float>(std::nearbyint(x[0] / 0.01) * 0.01));
    for (size_t i = 1000; i < n; ++i)
      ASSERT_EQ(y[i], -7.0f) << i;
    // A reference far everywhere fails too.
    std::vector<float> far(n);
    for (size_t i = 0; i < n; ++i)
      far[i] = x[i] + 3.7f;
    EXPECT_EQ(decode(p, enc.data(), enc.size(), n, gcclFloat32, y.data(), far.data()),
              gcclInvalidArgument);
  }
}

TEST(CodecLattice, ValueOffTheGridRangeIsAnError) {
  Params p;
  p.codec = Codec::kLattice;
  p.delta = 1e-30;
  std::vector<double> x = {0.0, 1.0};
  std::vector<uint8_t> out(64);
  EXPECT_EQ(encode(p, x.data(), 2, gcclFloat64, out.data(), out.size()), gcclInvalidArgument);
  EXPECT_NE(std::string(threadLastError()).find("element 1 is too large"), std::string::npos)
      << threadLastError();
  x[1] = NAN;
  p.delta = 1;
  EXPECT_EQ(encode(p, x.data(), 2, gcclFloat64, out.data(), out.size()), gcclInvalidArgument);
  EXPECT_NE(std::string(threadLastError()).find("element 1 is NaN"), std::string::npos)
      << threadLastError();
}

// ---- Top-k ------------------------------------------------------------------------------

bool sameOrBothZero(float a, float b) {
  return floatToBits(a) == floatToBits(b) || (a == 0 && b == 0);
}

struct TopKRun {
  std::vector<float> x, oldR, newR, values;
  std::vector<uint32_t> indices;
  size_t kept = 0;
};

TopKRun runTopK(const Params& p, size_t n, uint64_t seed) {
  TopKRun r;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  r.x.resize(n);
  r.oldR.resize(n);
  for (size_t i = 0; i < n; ++i) {
    r.x[i] = g(rng);
    r.oldR[i] = 0.1f * g(rng);
  }
  if (n > 10) r.x[3] = r.x[7] = 10.0f;  // a tie
  r.newR = r.oldR;
  r.indices.assign(std::max<size_t>(p.k, 1), 0);
  r.values.assign(std::max<size_t>(p.k, 1), 0);
  EXPECT_EQ(topkSelect(p, r.x.data(), r.newR.data(), n, r.indices.data(), r.values.data(), &r.kept),
            gcclSuccess)
      << threadLastError();
  return r;
}

void checkInvariant(const TopKRun& r) {
  const size_t n = r.x.size();
  std::vector<float> dense(n, 0.0f);
  for (size_t j = 0; j < r.kept; ++j) {
    ASSERT_LT(r.indices[j], n);
    if (j > 0) {
      ASSERT_LT(r.indices[j - 1], r.indices[j]);
    }
    dense[r.indices[j]] = r.values[j];
    ASSERT_EQ(r.newR[r.indices[j]], 0.0f);
  }
  for (size_t i = 0; i < n; ++i)
    ASSERT_TRUE(sameOrBothZero(dense[i] + r.newR[i], r.x[i] + r.oldR[i])) << i;
}

TEST(CodecTopK, ExactMatchesSortedReferenceAndKeepsTheInvariant) {
  for (size_t n : {size_t{1}, size_t{1001}, (size_t{1} << 20) + 3}) {
    for (size_t k : {size_t{0}, size_t{1}, n / 10, n}) {
      if (n > 100000 && k != n / 10) continue;
      Params p;
      p.codec = Codec::kTopK;
      p.k = k;
      const TopKRun r = runTopK(p, n, n + k);
      checkInvariant(r);
      ASSERT_EQ(r.kept, k);
      std::vector<uint32_t> order(n);
      for (size_t i = 0; i < n; ++i)
        order[i] = static_cast<uint32_t>(i);
      std::vector<float> acc(n);
      for (size_t i = 0; i < n; ++i)
        acc[i] = r.x[i] + r.oldR[i];
      std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        return std::fabs(acc[a]) > std::fabs(acc[b]) ||
               (std::fabs(acc[a]) == std::fabs(acc[b]) && a < b);
      });
      order.resize(k);
      std::sort(order.begin(), order.end());
      EXPECT_TRUE(std::equal(order.begin(), order.end(), r.indices.begin()))
          << "n " << n << " k " << k;
    }
  }
}

// Threshold selection: at most k kept, at least one for k >= 1, and every kept
// |acc| >= every |acc| not kept (so >= the (k+1)-th largest).
TEST(CodecTopK, ThresholdKeepsAtMostKOfTheLargest) {
  for (size_t n : {size_t{1}, size_t{1001}, (size_t{1} << 20) + 3}) {
    for (size_t k : {size_t{1}, n / 100 + 1, n / 10 + 1, n}) {
      for (size_t sample : {size_t{7}, size_t{4096}}) {
        Params p;
        p.codec = Codec::kTopK;
        p.select = TopKSelect::kThreshold;
        p.k = std::min(k, n);
        p.sample = sample;
        p.seed = k;
        const TopKRun r = runTopK(p, n, 2 * n + k);
        checkInvariant(r);
        ASSERT_LE(r.kept, p.k);
        ASSERT_GE(r.kept, 1u);
        float minKept = INFINITY;
        for (size_t j = 0; j < r.kept; ++j)
          minKept = std::min(minKept, std::fabs(r.values[j]));
        std::vector<bool> isKept(n, false);
        for (size_t j = 0; j < r.kept; ++j)
          isKept[r.indices[j]] = true;
        for (size_t i = 0; i < n; ++i) {
          if (!isKept[i]) {
            ASSERT_LE(std::fabs(r.newR[i]), minKept) << "n " << n << " k " << k;
          }
        }
      }
    }
  }
}

TEST(CodecTopK, EncodeDecodeThroughTheWireFormat) {
  const size_t n = 1001;
  Params p;
  p.codec = Codec::kTopK;
  p.k = 50;
  p.select = TopKSelect::kThreshold;
  p.sample = 100;
  std::vector<float> x(n), res(n, 0.0f);
  for (size_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(std::cos(static_cast<double>(i) * 0.37) * (i % 13));
  size_t bytes;
  ASSERT_EQ(encodedBytes(p, n, gcclFloat32, &bytes), gcclSuccess);
  EXPECT_EQ(bytes, 8 + 8 * p.k);
  std::vector<uint8_t> out(bytes);
  size_t written = 0;
  ASSERT_EQ(encode(p, x.data(), n, gcclFloat32, out.data(), bytes, &written, res.data()),
            gcclSuccess)
      << threadLastError();
  uint64_t kept;
  std::memcpy(&kept, out.data(), 8);
  EXPECT_EQ(written, 8 + 8 * kept);
  std::vector<float> y(n, 5.0f);
  ASSERT_EQ(decode(p, out.data(), written, n, gcclFloat32, y.data()), gcclSuccess)
      << threadLastError();
  for (size_t i = 0; i < n; ++i)
    ASSERT_TRUE(sameOrBothZero(y[i] + res[i], x[i])) << i;
}

TEST(CodecTopK, NonFiniteAccumulatorIsAnErrorAndChangesNothing) {
  Params p;
  p.codec = Codec::kTopK;
  p.k = 2;
  std::vector<float> x = {1, 2, 3, 4, 5}, r = {0, 0, 0, INFINITY, 0};
  x[3] = -INFINITY;  // -Inf + Inf = NaN
  const std::vector<float> before = r;
  uint32_t idx[2];
  float val[2];
  size_t kept;
  EXPECT_EQ(topkSelect(p, x.data(), r.data(), 5, idx, val, &kept), gcclInvalidArgument);
  EXPECT_NE(std::string(threadLastError()).find("element 3 of x + residual is NaN"),
            std::string::npos)
      << threadLastError();
  EXPECT_EQ(0, std::memcmp(before.data(), r.data(), 4 * r.size()));
}

// ---- Arguments ------------------------------------------------------------------------------

void expectError(gcclResult_t got, const char* needle) {
  EXPECT_EQ(got, gcclInvalidArgument);
  EXPECT_NE(std::string(threadLastError()).find(needle), std::string::npos)
      << "message: " << threadLastError() << "\nexpected to contain: " << needle;
}

TEST(CodecArguments, BadInputsAreErrorsNamingTheProblem) {
  std::vector<float> x(16, 1.0f), r(16, 0.0f);
  std::vector<uint8_t> out(1024);
  size_t bytes;
  Params q;
  q.codec = Codec::kQuantize;
  expectError(encode(q, x.data(), 16, gcclInt32, out.data(), out.size()),
              "takes a floating type (float16, bfloat16, float32, float64), not int32");
  expectError(encodedBytes(q, 16, gcclUint8, &bytes), "not uint8");
  Params b0 = q;
  b0.bucket = 0;
  expectError(encode(b0, x.data(), 16, gcclFloat32, out.data(), out.size()),
              "bucket size must be > 0");
  Params b3 = q;
  b3.bits = 3;
  expectError(encodedBytes(b3, 16, gcclFloat32, &bytes), "bits must be 8, 4 or 2, not 3");
  Params cast;
  expectError(encode(cast, x.data(), 16, gcclFloat16, out.data(), out.size()),
              "cast codec takes float32 or float64 tensors, not float16");
  cast.castTo = gcclFloat32;
  expectError(encode(cast, x.data(), 16, gcclFloat32, out.data(), out.size()),
              "casts to float16 or bfloat16, not float32");
  Params lat;
  lat.codec = Codec::kLattice;
  for (double d : {0.0, -1.0, static_cast<double>(NAN), static_cast<double>(INFINITY)}) {
    lat.delta = d;
    expectError(encode(lat, x.data(), 16, gcclFloat32, out.data(), out.size()),
                "delta must be finite and > 0");
  }
  lat.delta = 0.5;
  ASSERT_EQ(encode(lat, x.data(), 16, gcclFloat32, out.data(), out.size()), gcclSuccess);
  std::vector<float> y(16);
  expectError(decode(lat, out.data(), out.size(), 16, gcclFloat32, y.data()),
              "needs the receiver's reference tensor");
  Params top;
  top.codec = Codec::kTopK;
  top.k = 17;
  expectError(encode(top, x.data(), 16, gcclFloat32, out.data(), out.size(), nullptr, r.data()),
              "k = 17 exceeds count = 16");
  top.k = 4;
  expectError(encode(top, x.data(), 16, gcclFloat64, out.data(), out.size(), nullptr, r.data()),
              "top-k takes float32 tensors, not float64");
  expectError(encode(top, x.data(), 16, gcclFloat32, out.data(), out.size()),
              "needs the caller's residual tensor");
  // Null pointers with count > 0.
  expectError(encode(q, nullptr, 16, gcclFloat32, out.data(), out.size()), "null source tensor");
  expectError(encode(q, x.data(), 16, gcclFloat32, nullptr, out.size()), "null output buffer");
  ASSERT_EQ(encode(q, x.data(), 16, gcclFloat32, out.data(), out.size()), gcclSuccess);
  expectError(decode(q, out.data(), out.size(), 16, gcclFloat32, nullptr),
              "null destination tensor");
  expectError(decode(q, nullptr, out.size(), 16, gcclFloat32, y.data()), "null encoded buffer");
  // Buffers too small.
  ASSERT_EQ(encodedBytes(q, 16, gcclFloat32, &bytes), gcclSuccess);
  expectError(encode(q, x.data(), 16, gcclFloat32, out.data(), bytes - 1), "the encoding needs");
  expectError(decode(q, out.data(), bytes - 1, 16, gcclFloat32, y.data()), "16 elements need");
}

TEST(CodecArguments, CountZeroTouchesNothing) {
  for (Codec c : {Codec::kCast, Codec::kQuantize, Codec::kLattice}) {
    Params p;
    p.codec = c;
    p.delta = 1;
    size_t bytes = 99;
    ASSERT_EQ(encodedBytes(p, 0, gcclFloat32, &bytes), gcclSuccess);
    EXPECT_EQ(bytes, 0u);
    EXPECT_EQ(encode(p, nullptr, 0, gcclFloat32, nullptr, 0), gcclSuccess) << threadLastError();
    EXPECT_EQ(decode(p, nullptr, 0, 0, gcclFloat32, nullptr, nullptr), gcclSuccess)
        << threadLastError();
  }
  Params t;
  t.codec = Codec::kTopK;
  size_t bytes = 99, written = 99;
  ASSERT_EQ(encodedBytes(t, 0, gcclFloat32, &bytes), gcclSuccess);
  EXPECT_EQ(bytes, 0u);
  EXPECT_EQ(encode(t, nullptr, 0, gcclFloat32, nullptr, 0, &written, nullptr), gcclSuccess)
      << threadLastError();
  EXPECT_EQ(written, 0u);
  EXPECT_EQ(decode(t, nullptr, 0, 0, gcclFloat32, nullptr), gcclSuccess) << threadLastError();
  size_t kept = 9;
  EXPECT_EQ(topkSelect(t, nullptr, nullptr, 0, nullptr, nullptr, &kept), gcclSuccess);
  EXPECT_EQ(kept, 0u);
}

}  // namespace
}  // namespace gccl::kernels::codec
