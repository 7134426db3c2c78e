// Started by a real `mpirun -np N`: every rank finds its place from Open MPI's
// environment alone (gcclCommInitFromEnv), then checks an AllReduce and a
// Broadcast. Exits 0 on success.
#include <cstdio>
#include <vector>

#include "gccl/gccl.h"

#define CHECK(call)                                                         \
  do {                                                                      \
    gcclResult_t r_ = (call);                                               \
    if (r_ != gcclSuccess) {                                                \
      fprintf(stderr, "%s failed: %s: %s\n", #call, gcclGetErrorString(r_), \
              gcclGetLastError(nullptr));                                   \
      return 1;                                                             \
    }                                                                       \
  } while (0)

int main() {
  gcclComm_t comm;
  CHECK(gcclCommInitFromEnv(&comm, nullptr));
  int rank, n;
  CHECK(gcclCommUserRank(comm, &rank));
  CHECK(gcclCommCount(comm, &n));
  std::vector<double> v(100000, rank + 1.0);
  CHECK(gcclAllReduce(v.data(), v.data(), v.size(), gcclFloat64, gcclSum, comm, nullptr, nullptr));
  for (double x : v)
    if (x != n * (n + 1) / 2.0) {
      fprintf(stderr, "rank %d: AllReduce gave %g\n", rank, x);
      return 1;
    }
  int token = rank == n - 1 ? 7331 : 0;
  CHECK(gcclBroadcast(&token, &token, 1, gcclInt32, n - 1, comm, nullptr, nullptr));
  if (token != 7331) {
    fprintf(stderr, "rank %d: Broadcast gave %d\n", rank, token);
    return 1;
  }
  CHECK(gcclCommDestroy(comm));
  printf("rank %d of %d: ok\n", rank, n);
  return 0;
}
