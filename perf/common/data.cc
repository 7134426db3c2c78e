#include "common/data.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/options.h"
#include "common/perf.h"

namespace gperf {

namespace {

// IEEE binary formats narrower than float (half: 5/10, bfloat16: 8/7),
// encoded from double with round-to-nearest-even directly, so that no double
// rounding through float can happen.
uint16_t encodeNarrow(double d, int expBits, int manBits) {
  const int bias = (1 << (expBits - 1)) - 1;
  const uint32_t expMax = (1u << expBits) - 1;
  const uint32_t sign = std::signbit(d) ? 1u << (expBits + manBits) : 0;
  if (std::isnan(d)) return static_cast<uint16_t>(sign | expMax << manBits | 1u << (manBits - 1));
  double a = std::fabs(d);
  if (a == 0) return static_cast<uint16_t>(sign);
  if (std::isinf(a)) return static_cast<uint16_t>(sign | expMax << manBits);
  int e = 0;
  std::frexp(a, &e);
  int E = std::max(e - 1, 1 - bias);  // subnormals share the smallest exponent
  double q = std::nearbyint(std::ldexp(a, manBits - E));
  if (q >= std::ldexp(1.0, manBits + 1)) {
    q = std::ldexp(1.0, manBits);
    ++E;
  }
  if (E + bias >= static_cast<int>(expMax)) return static_cast<uint16_t>(sign | expMax << manBits);
  uint32_t mant = static_cast<uint32_t>(q);
  uint32_t field = mant >= (1u << manBits) ? static_cast<uint32_t>(E + bias) : 0;
  return static_cast<uint16_t>(sign | field << manBits | (mant & ((1u << manBits) - 1)));
}

double decodeNarrow(uint16_t bits, int expBits, int manBits) {
  const int bias = (1 << (expBits - 1)) - 1;
  const uint32_t expMax = (1u << expBits) - 1;
  bool neg = (bits >> (expBits + manBits)) & 1;
  uint32_t field = (bits >> manBits) & expMax;
  uint32_t mant = bits & ((1u << manBits) - 1);
  double v;
  if (field == expMax)
    v = mant != 0 ? std::numeric_limits<double>::quiet_NaN()
                  : std::numeric_limits<double>::infinity();
  else if (field == 0)
    v = std::ldexp(static_cast<double>(mant), 1 - bias - manBits);
  else
    v = std::ldexp(static_cast<double>(mant | 1u << manBits),
                   static_cast<int>(field) - bias - manBits);
  return neg ? -v : v;
}

template <typename T>
void storeAs(void* buf, size_t n, const double* v) {
  T* p = static_cast<T*>(buf);
  for (size_t k = 0; k < n; ++k)
    p[k] = static_cast<T>(v[k]);
}

template <typename T>
void loadAs(const void* buf, size_t n, double* v) {
  const T* p = static_cast<const T*>(buf);
  for (size_t k = 0; k < n; ++k)
    v[k] = static_cast<double>(p[k]);
}

void storeNarrow(void* buf, size_t n, const double* v, int expBits, int manBits) {
  uint16_t* p = static_cast<uint16_t*>(buf);
  for (size_t k = 0; k < n; ++k)
    p[k] = encodeNarrow(v[k], expBits, manBits);
}

void loadNarrow(const void* buf, size_t n, double* v, int expBits, int manBits) {
  const uint16_t* p = static_cast<const uint16_t*>(buf);
  for (size_t k = 0; k < n; ++k)
    v[k] = decodeNarrow(p[k], expBits, manBits);
}

template <typename T>
void fillWith(void* buf, size_t n, T value) {
  std::fill_n(static_cast<T*>(buf), n, value);
}

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

bool isFloating(gcclDataType_t t) {
  return t == gcclFloat16 || t == gcclFloat32 || t == gcclFloat64 || t == gcclBfloat16;
}

void storeValues(gcclDataType_t t, void* buf, size_t n, const double* v) {
  switch (t) {
    case gcclInt8:
      return storeAs<int8_t>(buf, n, v);
    case gcclUint8:
      return storeAs<uint8_t>(buf, n, v);
    case gcclInt32:
      return storeAs<int32_t>(buf, n, v);
    case gcclUint32:
      return storeAs<uint32_t>(buf, n, v);
    case gcclInt64:
      return storeAs<int64_t>(buf, n, v);
    case gcclUint64:
      return storeAs<uint64_t>(buf, n, v);
    case gcclFloat16:
      return storeNarrow(buf, n, v, 5, 10);
    case gcclFloat32:
      return storeAs<float>(buf, n, v);
    case gcclFloat64:
      return storeAs<double>(buf, n, v);
    case gcclBfloat16:
      return storeNarrow(buf, n, v, 8, 7);
    default:
      return;
  }
}

void loadValues(gcclDataType_t t, const void* buf, size_t n, double* v) {
  switch (t) {
    case gcclInt8:
      return loadAs<int8_t>(buf, n, v);
    case gcclUint8:
      return loadAs<uint8_t>(buf, n, v);
    case gcclInt32:
      return loadAs<int32_t>(buf, n, v);
    case gcclUint32:
      return loadAs<uint32_t>(buf, n, v);
    case gcclInt64:
      return loadAs<int64_t>(buf, n, v);
    case gcclUint64:
      return loadAs<uint64_t>(buf, n, v);
    case gcclFloat16:
      return loadNarrow(buf, n, v, 5, 10);
    case gcclFloat32:
      return loadAs<float>(buf, n, v);
    case gcclFloat64:
      return loadAs<double>(buf, n, v);
    case gcclBfloat16:
      return loadNarrow(buf, n, v, 8, 7);
    default:
      return;
  }
}

void fillPoison(gcclDataType_t t, void* buf, size_t n) {
  switch (t) {
    case gcclInt8:
      return fillWith<int8_t>(buf, n, std::numeric_limits<int8_t>::min());
    case gcclUint8:
      return fillWith<uint8_t>(buf, n, std::numeric_limits<uint8_t>::max());
    case gcclInt32:
      return fillWith<int32_t>(buf, n, std::numeric_limits<int32_t>::min());
    case gcclUint32:
      return fillWith<uint32_t>(buf, n, std::numeric_limits<uint32_t>::max());
    case gcclInt64:
      return fillWith<int64_t>(buf, n, std::numeric_limits<int64_t>::min());
    case gcclUint64:
      return fillWith<uint64_t>(buf, n, std::numeric_limits<uint64_t>::max());
    case gcclFloat16:
      return fillWith<uint16_t>(buf, n, 0x7e00);
    case gcclFloat32:
      return fillWith<float>(buf, n, std::numeric_limits<float>::quiet_NaN());
    case gcclFloat64:
      return fillWith<double>(buf, n, std::numeric_limits<double>::quiet_NaN());
    case gcclBfloat16:
      return fillWith<uint16_t>(buf, n, 0x7fc0);
    default:
      return;
  }
}

size_t countWrong(gcclDataType_t t, const void* buf, size_t n, const double* expected,
                  double tolerance) {
  constexpr size_t kChunk = 1024;
  double got[kChunk];
  size_t wrong = 0;
  const size_t elem = typeSize(t);
  for (size_t b = 0; b < n; b += kChunk) {
    size_t m = std::min(kChunk, n - b);
    loadValues(t, static_cast<const char*>(buf) + b * elem, m, got);
    for (size_t k = 0; k < m; ++k) {
      bool ok = tolerance > 0 ? std::fabs(got[k] - expected[b + k]) <= tolerance
                              : got[k] == expected[b + k];
      wrong += ok ? 0 : 1;
    }
  }
  return wrong;
}

size_t countChanged(const void* a, const void* b, size_t n, size_t elemSize) {
  const char* pa = static_cast<const char*>(a);
  const char* pb = static_cast<const char*>(b);
  size_t changed = 0;
  for (size_t k = 0; k < n; ++k)
    changed += memcmp(pa + k * elemSize, pb + k * elemSize, elemSize) != 0 ? 1 : 0;
  return changed;
}

int64_t defaultRange(gcclDataType_t t, gcclRedOp_t op, int nranks) {
  // The largest magnitude below which every integer is exact in the type.
  int64_t limit = 0;
  switch (t) {
    case gcclInt8:
      limit = 127;
      break;
    case gcclUint8:
      limit = 255;
      break;
    case gcclInt32:
      limit = std::numeric_limits<int32_t>::max();
      break;
    case gcclUint32:
      limit = std::numeric_limits<uint32_t>::max();
      break;
    case gcclFloat16:
      limit = 2048;
      break;
    case gcclBfloat16:
      limit = 256;
      break;
    case gcclFloat32:
      limit = int64_t{1} << 24;
      break;
    default:
      limit = int64_t{1} << 53;
      break;  // 64-bit types, as doubles carry them
  }
  // One below, so that no result reaches the unsigned poison value.
  limit -= 1;
  // Sums of any subset of ranks must stay exact (ring and tree partial sums
  // travel in the element type); min and max never grow.
  if (op == gcclSum || op == gcclAvg) return limit / std::max(1, nranks);
  return limit;
}

double typeEpsilon(gcclDataType_t t) {
  switch (t) {
    case gcclFloat16:
      return std::ldexp(1.0, -10);
    case gcclBfloat16:
      return std::ldexp(1.0, -7);
    case gcclFloat32:
      return std::ldexp(1.0, -23);
    case gcclFloat64:
      return std::ldexp(1.0, -52);
    default:
      return 0;
  }
}

double inputValue(const ValueGen& g, int rank, size_t index) {
  uint64_t h = mix64(g.seed + static_cast<uint64_t>(rank) * 0xd1b54a32d192ed03ull +
                     static_cast<uint64_t>(index) * 0x9e3779b97f4a7c15ull);
  if (g.product) {
    // Magnitudes 2 and 3 on one rank each (per index), 1 elsewhere: every
    // partial product is exact and no result overflows, whatever nranks.
    size_t slot = (index + static_cast<size_t>(rank)) % static_cast<size_t>(g.nranks);
    double mag = slot == 0 ? 2.0 : (slot == 1 ? 3.0 : 1.0);
    return !g.nonNegative && (h & 1) ? -mag : mag;
  }
  uint64_t span = static_cast<uint64_t>(g.range);
  if (g.nonNegative) return static_cast<double>(h % (span + 1));
  return static_cast<double>(static_cast<int64_t>(h % (2 * span + 1)) - g.range);
}

double reduceInputs(const ValueGen& g, gcclRedOp_t op, gcclDataType_t type, int nranks,
                    size_t index) {
  double acc = inputValue(g, 0, index);
  for (int r = 1; r < nranks; ++r) {
    double v = inputValue(g, r, index);
    switch (op) {
      case gcclProd:
        acc *= v;
        break;
      case gcclMax:
        acc = std::max(acc, v);
        break;
      case gcclMin:
        acc = std::min(acc, v);
        break;
      default:
        acc += v;
        break;
    }
  }
  if (op == gcclAvg) acc = isFloating(type) ? acc / nranks : std::trunc(acc / nranks);
  return acc;
}

}  // namespace gperf
