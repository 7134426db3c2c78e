// Exact top-k on the device: the CPU's selection (kernels/cpu/codec.cc) step by
// step. The k-th largest magnitude by two 16-bit histogram passes over the
// magnitudes' bits, walked from the top as the CPU walks them; then every
// element above it, and the first of those equal to it (in index order)
// until k are kept, placed by prefix counts over tiles so that the kept
// entries come out in ascending index order. kThreshold: the threshold of a
// seeded sample (the same draws as the CPU), every element at or above it,
// or the exact top-k when those are more than k. Every kernel after the finite
// check does nothing when the check failed, so the residual stays as it was.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "base/check.h"
#include "kernels/cuda/codec_detail.cuh"

namespace gccl::cuda::codec::detail {
namespace {

__host__ __device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t hostStreamKey(uint64_t seed) {
  return mix64(seed ^ 0x6A09E667F3BCC909ull);
}

constexpr size_t kTile = kThreads * 16;  // elements per block in the selection pass

struct TopKScratch {
  unsigned long long hist[1 << 16];
  uint32_t hi;
  uint32_t threshold;
  unsigned long long need;
  unsigned long long ties;
  unsigned long long kept;         // entries the encoding holds (k, or fewer for kThreshold)
  uint32_t sampleThreshold;        // kThreshold: the sample's estimate
  unsigned long long sampleCount;  // kThreshold: elements at or above it
  // Then per tile: elements above the threshold, equal to it (counts, then
  // exclusive prefixes).
};

__device__ __forceinline__ uint32_t magnitudeBits(float v) {
  return __float_as_uint(v) & 0x7fffffffu;
}

__global__ void topkCheckKernel(const float* __restrict x, const float* __restrict r, size_t n,
                                Status* status) {
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * kThreads) {
    if (nonFinite(__fadd_rn(x[i], r[i]))) recordMin(&status->element, i);
  }
}

__global__ void topkAccumulateKernel(const float* __restrict x, float* __restrict r, size_t n,
                                     const Status* status) {
  if (status->element != kNone) return;
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * kThreads) {
    r[i] = __fadd_rn(x[i], r[i]);
  }
}

// pass 0: histogram of the top 16 magnitude bits; pass 1: of the low 16 bits
// of those whose top bits are s->hi.
__global__ void topkHistKernel(const float* __restrict acc, size_t n, TopKScratch* s, int pass,
                               const Status* status) {
  if (status->element != kNone) return;
  const uint32_t hi = pass == 0 ? 0 : s->hi;
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * kThreads) {
    const uint32_t m = magnitudeBits(acc[i]);
    if (pass == 0) {
      atomicAdd(&s->hist[m >> 16], 1ull);
    } else if ((m >> 16) == hi) {
      atomicAdd(&s->hist[m & 0xffff], 1ull);
    }
  }
}

// The CPU's walk down the histogram, one thread; pass 1 also clears the
// histogram for the next pass.
__global__ void topkWalkKernel(TopKScratch* s, size_t k, int pass, const Status* status) {
  if (status->element != kNone) return;
  unsigned long long need = pass == 0 ? k : s->need;
  uint32_t v = 0xffff;
  while (s->hist[v] < need) {
    need -= s->hist[v];
    --v;
  }
  s->need = need;
  if (pass == 0) {
    s->hi = v;
    for (uint32_t j = 0; j < (1u << 16); ++j)
      s->hist[j] = 0;
  } else {
    s->threshold = s->hi << 16 | v;
    s->ties = need;
    s->kept = k;
  }
}

__global__ void __launch_bounds__(kThreads)
    topkCountKernel(const float* __restrict acc, size_t n, const TopKScratch* s,
                    unsigned long long* above, unsigned long long* equal, const Status* status) {
  if (status->element != kNone) return;
  __shared__ unsigned sAbove, sEqual;
  const uint32_t t = s->threshold;
  const size_t tiles = (n + kTile - 1) / kTile;
  for (size_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    if (threadIdx.x == 0) sAbove = sEqual = 0;
    __syncthreads();
    unsigned a = 0, e = 0;
    const size_t end = (tile + 1) * kTile < n ? (tile + 1) * kTile : n;
    for (size_t i = tile * kTile + threadIdx.x; i < end; i += kThreads) {
      const uint32_t m = magnitudeBits(acc[i]);
      a += m > t;
      e += m == t;
    }
    atomicAdd(&sAbove, a);
    atomicAdd(&sEqual, e);
    __syncthreads();
    if (threadIdx.x == 0) {
      above[tile] = sAbove;
      equal[tile] = sEqual;
    }
    __syncthreads();
  }
}

__global__ void topkScanKernel(size_t tiles, unsigned long long* above, unsigned long long* equal,
                               const Status* status) {
  if (status->element != kNone) return;
  unsigned long long a = 0, e = 0;
  for (size_t j = 0; j < tiles; ++j) {
    const unsigned long long ta = above[j], te = equal[j];
    above[j] = a;
    equal[j] = e;
    a += ta;
    e += te;
  }
}

// Each tile in index order, 256 elements a round: an element above the
// threshold, or equal to it with fewer than `ties` equal ones before it, is
// kept at position (above before it) + min(equal before it, ties).
__global__ void __launch_bounds__(kThreads)
    topkSelectKernel(float* __restrict acc, size_t n, const TopKScratch* s,
                     const unsigned long long* above, const unsigned long long* equal,
                     uint8_t* __restrict out, const Status* status) {
  if (status->element != kNone) return;
  __shared__ unsigned wAbove[kThreads / 32], wEqual[kThreads / 32];
  __shared__ unsigned long long baseAbove, baseEqual;
  const uint32_t t = s->threshold;
  const unsigned long long ties = s->ties;
  auto* indices = reinterpret_cast<uint32_t*>(out + 8);
  auto* values = reinterpret_cast<float*>(out + 8 + 4 * s->kept);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned below = (1u << lane) - 1;
  const size_t tiles = (n + kTile - 1) / kTile;
  for (size_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    if (threadIdx.x == 0) {
      baseAbove = above[tile];
      baseEqual = equal[tile];
    }
    __syncthreads();
    const size_t end = (tile + 1) * kTile < n ? (tile + 1) * kTile : n;
    for (size_t round = tile * kTile; round < end; round += kThreads) {
      const size_t i = round + threadIdx.x;
      const uint32_t m = i < end ? magnitudeBits(acc[i]) : 0;
      const bool isAbove = i < end && m > t;
      const bool isEqual = i < end && m == t;
      const unsigned ba = __ballot_sync(0xffffffffu, isAbove);
      const unsigned be = __ballot_sync(0xffffffffu, isEqual);
      if (lane == 0) {
        wAbove[warp] = __popc(ba);
        wEqual[warp] = __popc(be);
      }
      __syncthreads();
      unsigned long long pa = baseAbove, pe = baseEqual;
      for (unsigned w = 0; w < warp; ++w) {
        pa += wAbove[w];
        pe += wEqual[w];
      }
      pa += __popc(ba & below);
      pe += __popc(be & below);
      if (isAbove || (isEqual && pe < ties)) {
        const unsigned long long pos = pa + (pe < ties ? pe : ties);
        indices[pos] = static_cast<uint32_t>(i);
        values[pos] = acc[i];
        acc[i] = 0.0f;
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        for (unsigned w = 0; w < kThreads / 32; ++w) {
          baseAbove += wAbove[w];
          baseEqual += wEqual[w];
        }
      }
      __syncthreads();
    }
  }
}

__global__ void topkHeaderKernel(uint8_t* out, const TopKScratch* s, const Status* status) {
  if (status->element != kNone) return;
  const uint64_t kept = s == nullptr ? 0 : s->kept;
  memcpy(out, &kept, 8);
}

// kThreshold: the sampled magnitudes, as codec.cc draws them.
__global__ void topkSampleKernel(const float* __restrict acc, size_t count, size_t samples,
                                 uint64_t key, float* __restrict sample, const Status* status) {
  if (status->element != kNone) return;
  for (size_t j = blockIdx.x * size_t{kThreads} + threadIdx.x; j < samples;
       j += size_t{gridDim.x} * kThreads) {
    const uint64_t i = samples == count ? j : mix64(key + j * 0x9E3779B97F4A7C15ull) % count;
    sample[j] = acc[i];
  }
}

// kThreshold, after the count pass over the sample's threshold: keeps that
// threshold's total; then, once the exact threshold is known, picks. More
// than k at or above the estimate: the exact top-k (the CPU trims them to
// it, ties to the lower index); else all of them.
__global__ void topkThresholdKernel(TopKScratch* s, size_t tiles, const unsigned long long* above,
                                    const unsigned long long* equal, size_t k, int step,
                                    const Status* status) {
  if (status->element != kNone) return;
  if (step == 0) {
    unsigned long long total = 0;
    for (size_t j = 0; j < tiles; ++j)
      total += above[j] + equal[j];
    s->sampleThreshold = s->threshold;
    s->sampleCount = total;
  } else if (s->sampleCount <= k) {
    s->threshold = s->sampleThreshold;
    s->ties = ~0ull;
    s->kept = s->sampleCount;
  }
}

// Decode: check every entry first (nothing is written on failure), then
// zero the tensor and scatter.
__global__ void topkDecodeCheckKernel(const uint8_t* __restrict in, size_t inBytes, size_t count,
                                      size_t k, Status* status) {
  uint64_t kept;
  memcpy(&kept, in, 8);
  if (kept > k || inBytes < 8 + 8 * kept) {
    if (blockIdx.x == 0 && threadIdx.x == 0) status->entry = kNone - 1;
    return;
  }
  const auto* idx = reinterpret_cast<const uint32_t*>(in + 8);
  for (size_t j = blockIdx.x * size_t{kThreads} + threadIdx.x; j < kept;
       j += size_t{gridDim.x} * kThreads) {
    if (!(idx[j] < count && (j == 0 || idx[j] > idx[j - 1]))) recordMin(&status->entry, j);
  }
}

__global__ void topkDecodeKernel(const uint8_t* __restrict in, size_t count, float* __restrict dst,
                                 int phase, const Status* status) {
  if (status->entry != kNone) return;
  uint64_t kept;
  memcpy(&kept, in, 8);
  const auto* idx = reinterpret_cast<const uint32_t*>(in + 8);
  const auto* val = reinterpret_cast<const float*>(in + 8 + 4 * kept);
  const size_t n = phase == 0 ? count : kept;
  for (size_t j = blockIdx.x * size_t{kThreads} + threadIdx.x; j < n;
       j += size_t{gridDim.x} * kThreads) {
    if (phase == 0) {
      dst[j] = 0.0f;
    } else {
      dst[idx[j]] = val[j];
    }
  }
}
}  // namespace

gcclResult_t topkEncode(const Params& p, const float* x, size_t count, uint8_t* out,
                        float* residual, Status* status, cudaStream_t stream) {
  const unsigned grid = gridFor(count);
  if (p.k == 0) {
    topkCheckKernel<<<grid, kThreads, 0, stream>>>(x, residual, count, status);
    topkAccumulateKernel<<<grid, kThreads, 0, stream>>>(x, residual, count, status);
    topkHeaderKernel<<<1, 1, 0, stream>>>(out, nullptr, status);
    return lastLaunch();
  }
  // Scratch first: a failure here must leave the residual as it was.
  const size_t tiles = (count + kTile - 1) / kTile;
  // kThreshold with k < count samples; else the exact selection (as codec.cc).
  const bool sampled = p.select == TopKSelect::kThreshold && p.k < count;
  const size_t samples = sampled ? (p.sample < count ? p.sample : count) : 0;
  const size_t bytes =
      sizeof(TopKScratch) + 2 * tiles * sizeof(unsigned long long) + samples * sizeof(float);
  void* mem = nullptr;
  GCCL_CHECK(cudaResult(cudaMallocAsync(&mem, bytes, stream), "cudaMallocAsync"));
  topkCheckKernel<<<grid, kThreads, 0, stream>>>(x, residual, count, status);
  topkAccumulateKernel<<<grid, kThreads, 0, stream>>>(x, residual, count, status);
  auto* s = static_cast<TopKScratch*>(mem);
  auto* above =
      reinterpret_cast<unsigned long long*>(static_cast<uint8_t*>(mem) + sizeof(TopKScratch));
  auto* equal = above + tiles;
  auto* sample = reinterpret_cast<float*>(equal + tiles);
  const unsigned tileGrid = gridForBlocks(tiles);
  gcclResult_t res = gcclSuccess;
  if (sampled) {
    // The rank-th largest sampled magnitude, rank as codec.cc computes it.
    const double want = std::ceil(1.1 * static_cast<double>(p.k) * static_cast<double>(samples) /
                                  static_cast<double>(count));
    size_t rank = want < 1 ? 1 : static_cast<size_t>(want);
    rank = rank < samples ? rank : samples;
    res = cudaResult(cudaMemsetAsync(s->hist, 0, sizeof s->hist, stream), "cudaMemsetAsync");
    if (res == gcclSuccess) {
      const unsigned sampleGrid = gridFor(samples);
      topkSampleKernel<<<sampleGrid, kThreads, 0, stream>>>(
          residual, count, samples, hostStreamKey(p.seed ^ 0x243F6A8885A308D3ull), sample, status);
      topkHistKernel<<<sampleGrid, kThreads, 0, stream>>>(sample, samples, s, 0, status);
      topkWalkKernel<<<1, 1, 0, stream>>>(s, rank, 0, status);
      topkHistKernel<<<sampleGrid, kThreads, 0, stream>>>(sample, samples, s, 1, status);
      topkWalkKernel<<<1, 1, 0, stream>>>(s, rank, 1, status);
      topkCountKernel<<<tileGrid, kThreads, 0, stream>>>(residual, count, s, above, equal, status);
      topkThresholdKernel<<<1, 1, 0, stream>>>(s, tiles, above, equal, p.k, 0, status);
      res = lastLaunch();
    }
  }
  if (res == gcclSuccess) {
    res = cudaResult(cudaMemsetAsync(s->hist, 0, sizeof s->hist, stream), "cudaMemsetAsync");
  }
  if (res == gcclSuccess) {
    topkHistKernel<<<grid, kThreads, 0, stream>>>(residual, count, s, 0, status);
    topkWalkKernel<<<1, 1, 0, stream>>>(s, p.k, 0, status);
    topkHistKernel<<<grid, kThreads, 0, stream>>>(residual, count, s, 1, status);
    topkWalkKernel<<<1, 1, 0, stream>>>(s, p.k, 1, status);
    if (sampled) topkThresholdKernel<<<1, 1, 0, stream>>>(s, tiles, above, equal, p.k, 1, status);
    topkCountKernel<<<tileGrid, kThreads, 0, stream>>>(residual, count, s, above, equal, status);
    topkScanKernel<<<1, 1, 0, stream>>>(tiles, above, equal, status);
    topkSelectKernel<<<tileGrid, kThreads, 0, stream>>>(residual, count, s, above, equal, out,
                                                        status);
    topkHeaderKernel<<<1, 1, 0, stream>>>(out, s, status);
    res = lastLaunch();
  }
  const gcclResult_t freed = cudaResult(cudaFreeAsync(mem, stream), "cudaFreeAsync");
  return res != gcclSuccess ? res : freed;
}

gcclResult_t topkDecode(const Params& p, const uint8_t* in, size_t inBytes, size_t count,
                        float* dst, Status* status, cudaStream_t stream) {
  const unsigned grid = gridFor(p.k > count ? p.k : count);
  topkDecodeCheckKernel<<<gridFor(p.k), kThreads, 0, stream>>>(in, inBytes, count, p.k, status);
  topkDecodeKernel<<<grid, kThreads, 0, stream>>>(in, count, dst, 0, status);
  topkDecodeKernel<<<grid, kThreads, 0, stream>>>(in, count, dst, 1, status);
  return lastLaunch();
}

}  // namespace gccl::cuda::codec::detail
