// Helpers of the fault-tolerant mode tests (tests/fault): a fault-tolerant
// communicator, and one PushSum step, blocking or as overlap SGP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "gccl/gccl.h"

namespace gccl::test {

inline gcclResult_t initTolerant(gcclComm_t* comm, int n, const gcclUniqueId& id, int rank,
                                 int timeoutMs) {
  gcclConfig_t cfg = GCCL_CONFIG_INITIALIZER;
  cfg.timeoutMs = timeoutMs;
  cfg.faultTolerant = 1;
  return gcclCommInitRankConfig(comm, n, id, rank, &cfg);
}

// One PushSum step on `count` float32: the blocking call, or overlap SGP's
// Start and Finish on `g` (staleness 0: Finish(k) waits for every message of
// step k).
inline gcclResult_t pushSumStep(bool overlap, gcclGossip_t g, float* x, size_t count, double* w,
                                gcclTopology_t topo, uint64_t step, gcclComm_t comm) {
  if (!overlap) return gcclPushSum(x, count, gcclFloat32, w, topo, step, comm, nullptr, nullptr);
  gcclResult_t r = gcclGossipStart(g, step);
  return r != gcclSuccess ? r : gcclGossipFinish(g, step);
}

// Over UCX's shared-memory transports a process stopped in the middle of a
// send leaves its slot in the receiver's FIFO reserved and never filled:
// everything queued behind it, from every other peer, waits for good, so a
// receiver cut off that way cannot tell the stopped peer from live ones. A
// stopped-rank test means nothing there (killed ranks are fine: the FIFO
// entry is released with the process's mapping).
inline bool stoppedRanksCutOffOthers() {
  const char* transport = getenv("GCCL_TRANSPORT");
  const char* tls = getenv("UCX_TLS");
  return transport != nullptr && strcmp(transport, "ucx") == 0 && tls != nullptr &&
         strstr(tls, "sm") != nullptr;
}

}  // namespace gccl::test
