// The main demo: every exact collective on N local ranks, checked and timed.
//
//   build/perf/gcclrun -n 4 build/examples/collectives_demo [max-bytes]
//
// Each rank starts from its launcher's environment (gcclCommInitFromEnv).
// For each collective and size, rank 0 prints the median time over the
// iterations (the slowest rank's), the algorithm and bus bandwidths as
// nccl-tests defines them, and whether every rank's result was exact.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "gccl/gccl.h"

namespace {

#define CHECK(call)                                                         \
  do {                                                                      \
    gcclResult_t r_ = (call);                                               \
    if (r_ != gcclSuccess) {                                                \
      fprintf(stderr, "%s failed: %s: %s\n", #call, gcclGetErrorString(r_), \
              gcclGetLastError(nullptr));                                   \
      exit(1);                                                              \
    }                                                                       \
  } while (0)

struct Bench {
  const char* name;
  double busFactor;  // busbw = algbw * busFactor (nccl-tests definitions)
  // Runs one call on `bytes` bytes of float data; returns false if the result is wrong.
  std::function<void(size_t count)> run;
  std::function<bool(size_t count)> verify;
};

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t maxBytes = argc > 1 ? strtoull(argv[1], nullptr, 0) : (16u << 20);
  gcclComm_t comm;
  CHECK(gcclCommInitFromEnv(&comm, nullptr));
  int rank, n;
  CHECK(gcclCommUserRank(comm, &rank));
  CHECK(gcclCommCount(comm, &n));

  size_t maxCount = maxBytes / sizeof(float);
  std::vector<float> send(maxCount * n), recv(maxCount * n);
  auto fill = [&](size_t count) {
    for (size_t i = 0; i < count; ++i)
      send[i] = static_cast<float>((rank + 1) * ((i % 7) + 1));
  };
  double sumRanks = n * (n + 1) / 2.0;
  int root = n - 1, right = (rank + 1) % n, left = (rank + n - 1) % n;
  std::vector<Bench> benches = {
      {"all_reduce", 2.0 * (n - 1) / n,
       [&](size_t c) {
         CHECK(gcclAllReduce(send.data(), recv.data(), c, gcclFloat32, gcclSum, comm, nullptr,
                             nullptr));
       },
       [&](size_t c) {
         for (size_t i = 0; i < c; ++i)
           if (recv[i] != static_cast<float>(sumRanks * ((i % 7) + 1))) return false;
         return true;
       }},
      {"broadcast", 1.0,
       [&](size_t c) {
         CHECK(
             gcclBroadcast(send.data(), recv.data(), c, gcclFloat32, root, comm, nullptr, nullptr));
       },
       [&](size_t c) {
         for (size_t i = 0; i < c; ++i)
           if (recv[i] != static_cast<float>((root + 1) * ((i % 7) + 1))) return false;
         return true;
       }},
      {"reduce", 1.0,
       [&](size_t c) {
         CHECK(gcclReduce(send.data(), recv.data(), c, gcclFloat32, gcclSum, root, comm, nullptr,
                          nullptr));
       },
       [&](size_t c) {
         if (rank != root) return true;
         for (size_t i = 0; i < c; ++i)
           if (recv[i] != static_cast<float>(sumRanks * ((i % 7) + 1))) return false;
         return true;
       }},
      {"all_gather", (n - 1.0) / n,
       [&](size_t c) {
         CHECK(gcclAllGather(send.data(), recv.data(), c / n, gcclFloat32, comm, nullptr, nullptr));
       },
       [&](size_t c) {
         size_t per = c / n;
         for (int r = 0; r < n; ++r)
           for (size_t i = 0; i < per; ++i)
             if (recv[r * per + i] != static_cast<float>((r + 1) * ((i % 7) + 1))) return false;
         return true;
       }},
      {"reduce_scatter", (n - 1.0) / n,
       [&](size_t c) {
         CHECK(gcclReduceScatter(send.data(), recv.data(), c / n, gcclFloat32, gcclSum, comm,
                                 nullptr, nullptr));
       },
       [&](size_t c) {
         size_t per = c / n;
         for (size_t i = 0; i < per; ++i)
           if (recv[i] != static_cast<float>(sumRanks * (((rank * per + i) % 7) + 1))) return false;
         return true;
       }},
      {"sendrecv", 1.0,
       [&](size_t c) {
         CHECK(gcclGroupStart());
         CHECK(gcclSend(send.data(), c, gcclFloat32, right, comm, nullptr, nullptr));
         CHECK(gcclRecv(recv.data(), c, gcclFloat32, left, comm, nullptr, nullptr));
         CHECK(gcclGroupEnd());
       },
       [&](size_t c) {
         for (size_t i = 0; i < c; ++i)
           if (recv[i] != static_cast<float>((left + 1) * ((i % 7) + 1))) return false;
         return true;
       }},
  };

  if (rank == 0) {
    printf("# gccl collectives demo: %d ranks, float32, sizes up to %zu bytes\n", n, maxBytes);
    printf("# %-14s %12s %12s %11s %11s %7s\n", "collective", "size(B)", "time(us)", "algbw(GB/s)",
           "busbw(GB/s)", "check");
  }
  const int warmup = 2, iters = 10;
  int failures = 0;
  for (const Bench& b : benches) {
    for (size_t bytes = 8; bytes <= maxBytes; bytes *= 16) {
      size_t count = std::max<size_t>(bytes / sizeof(float), static_cast<size_t>(n));
      count -= count % n;
      fill(count);
      for (int w = 0; w < warmup; ++w)
        b.run(count);
      std::vector<double> times;
      for (int it = 0; it < iters; ++it) {
        CHECK(gcclBarrier(comm, nullptr, nullptr));
        double t0 = seconds();
        b.run(count);
        times.push_back(seconds() - t0);
      }
      std::sort(times.begin(), times.end());
      double median = times[times.size() / 2];
      // The slowest rank's median, and whether every rank was right.
      CHECK(gcclAllReduce(&median, &median, 1, gcclFloat64, gcclMax, comm, nullptr, nullptr));
      int32_t bad = b.verify(count) ? 0 : 1;
      CHECK(gcclAllReduce(&bad, &bad, 1, gcclInt32, gcclSum, comm, nullptr, nullptr));
      failures += bad;
      double sizeBytes = static_cast<double>(count * sizeof(float));
      double algbw = sizeBytes / median / 1e9;
      if (rank == 0)
        printf("  %-14s %12.0f %12.1f %11.3f %11.3f %7s\n", b.name, sizeBytes, median * 1e6, algbw,
               algbw * b.busFactor, bad ? "WRONG" : "ok");
    }
  }
  CHECK(gcclBarrier(comm, nullptr, nullptr));
  CHECK(gcclCommDestroy(comm));
  if (rank == 0) printf("# %s\n", failures ? "some results were WRONG" : "all results exact");
  return failures ? 1 : 0;
}
