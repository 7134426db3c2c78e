// Bandwidth of the CPU kernels (kernels/cpu) beside two references measured
// in the same binary on the same buffer sizes: memcpy and a STREAM triad.
//
// The benchmark argument is the size in bytes of ONE array; every kernel is
// run on arrays of that size, whatever its element type (a float16 array holds
// twice the elements of a float32 one). Bytes per call are counted the STREAM
// way: each array the kernel reads counts once, each array it writes counts
// once, and an array that is read and then written in place counts twice.
// Cache-line fills before a write (write-allocate) are not counted, for the
// references and the kernels alike. Hence, for arrays of n bytes:
//
//   memcpy              dst = src                    2 n  (read src, write dst)
//   triad               a = b + s*c                  3 n  (read b, c; write a)
//   reduce              dst = a + b                  3 n  (read a, b; write dst)
//   reduce in place     x = x + y                    3 n  (read x, y; write x)
//   scale               x = a*x                      2 n  (read x; write x)
//   axpy                x = x + b*y                  3 n  (read x, y; write x)
//   mix, k inputs       x = a*x + sum_j b_j*y_j      (k + 2) n
//   codec encode        wire = encode(x)             n + e  (read x; write e bytes)
//   codec decode        x = decode(wire)             e + n
//   codec round trip    encode, then decode          2 (n + e)
// where e is the encoded size: n/4 plus 8 bytes per bucket of 1024 elements
// for 8-bit quantization of float32, n/2 for the float16 cast of float32.
//
// A kernel that moves more arrays needs a larger working set for the same
// argument: at 256 KiB, mix with 8 inputs touches 2.5 MiB while the triad
// touches 768 KiB. Compare rows of one size with that in mind wherever the
// data may fit in some level of cache. Outside the caches, the references pay
// for write-allocate on their destination and the in-place kernels do not,
// so an in-place kernel can show more counted bytes/s than the triad there.
//
// The values are chosen so that repeating a kernel on its own output stays
// finite and normal (no subnormal slow paths): inputs in [1, 2), mixing
// weights that sum to 1, and a scale of -1.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "gccl/gccl.h"
#include "kernels/cpu/codec.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/mix.h"
#include "kernels/cpu/reduce.h"

namespace {

using gccl::kernels::typeSize;

// The triad is built the way the library builds its kernels (an AVX2 clone
// picked at load time where the CPU has it), so that at sizes that fit in
// cache the comparison is between loops, not between instruction sets.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define BENCH_CLONES __attribute__((noinline, target_clones("avx2", "default")))
#else
#define BENCH_CLONES __attribute__((noinline))
#endif

// Fixed blocks plus a scalar tail, as in the kernels: GCC's -O2 cost model
// (the default preset builds RelWithDebInfo, -O2) vectorises only loops whose
// trip count is a known multiple of the vector width.
BENCH_CLONES void triad(float* __restrict a, const float* __restrict b, const float* __restrict c,
                        float s, size_t n) {
  constexpr size_t kBlock = 64;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (size_t j = 0; j < kBlock; ++j)
      a[i + j] = b[i + j] + s * c[i + j];
  }
  for (; i < n; ++i)
    a[i] = b[i] + s * c[i];
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// `count` arrays of `bytes` bytes each, 64-byte aligned (one cache line), every
// page touched before the timing starts.
class Arrays {
 public:
  Arrays(int count, size_t bytes) : bytes_(bytes) {
    const size_t rounded = (bytes + 63) / 64 * 64;
    for (int i = 0; i < count; ++i) {
      void* p = std::aligned_alloc(64, rounded);
      if (p == nullptr) {
        ok_ = false;
        return;
      }
      std::memset(p, 0, rounded);
      arrays_.emplace_back(p);
    }
  }
  bool ok() const { return ok_; }
  void* operator[](size_t i) const { return arrays_[i].get(); }
  size_t size() const { return arrays_.size(); }

  // Fills array i with values in [lo, lo*2) in `type` (float32, float16 or
  // bfloat16), varying from element to element.
  void fill(size_t i, gcclDataType_t type, float lo) {
    const size_t n = bytes_ / typeSize(type);
    for (size_t k = 0; k < n; ++k) {
      const float v = lo * (1.0f + static_cast<float>((k * 7 + i * 13) % 97) / 128.0f);
      switch (type) {
        case gcclFloat32:
          static_cast<float*>((*this)[i])[k] = v;
          break;
        case gcclFloat16:
          static_cast<uint16_t*>((*this)[i])[k] = gccl::kernels::floatToHalf(v);
          break;
        case gcclBfloat16:
          static_cast<uint16_t*>((*this)[i])[k] = gccl::kernels::floatToBfloat16(v);
          break;
        default:
          break;
      }
    }
  }

 private:
  size_t bytes_;
  bool ok_ = true;
  std::vector<std::unique_ptr<void, FreeDeleter>> arrays_;
};

// Sets the bytes/s figure: `arrays` arrays of the argument's size per call.
void countBytes(benchmark::State& state, int arrays) {
  state.SetBytesProcessed(state.iterations() * arrays * state.range(0));
}

void BM_Memcpy(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  Arrays m(2, bytes);
  if (!m.ok()) return state.SkipWithError("out of memory");
  m.fill(1, gcclFloat32, 1.0f);
  for (auto _ : state) {
    std::memcpy(m[0], m[1], bytes);
    benchmark::DoNotOptimize(m[0]);
    benchmark::ClobberMemory();
  }
  countBytes(state, 2);
}

void BM_Triad(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  const size_t n = bytes / sizeof(float);
  Arrays m(3, bytes);
  if (!m.ok()) return state.SkipWithError("out of memory");
  m.fill(1, gcclFloat32, 1.0f);
  m.fill(2, gcclFloat32, 1.0f);
  // Read through a volatile so the compiler cannot fold it into the loop.
  // (benchmark::DoNotOptimize on a float lvalue is not used here: with GCC 12
  // and Google Benchmark 1.7.1 it handed the kernel a subnormal instead of
  // 0.5, which made every multiply take a microcode assist.)
  volatile float sv = 0.5f;
  const float s = sv;
  for (auto _ : state) {
    triad(static_cast<float*>(m[0]), static_cast<const float*>(m[1]),
          static_cast<const float*>(m[2]), s, n);
    benchmark::DoNotOptimize(m[0]);
    benchmark::ClobberMemory();
  }
  countBytes(state, 3);
}

// dst = a + b on three distinct arrays: the ring AllReduce's pattern.
void BM_Reduce(benchmark::State& state, gcclDataType_t type) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  const size_t n = bytes / typeSize(type);
  Arrays m(3, bytes);
  if (!m.ok()) return state.SkipWithError("out of memory");
  m.fill(1, type, 1.0f);
  m.fill(2, type, 1.0f);
  for (auto _ : state) {
    gccl::kernels::reduce(m[0], m[1], m[2], n, type, gcclSum);
    benchmark::DoNotOptimize(m[0]);
    benchmark::ClobberMemory();
  }
  countBytes(state, 3);
}

// x = x + y: the tree and recursive-doubling pattern. y is small (2^-10), so
// that x grows slowly and, in the 16-bit types, stops growing once y falls
// below half a unit of x: it never overflows.
void BM_ReduceInPlace(benchmark::State& state, gcclDataType_t type) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  const size_t n = bytes / typeSize(type);
  Arrays m(2, bytes);
  if (!m.ok()) return state.SkipWithError("out of memory");
  m.fill(0, type, 1.0f);
  m.fill(1, type, 1.0f / 1024);
  for (auto _ : state) {
    gccl::kernels::reduce(m[0], m[0], m[1], n, type, gcclSum);
    benchmark::DoNotOptimize(m[0]);
    benchmark::ClobberMemory();
  }
  countBytes(state, 3);
}

// x = a*x + sum_{j<k} b_j*y_j through the public entry points: scale() for
// k = 0, axpy() for k = 1, mix() otherwise. With a = 1/2 and the b_j summing
// to 1/2, x stays within the range of the inputs; scale uses a = -1.
void BM_Mix(benchmark::State& state, gcclDataType_t type, int k) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  const size_t n = bytes / typeSize(type);
  Arrays m(k + 1, bytes);
  if (!m.ok()) return state.SkipWithError("out of memory");
  for (int j = 0; j <= k; ++j)
    m.fill(static_cast<size_t>(j), type, 1.0f);
  std::vector<const void*> ys;
  std::vector<double> bs;
  for (int j = 0; j < k; ++j) {
    ys.push_back(m[static_cast<size_t>(j) + 1]);
    bs.push_back(0.5 / k);
  }
  const double a = k == 0 ? -1.0 : 0.5;
  bool ok = true;
  for (auto _ : state) {
    if (k == 0) {
      ok &= gccl::kernels::scale(m[0], a, n, type);
    } else if (k == 1) {
      ok &= gccl::kernels::axpy(m[0], bs[0], ys[0], n, type);
    } else {
      ok &= gccl::kernels::mix(m[0], a, ys.data(), bs.data(), k, n, type);
    }
    benchmark::DoNotOptimize(m[0]);
    benchmark::ClobberMemory();
  }
  if (!ok) return state.SkipWithError("the kernel refused its arguments");
  countBytes(state, k + 2);
}

// Wire codecs (kernels/cpu/codec.h) on a float32 tensor of the argument's
// size (varied values in [-5, 5)): 8-bit quantization (buckets of 1024, round to nearest) and the
// float16 cast. kPass: 0 encode, 1 decode, 2 encode then decode.
void BM_Codec(benchmark::State& state, int codec, int pass) {
  namespace cc = gccl::kernels::codec;
  const size_t bytes = static_cast<size_t>(state.range(0));
  const size_t n = bytes / sizeof(float);
  cc::Params p;
  p.codec = codec == 0 ? cc::Codec::kQuantize : cc::Codec::kCast;
  p.bits = 8;
  p.bucket = 1024;
  p.castTo = gcclFloat16;
  size_t encoded = 0;
  if (cc::encodedBytes(p, n, gcclFloat32, &encoded) != gcclSuccess)
    return state.SkipWithError("bad codec parameters");
  Arrays m(2, bytes);
  Arrays wire(1, encoded);
  if (!m.ok() || !wire.ok()) return state.SkipWithError("out of memory");
  // Varied values (a constant bucket would quantize trivially).
  float* x = static_cast<float*>(m[0]);
  for (size_t i = 0; i < n; ++i)
    x[i] = static_cast<float>((i * 2654435761u) % 1000) * 0.01f - 5.0f;
  bool ok = cc::encode(p, m[0], n, gcclFloat32, wire[0], encoded) == gcclSuccess;
  for (auto _ : state) {
    if (pass != 1) ok &= cc::encode(p, m[0], n, gcclFloat32, wire[0], encoded) == gcclSuccess;
    if (pass != 0) ok &= cc::decode(p, wire[0], encoded, n, gcclFloat32, m[1]) == gcclSuccess;
    benchmark::DoNotOptimize(m[1]);
    benchmark::ClobberMemory();
  }
  if (!ok) return state.SkipWithError("the codec failed");
  const int64_t perPass = static_cast<int64_t>(bytes + encoded);
  state.SetBytesProcessed(state.iterations() * perPass * (pass == 2 ? 2 : 1));
}

// 1 MiB and 16 MiB tensors.
void codecSizes(benchmark::internal::Benchmark* b) {
  b->Arg(1 << 20)->Arg(16 << 20);
}

// 4 KiB .. 64 MiB per array, by factors of 8 (64 MiB included).
void sizes(benchmark::internal::Benchmark* b) {
  b->RangeMultiplier(8)->Range(4 << 10, 64 << 20);
}

BENCHMARK(BM_Memcpy)->Apply(sizes);
BENCHMARK(BM_Triad)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Reduce, f32, gcclFloat32)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Reduce, f16, gcclFloat16)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Reduce, bf16, gcclBfloat16)->Apply(sizes);
BENCHMARK_CAPTURE(BM_ReduceInPlace, f32, gcclFloat32)->Apply(sizes);
BENCHMARK_CAPTURE(BM_ReduceInPlace, f16, gcclFloat16)->Apply(sizes);
BENCHMARK_CAPTURE(BM_ReduceInPlace, bf16, gcclBfloat16)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Mix, f32_scale, gcclFloat32, 0)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Mix, f32_axpy, gcclFloat32, 1)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Mix, f32_k2, gcclFloat32, 2)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Mix, f32_k4, gcclFloat32, 4)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Mix, f32_k8, gcclFloat32, 8)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Mix, f16_axpy, gcclFloat16, 1)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Mix, f16_k4, gcclFloat16, 4)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Mix, bf16_axpy, gcclBfloat16, 1)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Mix, bf16_k4, gcclBfloat16, 4)->Apply(sizes);
// memcpy at 1 MiB too, beside the codecs (16 MiB is in the sizes above).
BENCHMARK(BM_Memcpy)->Arg(1 << 20);
BENCHMARK_CAPTURE(BM_Codec, int8_encode, 0, 0)->Apply(codecSizes);
BENCHMARK_CAPTURE(BM_Codec, int8_decode, 0, 1)->Apply(codecSizes);
BENCHMARK_CAPTURE(BM_Codec, int8_roundtrip, 0, 2)->Apply(codecSizes);
BENCHMARK_CAPTURE(BM_Codec, f16_encode, 1, 0)->Apply(codecSizes);
BENCHMARK_CAPTURE(BM_Codec, f16_decode, 1, 1)->Apply(codecSizes);
BENCHMARK_CAPTURE(BM_Codec, f16_roundtrip, 1, 2)->Apply(codecSizes);

}  // namespace

BENCHMARK_MAIN();
