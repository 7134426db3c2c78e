#include "kernels/cuda/reduce.cuh"

#include "kernels/cpu/reduce.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

// Bit-exactness with the CPU kernels (kernels/cpu/reduce.cc) rests on:
//  - IEEE float32/float64 arithmetic with subnormals kept. The build passes
//    --ftz=false (the CPU side assumes no FTZ/DAZ) and every add, multiply and
//    divide goes through the _rn intrinsics, which are never contracted into
//    an FMA and never replaced by an approximate division, whatever
//    --fmad/--prec-div say.
//  - NaN made canonical explicitly: the GPU's own NaN results (0x7FFFFFFF,
//    and 0x7FFF from cvt to f16/bf16) differ from the CPU's canonical quiet NaN.
//  - min/max decided on integer keys, never by fminf/fmaxf (which drop NaN and
//    do not order -0 below +0).

namespace gccl::cuda {
namespace {

constexpr int kThreads = 256;
// Blocks resident per SM, promised to the compiler through __launch_bounds__
// (it caps registers at 64), so that the largest grid is exactly one wave.
constexpr int kBlocksPerSm = 4;
// 16-byte vectors each thread loads before its first use, so that several
// loads per input are in flight: a memory-bound loop needs them to reach
// bandwidth. Half as many for 8- and 16-bit types, whose unpacked elements
// would otherwise not fit the 64 registers (16-bit min/max spilled).
template <class T>
constexpr int kUnroll = sizeof(T) >= 4 ? 4 : 2;
constexpr size_t kVecBytes = 16;
constexpr int kMaxCachedDevices = 64;

// ---- Integer ops --------------------------------------------------------------

struct BinaryOp {
  static constexpr int kArity = 2;
};
struct UnaryOp {
  static constexpr int kArity = 1;
};

// Arithmetic in the unsigned type wraps instead of overflowing (UB for signed).
template <class T>
struct IntSum : BinaryOp {
  __device__ T operator()(T a, T b) const {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  }
};
template <class T>
struct IntProd : BinaryOp {
  __device__ T operator()(T a, T b) const {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  }
};
template <class T>
struct IntMax : BinaryOp {
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};
template <class T>
struct IntMin : BinaryOp {
  __device__ T operator()(T a, T b) const { return a < b ? a : b; }
};

template <class T>
struct IntOps {
  using Type = T;
  using Sum = IntSum<T>;
  using Prod = IntProd<T>;
  using Max = IntMax<T>;
  using Min = IntMin<T>;
};

// ---- Floating-point formats ----------------------------------------------------

struct F32Format {
  using Type = float;
  using Bits = uint32_t;
  using SBits = int32_t;
  static constexpr Bits kAbs = 0x7FFFFFFFu;
  static constexpr Bits kInf = 0x7F800000u;
  static constexpr Bits kNaN = 0x7FC00000u;
  __device__ static Bits bits(float v) { return __float_as_uint(v); }
  __device__ static float value(Bits b) { return __uint_as_float(b); }
  __device__ static float add(float a, float b) { return __fadd_rn(a, b); }
  __device__ static float mul(float a, float b) { return __fmul_rn(a, b); }
  __device__ static float div(float a, float b) { return __fdiv_rn(a, b); }
};
struct F64Format {
  using Type = double;
  using Bits = uint64_t;
  using SBits = int64_t;
  static constexpr Bits kAbs = 0x7FFFFFFFFFFFFFFFull;
  static constexpr Bits kInf = 0x7FF0000000000000ull;
  static constexpr Bits kNaN = 0x7FF8000000000000ull;
  __device__ static Bits bits(double v) { return static_cast<Bits>(__double_as_longlong(v)); }
  __device__ static double value(Bits b) { return __longlong_as_double(static_cast<long long>(b)); }
  __device__ static double add(double a, double b) { return __dadd_rn(a, b); }
  __device__ static double mul(double a, double b) { return __dmul_rn(a, b); }
  __device__ static double div(double a, double b) { return __ddiv_rn(a, b); }
};

template <class Fmt>
__device__ __forceinline__ bool isNaNBits(typename Fmt::Bits b) {
  return static_cast<typename Fmt::Bits>(b & Fmt::kAbs) > Fmt::kInf;
}

// Checked on bits rather than with x != x, so no compiler flag can fold it away.
template <class Fmt>
__device__ __forceinline__ typename Fmt::Type canonical(typename Fmt::Type r) {
  return isNaNBits<Fmt>(Fmt::bits(r)) ? Fmt::value(Fmt::kNaN) : r;
}

// Half formats are carried as raw uint16_t, as on the host: the conversion
// intrinsics do the rounding, the surrounding code the NaN handling.
struct F16Format {
  using Type = uint16_t;
  using Bits = uint16_t;
  using SBits = int16_t;
  static constexpr Bits kAbs = 0x7FFFu;
  static constexpr Bits kInf = 0x7C00u;
  static constexpr Bits kNaN = 0x7E00u;
  __device__ static Bits bits(uint16_t v) { return v; }
  __device__ static uint16_t value(Bits b) { return b; }
  __device__ static float widen(uint16_t v) { return __half2float(__ushort_as_half(v)); }
  __device__ static uint16_t narrow(float r) {
    return isNaNBits<F32Format>(__float_as_uint(r)) ? kNaN : __half_as_ushort(__float2half_rn(r));
  }
};
struct BF16Format {
  using Type = uint16_t;
  using Bits = uint16_t;
  using SBits = int16_t;
  static constexpr Bits kAbs = 0x7FFFu;
  static constexpr Bits kInf = 0x7F80u;
  static constexpr Bits kNaN = 0x7FC0u;
  __device__ static Bits bits(uint16_t v) { return v; }
  __device__ static uint16_t value(Bits b) { return b; }
  __device__ static float widen(uint16_t v) { return __bfloat162float(__ushort_as_bfloat16(v)); }
  __device__ static uint16_t narrow(float r) {
    return isNaNBits<F32Format>(__float_as_uint(r)) ? kNaN
                                                    : __bfloat16_as_ushort(__float2bfloat16_rn(r));
  }
};

// An integer key that orders non-NaN values as IEEE does, with -0 below +0:
// the magnitude bits flipped for negatives, read as two's complement. Equal
// keys mean equal bits, so the choice is symmetric in its operands.
template <class Fmt>
__device__ __forceinline__ typename Fmt::SBits orderKey(typename Fmt::Bits b) {
  using Bits = typename Fmt::Bits;
  const Bits negMask = static_cast<Bits>(Bits(0) - Bits(b >> (sizeof(Bits) * 8 - 1)));
  return static_cast<typename Fmt::SBits>(static_cast<Bits>(b ^ (negMask & Fmt::kAbs)));
}

template <class Fmt, bool kMax>
struct FloatMinMax : BinaryOp {
  using T = typename Fmt::Type;
  __device__ T operator()(T a, T b) const {
    const auto x = Fmt::bits(a);
    const auto y = Fmt::bits(b);
    const bool xFirst =
        kMax ? orderKey<Fmt>(x) > orderKey<Fmt>(y) : orderKey<Fmt>(x) < orderKey<Fmt>(y);
    const bool nan = isNaNBits<Fmt>(x) || isNaNBits<Fmt>(y);
    return Fmt::value(nan ? Fmt::kNaN : (xFirst ? x : y));
  }
};

template <class Fmt>
struct FloatSum : BinaryOp {
  using T = typename Fmt::Type;
  __device__ T operator()(T a, T b) const { return canonical<Fmt>(Fmt::add(a, b)); }
};
template <class Fmt>
struct FloatProd : BinaryOp {
  using T = typename Fmt::Type;
  __device__ T operator()(T a, T b) const { return canonical<Fmt>(Fmt::mul(a, b)); }
};

// Sums and products of two 16-bit floats are exact or correctly rounded in
// float32, so rounding that once more gives the correctly rounded 16-bit result.
template <class Fmt>
struct HalfSum : BinaryOp {
  __device__ uint16_t operator()(uint16_t a, uint16_t b) const {
    return Fmt::narrow(F32Format::add(Fmt::widen(a), Fmt::widen(b)));
  }
};
template <class Fmt>
struct HalfProd : BinaryOp {
  __device__ uint16_t operator()(uint16_t a, uint16_t b) const {
    return Fmt::narrow(F32Format::mul(Fmt::widen(a), Fmt::widen(b)));
  }
};

template <class Fmt>
struct FloatOps {
  using Type = typename Fmt::Type;
  using Sum = FloatSum<Fmt>;
  using Prod = FloatProd<Fmt>;
  using Max = FloatMinMax<Fmt, true>;
  using Min = FloatMinMax<Fmt, false>;
};

template <class Fmt>
struct HalfOps {
  using Type = uint16_t;
  using Sum = HalfSum<Fmt>;
  using Prod = HalfProd<Fmt>;
  using Max = FloatMinMax<Fmt, true>;
  using Min = FloatMinMax<Fmt, false>;
};

// ---- Division ------------------------------------------------------------------

// The CPU kernel divides in 64 bits; for 8- and 32-bit types 32-bit division
// gives the same quotient (divisor is a positive int) at a fraction of the
// cost, as the GPU has no 64-bit integer divider.
template <class T>
struct IntDiv : UnaryOp {
  using Wide = std::conditional_t<sizeof(T) == 8, T,
                                  std::conditional_t<std::is_signed_v<T>, int32_t, uint32_t>>;
  Wide divisor;
  __device__ T operator()(T x) const { return static_cast<T>(static_cast<Wide>(x) / divisor); }
};

// The divisor arrives already converted on the host, as the CPU kernel
// converts it, so both sides divide by the same value.
template <class Fmt>
struct FloatDiv : UnaryOp {
  using T = typename Fmt::Type;
  T divisor;
  __device__ T operator()(T x) const { return canonical<Fmt>(Fmt::div(x, divisor)); }
};

template <class Fmt>
struct HalfDiv : UnaryOp {
  float divisor;
  __device__ uint16_t operator()(uint16_t x) const {
    return Fmt::narrow(F32Format::div(Fmt::widen(x), divisor));
  }
};

// ---- The kernel -----------------------------------------------------------------

// How a launch splits its elements: [0, head) scalar up to the first 16-byte
// boundary, then nVec 16-byte vectors, then a scalar tail up to n. When the
// pointers cannot share one boundary, head == n and there are no vectors.
struct Split {
  size_t n;
  size_t head;
  size_t nVec;
};

template <class T>
union Pack {
  static constexpr int kN = static_cast<int>(kVecBytes / sizeof(T));
  uint4 raw;
  T e[kN];
};

template <class Op, class T>
__device__ __forceinline__ T apply(const Op& op, T x, T y) {
  if constexpr (Op::kArity == 2) {
    return op(x, y);
  } else {
    (void)y;
    return op(x);
  }
}

// Grid-stride over all three parts. Each element is read and written by one
// thread only, and read before it is written, so dst may alias a or b exactly;
// hence no __restrict__ and no read-only cache loads.
template <class T, class Op>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    elementwiseKernel(T* d, const T* a, const T* b, Split s, Op op) {
  constexpr bool kBinary = Op::kArity == 2;
  using P = Pack<T>;
  const size_t tid = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;

  for (size_t i = tid; i < s.head; i += stride)
    d[i] = apply(op, a[i], kBinary ? b[i] : T());

  uint4* dv = reinterpret_cast<uint4*>(d + s.head);
  const uint4* av = reinterpret_cast<const uint4*>(a + s.head);
  const uint4* bv = reinterpret_cast<const uint4*>(kBinary ? b + s.head : a + s.head);
  size_t v = tid;
  constexpr int kU = kUnroll<T>;
  for (; v + (kU - 1) * stride < s.nVec; v += kU * stride) {
    P x[kU];
    P y[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      x[u].raw = av[v + u * stride];
      if constexpr (kBinary) y[u].raw = bv[v + u * stride];
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
#pragma unroll
      for (int j = 0; j < P::kN; ++j)
        x[u].e[j] = apply(op, x[u].e[j], kBinary ? y[u].e[j] : T());
    }
#pragma unroll
    for (int u = 0; u < kU; ++u)
      dv[v + u * stride] = x[u].raw;
  }
  for (; v < s.nVec; v += stride) {
    P x;
    P y;
    x.raw = av[v];
    if constexpr (kBinary) y.raw = bv[v];
#pragma unroll
    for (int j = 0; j < P::kN; ++j)
      x.e[j] = apply(op, x.e[j], kBinary ? y.e[j] : T());
    dv[v] = x.raw;
  }

  for (size_t i = s.head + s.nVec * P::kN + tid; i < s.n; i += stride)
    d[i] = apply(op, a[i], kBinary ? b[i] : T());
}

// ---- Launching ----------------------------------------------------------------

// The SM count of the current device, queried once per device: launches sit
// on the collective's critical path and the attribute never changes.
cudaError_t smCount(int* out) {
  static std::atomic<int> cache[kMaxCachedDevices];
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  const bool cacheable = dev >= 0 && dev < kMaxCachedDevices;
  if (cacheable) {
    const int n = cache[dev].load(std::memory_order_relaxed);
    if (n > 0) {
      *out = n;
      return cudaSuccess;
    }
  }
  int n = 0;
  err = cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
  if (err != cudaSuccess) return err;
  if (n < 1) n = 1;
  if (cacheable) cache[dev].store(n, std::memory_order_relaxed);
  *out = n;
  return cudaSuccess;
}

template <class T>
Split plan(const void* d, const void* a, const void* b, size_t n) {
  const uintptr_t offset = reinterpret_cast<uintptr_t>(d) % kVecBytes;
  // Vectors need one 16-byte boundary that falls on the same element of
  // every buffer; pointers offset alike (chunks of one allocation) still get it.
  if (reinterpret_cast<uintptr_t>(a) % kVecBytes != offset ||
      reinterpret_cast<uintptr_t>(b) % kVecBytes != offset) {
    return {n, n, 0};
  }
  const size_t head = ((kVecBytes - offset) % kVecBytes) / sizeof(T);
  if (head >= n) return {n, n, 0};
  return {n, head, (n - head) / Pack<T>::kN};
}

template <class T, class Op>
cudaError_t launch(void* dst, const void* a, const void* b, size_t n, Op op, cudaStream_t stream) {
  const Split s = plan<T>(dst, a, b, n);
  int sms = 0;
  const cudaError_t err = smCount(&sms);
  if (err != cudaSuccess) return err;
  // Enough threads for the work, up to one full wave; larger inputs loop.
  const size_t scalars = n - s.nVec * Pack<T>::kN;
  const size_t units = (s.nVec + kUnroll<T> - 1) / kUnroll<T> + scalars;
  const size_t wanted = (units + kThreads - 1) / kThreads;
  const size_t most = static_cast<size_t>(sms) * kBlocksPerSm;
  const unsigned blocks = static_cast<unsigned>(wanted < 1 ? 1 : (wanted > most ? most : wanted));

  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(blocks);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  // Returns this launch's own error, unlike <<<>>> followed by
  // cudaGetLastError, which could report an earlier, unrelated one.
  return cudaLaunchKernelEx(&config, elementwiseKernel<T, Op>, static_cast<T*>(dst),
                            static_cast<const T*>(a), static_cast<const T*>(b), s, op);
}

template <class Ops>
cudaError_t reduceWith(void* d, const void* a, const void* b, size_t n, gcclRedOp_t op,
                       cudaStream_t stream) {
  using T = typename Ops::Type;
  switch (op) {
    case gcclSum:
    case gcclAvg:
      return launch<T>(d, a, b, n, typename Ops::Sum(), stream);
    case gcclProd:
      return launch<T>(d, a, b, n, typename Ops::Prod(), stream);
    case gcclMax:
      return launch<T>(d, a, b, n, typename Ops::Max(), stream);
    case gcclMin:
      return launch<T>(d, a, b, n, typename Ops::Min(), stream);
    default:
      return cudaErrorInvalidValue;
  }
}

template <class T>
cudaError_t divideInt(void* d, const void* s, size_t n, int divisor, cudaStream_t stream) {
  using Op = IntDiv<T>;
  Op op;
  op.divisor = static_cast<typename Op::Wide>(divisor);
  return launch<T>(d, s, s, n, op, stream);
}

template <class Fmt>
cudaError_t divideFloat(void* d, const void* s, size_t n, int divisor, cudaStream_t stream) {
  FloatDiv<Fmt> op;
  op.divisor = static_cast<typename Fmt::Type>(divisor);
  return launch<typename Fmt::Type>(d, s, s, n, op, stream);
}

template <class Fmt>
cudaError_t divideHalf(void* d, const void* s, size_t n, int divisor, cudaStream_t stream) {
  HalfDiv<Fmt> op;
  op.divisor = static_cast<float>(divisor);
  return launch<uint16_t>(d, s, s, n, op, stream);
}

// A misaligned element access would fault the kernel, and a fault poisons the
// whole CUDA context; refusing the call up front costs nothing.
bool usable(const void* p, size_t size) {
  return p != nullptr && reinterpret_cast<uintptr_t>(p) % size == 0;
}

}  // namespace

cudaError_t launchReduce(void* dst, const void* a, const void* b, size_t count, gcclDataType_t type,
                         gcclRedOp_t op, cudaStream_t stream) {
  const size_t size = kernels::typeSize(type);
  if (size == 0 || static_cast<int>(op) < 0 || static_cast<int>(op) >= gcclNumOps) {
    return cudaErrorInvalidValue;
  }
  if (count == 0) return cudaSuccess;
  if (!usable(dst, size) || !usable(a, size) || !usable(b, size)) return cudaErrorInvalidValue;
  switch (type) {
    case gcclInt8:
      return reduceWith<IntOps<int8_t>>(dst, a, b, count, op, stream);
    case gcclUint8:
      return reduceWith<IntOps<uint8_t>>(dst, a, b, count, op, stream);
    case gcclInt32:
      return reduceWith<IntOps<int32_t>>(dst, a, b, count, op, stream);
    case gcclUint32:
      return reduceWith<IntOps<uint32_t>>(dst, a, b, count, op, stream);
    case gcclInt64:
      return reduceWith<IntOps<int64_t>>(dst, a, b, count, op, stream);
    case gcclUint64:
      return reduceWith<IntOps<uint64_t>>(dst, a, b, count, op, stream);
    case gcclFloat16:
      return reduceWith<HalfOps<F16Format>>(dst, a, b, count, op, stream);
    case gcclBfloat16:
      return reduceWith<HalfOps<BF16Format>>(dst, a, b, count, op, stream);
    case gcclFloat32:
      return reduceWith<FloatOps<F32Format>>(dst, a, b, count, op, stream);
    case gcclFloat64:
      return reduceWith<FloatOps<F64Format>>(dst, a, b, count, op, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

cudaError_t launchDivide(void* dst, const void* src, size_t count, gcclDataType_t type, int divisor,
                         cudaStream_t stream) {
  const size_t size = kernels::typeSize(type);
  if (size == 0 || divisor < 1) return cudaErrorInvalidValue;
  if (count == 0) return cudaSuccess;
  if (!usable(dst, size) || !usable(src, size)) return cudaErrorInvalidValue;
  switch (type) {
    case gcclInt8:
      return divideInt<int8_t>(dst, src, count, divisor, stream);
    case gcclUint8:
      return divideInt<uint8_t>(dst, src, count, divisor, stream);
    case gcclInt32:
      return divideInt<int32_t>(dst, src, count, divisor, stream);
    case gcclUint32:
      return divideInt<uint32_t>(dst, src, count, divisor, stream);
    case gcclInt64:
      return divideInt<int64_t>(dst, src, count, divisor, stream);
    case gcclUint64:
      return divideInt<uint64_t>(dst, src, count, divisor, stream);
    case gcclFloat16:
      return divideHalf<F16Format>(dst, src, count, divisor, stream);
    case gcclBfloat16:
      return divideHalf<BF16Format>(dst, src, count, divisor, stream);
    case gcclFloat32:
      return divideFloat<F32Format>(dst, src, count, divisor, stream);
    case gcclFloat64:
      return divideFloat<F64Format>(dst, src, count, divisor, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace gccl::cuda
