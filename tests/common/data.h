// Test data with exactly known reductions: small integers that every data
// type represents exactly, so sums, products, minima and maxima of up to 8
// ranks are exact in every type and a double reference can check them.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gccl/gccl.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/reduce.h"

namespace gccl::test {

inline bool isSigned(gcclDataType_t t) {
  return t != gcclUint8 && t != gcclUint32 && t != gcclUint64;
}
inline bool isFloat(gcclDataType_t t) {
  return t == gcclFloat16 || t == gcclBfloat16 || t == gcclFloat32 || t == gcclFloat64;
}

// The value rank `rank` contributes at element `i` (products of 8 stay within 2^8).
inline double testValue(gcclDataType_t t, gcclRedOp_t op, int rank, size_t i) {
  uint64_t h = (i * 2654435761u + static_cast<uint64_t>(rank) * 40503u + 17) % 1000003;
  if (op == gcclProd) {
    int v = static_cast<int>(h % 3);  // 0,1,2 -> 1,2,-1 (or 1,2,1 unsigned)
    return v == 0 ? 1 : v == 1 ? 2 : (isSigned(t) ? -1 : 1);
  }
  int v = static_cast<int>(h % 9);
  return isSigned(t) ? v - 4 : v;
}

inline void storeValue(gcclDataType_t t, void* buf, size_t i, double v) {
  switch (t) {
    case gcclInt8:
      static_cast<int8_t*>(buf)[i] = static_cast<int8_t>(v);
      break;
    case gcclUint8:
      static_cast<uint8_t*>(buf)[i] = static_cast<uint8_t>(v);
      break;
    case gcclInt32:
      static_cast<int32_t*>(buf)[i] = static_cast<int32_t>(v);
      break;
    case gcclUint32:
      static_cast<uint32_t*>(buf)[i] = static_cast<uint32_t>(v);
      break;
    case gcclInt64:
      static_cast<int64_t*>(buf)[i] = static_cast<int64_t>(v);
      break;
    case gcclUint64:
      static_cast<uint64_t*>(buf)[i] = static_cast<uint64_t>(v);
      break;
    case gcclFloat16:
      static_cast<uint16_t*>(buf)[i] = kernels::floatToHalf(static_cast<float>(v));
      break;
    case gcclBfloat16:
      static_cast<uint16_t*>(buf)[i] = kernels::floatToBfloat16(static_cast<float>(v));
      break;
    case gcclFloat32:
      static_cast<float*>(buf)[i] = static_cast<float>(v);
      break;
    case gcclFloat64:
      static_cast<double*>(buf)[i] = v;
      break;
    default:
      break;
  }
}

inline double loadValue(gcclDataType_t t, const void* buf, size_t i) {
  switch (t) {
    case gcclInt8:
      return static_cast<const int8_t*>(buf)[i];
    case gcclUint8:
      return static_cast<const uint8_t*>(buf)[i];
    case gcclInt32:
      return static_cast<const int32_t*>(buf)[i];
    case gcclUint32:
      return static_cast<const uint32_t*>(buf)[i];
    case gcclInt64:
      return static_cast<double>(static_cast<const int64_t*>(buf)[i]);
    case gcclUint64:
      return static_cast<double>(static_cast<const uint64_t*>(buf)[i]);
    case gcclFloat16:
      return kernels::halfToFloat(static_cast<const uint16_t*>(buf)[i]);
    case gcclBfloat16:
      return kernels::bfloat16ToFloat(static_cast<const uint16_t*>(buf)[i]);
    case gcclFloat32:
      return static_cast<const float*>(buf)[i];
    case gcclFloat64:
      return static_cast<const double*>(buf)[i];
    default:
      return NAN;
  }
}

inline void fillRank(gcclDataType_t t, gcclRedOp_t op, void* buf, size_t count, int rank,
                     size_t offset = 0) {
  for (size_t i = 0; i < count; ++i)
    storeValue(t, buf, i, testValue(t, op, rank, offset + i));
}

// Integer results wrap modulo 2^bits, as gccl defines integer arithmetic.
inline double wrapToType(gcclDataType_t t, double v) {
  auto i = static_cast<int64_t>(v);
  switch (t) {
    case gcclInt8:
      return static_cast<int8_t>(i);
    case gcclUint8:
      return static_cast<uint8_t>(i);
    case gcclInt32:
      return static_cast<int32_t>(i);
    case gcclUint32:
      return static_cast<uint32_t>(i);
    default:
      return v;
  }
}

// The reduction over ranks 0..n-1 at element i, as gccl defines it.
inline double expectedReduction(gcclDataType_t t, gcclRedOp_t op, int n, size_t i) {
  double acc = testValue(t, op, 0, i);
  for (int r = 1; r < n; ++r) {
    double v = testValue(t, op, r, i);
    switch (op) {
      case gcclSum:
      case gcclAvg:
        acc += v;
        break;
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
        break;
    }
  }
  if (op == gcclAvg) acc = isFloat(t) ? acc / n : std::trunc(acc / n);
  return wrapToType(t, acc);
}

inline double tolerance(gcclDataType_t t, gcclRedOp_t op, double expect) {
  if (op != gcclAvg || !isFloat(t)) return 0;
  double rel = (t == gcclFloat16 || t == gcclBfloat16) ? 1e-2 : (t == gcclFloat32 ? 1e-6 : 1e-12);
  return rel * std::max(1.0, std::fabs(expect));
}

// FNV-1a over the bytes: ranks compare results bit for bit through this.
inline uint64_t hashBytes(const void* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

inline const char* typeName(gcclDataType_t t) {
  static const char* k[] = {"int8",   "uint8",   "int32",   "uint32",  "int64",
                            "uint64", "float16", "float32", "float64", "bfloat16"};
  return static_cast<int>(t) < 10 ? k[t] : "?";
}
inline const char* opName(gcclRedOp_t op) {
  static const char* k[] = {"sum", "prod", "max", "min", "avg"};
  return static_cast<int>(op) < 5 ? k[op] : "?";
}

}  // namespace gccl::test
