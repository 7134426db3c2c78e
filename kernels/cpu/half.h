// Conversions between float32 and the two 16-bit float formats gccl carries on
// the wire: IEEE 754 binary16 ("half", float16) and bfloat16. Values are kept as
// raw uint16_t bit patterns so that no compiler extension type is needed.
//
// Every conversion rounds to nearest, ties to even; overflow gives ±Inf; NaN
// stays NaN with its sign and top payload bits, and is always returned quiet.
//
// The code uses integer operations only, so its result does not depend on the
// FPU rounding mode or on FTZ/DAZ, and it is the same on every CPU: ranks of
// one job may run on different hardware and must still agree bit for bit. It
// is also branch-free, so that loops calling it are vectorised by the compiler.
#pragma once

#include <cstdint>
#include <cstring>

// The conversions are callable from CUDA device code too (kernels/cuda uses
// them), so the device codecs share these exact bits.
#if defined(__CUDACC__)
#define GCCL_HALF_FN __host__ __device__ inline
#else
#define GCCL_HALF_FN inline
#endif

namespace gccl::kernels {

GCCL_HALF_FN uint32_t floatToBits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof u);
  return u;
}

GCCL_HALF_FN float bitsToFloat(uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}

GCCL_HALF_FN uint64_t doubleToBits(double d) {
  uint64_t u;
  __builtin_memcpy(&u, &d, sizeof u);
  return u;
}

GCCL_HALF_FN double bitsToDouble(uint64_t u) {
  double d;
  __builtin_memcpy(&d, &u, sizeof d);
  return d;
}

GCCL_HALF_FN float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7FFFu;
  // Normal: rebias the exponent from 15 to 127.
  const uint32_t normal = (em << 13) + (112u << 23);
  // Subnormal: the value is em * 2^-24, so shift em left until its top bit sits
  // at bit 9 (binary search in four fixed shifts) and derive the exponent from
  // the shift. Integer-only on purpose: GCC will not if-convert (so will not
  // vectorise) a floating-point op it considers trapping.
  uint32_t m = em;
  uint32_t k = 0;
  k += m < 0x004u ? 8u : 0u;
  m = m < 0x004u ? m << 8 : m;
  k += m < 0x040u ? 4u : 0u;
  m = m < 0x040u ? m << 4 : m;
  k += m < 0x100u ? 2u : 0u;
  m = m < 0x100u ? m << 2 : m;
  k += m < 0x200u ? 1u : 0u;
  m = m < 0x200u ? m << 1 : m;
  const uint32_t subnormal = em == 0 ? 0u : ((112u - k) << 23) | ((m << 14) & 0x007FFFFFu);
  // Inf and NaN keep their payload; a signalling NaN is made quiet, as the
  // hardware conversion instructions (F16C, FCVT) do.
  const uint32_t special = 0x7F800000u | (em << 13) | (em > 0x7C00u ? 0x00400000u : 0u);
  const uint32_t mag = em >= 0x7C00u ? special : (em >= 0x0400u ? normal : subnormal);
  return bitsToFloat(sign | mag);
}

GCCL_HALF_FN uint16_t floatToHalf(float f) {
  const uint32_t x = floatToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7FFFFFFFu;

  // Normal half: drop 13 mantissa bits with round-to-nearest-even. A carry out
  // of the mantissa correctly bumps the exponent.
  const uint32_t n = a - (112u << 23);
  const uint32_t normal = (n + 0x0FFFu + ((n >> 13) & 1u)) >> 13;

  // Subnormal half (|f| < 2^-14): the result counts units of 2^-24. With the
  // implicit bit restored, |f| = m * 2^(e-150), so the count is m >> (126-e)
  // rounded to even, by the same add-and-carry as above. Shifts of 25 or more
  // leave 0 (m < 2^24 is below half a unit, ties included), so the shift is
  // clamped there to keep it defined.
  const int32_t e = static_cast<int32_t>(a >> 23);
  const uint32_t m = (a & 0x007FFFFFu) | 0x00800000u;
  int32_t s = 126 - e;
  s = s < 14 ? 14 : (s > 25 ? 25 : s);
  const uint32_t halfway = 1u << (s - 1);
  const uint32_t subnormal = (m + (halfway - 1u) + ((m >> s) & 1u)) >> s;

  // Inf stays Inf; NaN keeps its top payload bits and gets the quiet bit, which
  // also keeps a NaN whose payload lived only in the dropped bits a NaN.
  const uint32_t special = a > 0x7F800000u ? (0x7E00u | ((a >> 13) & 0x03FFu)) : 0x7C00u;

  // 0x477FF000 is 65520, halfway between 65504 (the largest half, odd
  // mantissa) and 65536: the tie rounds to even, which is infinity.
  const uint32_t mag = a >= 0x7F800000u   ? special
                       : a >= 0x477FF000u ? 0x7C00u
                       : a >= 0x38800000u ? normal
                                          : subnormal;
  return static_cast<uint16_t>(sign | mag);
}

GCCL_HALF_FN float bfloat16ToFloat(uint16_t h) {
  // bfloat16 is the top half of a float32; only a signalling NaN needs its
  // quiet bit set.
  const uint32_t quiet = (h & 0x7FFFu) > 0x7F80u ? 0x0040u : 0u;
  return bitsToFloat(static_cast<uint32_t>(h | quiet) << 16);
}

GCCL_HALF_FN uint16_t floatToBfloat16(float f) {
  const uint32_t x = floatToBits(f);
  // Adding just under half a unit plus the lowest kept bit rounds to nearest
  // even; a carry moves into the exponent and FLT_MAX-sized values become Inf.
  // NaN must bypass it, or the carry could turn a NaN into Inf.
  const uint32_t rounded = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
  const uint32_t nan = (x >> 16) | 0x0040u;
  return static_cast<uint16_t>((x & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

}  // namespace gccl::kernels
