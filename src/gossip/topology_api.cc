// The public topology calls: check every argument before touching an output,
// then answer from the Topology behind the handle.
#include <cinttypes>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>

#include "base/check.h"
#include "gossip/topology.h"

namespace gccl {

namespace {

// Live handles. A handle is only a key here (never dereferenced), so a stale
// or garbage one is reported instead of read; the shared_ptr lets a lookup
// outlive a concurrent gcclTopologyDestroy.
std::mutex gTopologyMutex;
std::map<const gcclTopology*, std::shared_ptr<Topology>>& registry() {
  static auto* r = new std::map<const gcclTopology*, std::shared_ptr<Topology>>();
  return *r;
}

gcclResult_t publish(std::unique_ptr<Topology> t, gcclTopology_t* topo) {
  std::shared_ptr<Topology> shared(std::move(t));
  auto* handle = reinterpret_cast<gcclTopology*>(shared.get());
  {
    std::lock_guard<std::mutex> lock(gTopologyMutex);
    registry()[handle] = std::move(shared);
  }
  *topo = handle;
  return gcclSuccess;
}

// Runs an entry point's body, turning an allocation failure (a huge nranks,
// say) into an error instead of an exception escaping through C.
template <class Body>
gcclResult_t guarded(const char* call, Body body) {
  clearThreadLastError();
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return setError(gcclSystemError, "%s: out of memory", call);
  } catch (const std::length_error&) {
    return setError(gcclSystemError, "%s: out of memory", call);
  }
}

enum class Direction { kOut, kIn };

gcclResult_t peers(const char* call, Direction dir, gcclTopology_t topo, uint64_t step, int rank,
                   int maxPeers, int* npeers, int* peerRanks, double* weights, double* selfWeight) {
  std::shared_ptr<Topology> t;
  GCCL_CHECK(topologyFromHandle(topo, call, &t));
  GCCL_REQUIRE(rank >= 0 && rank < t->nranks(), gcclInvalidArgument, "%s: rank %d is not in 0..%d",
               call, rank, t->nranks() - 1);
  GCCL_REQUIRE(maxPeers >= 0, gcclInvalidArgument, "%s: maxPeers %d is negative", call, maxPeers);
  GCCL_REQUIRE(npeers != nullptr, gcclInvalidArgument, "%s: npeers is NULL", call);
  GCCL_REQUIRE(maxPeers == 0 || peerRanks != nullptr, gcclInvalidArgument,
               "%s: peers is NULL with maxPeers %d", call, maxPeers);
  GCCL_REQUIRE(maxPeers == 0 || weights != nullptr, gcclInvalidArgument,
               "%s: weights is NULL with maxPeers %d", call, maxPeers);
  if (dir == Direction::kOut)
    GCCL_REQUIRE(selfWeight != nullptr, gcclInvalidArgument, "%s: selfWeight is NULL", call);

  std::vector<PeerWeight> list;
  double self = 0;
  if (dir == Direction::kOut)
    t->outPeers(step, rank, &list, &self);
  else
    t->inPeers(step, rank, &list);
  GCCL_REQUIRE(list.size() <= static_cast<size_t>(maxPeers), gcclInvalidArgument,
               "%s: rank %d has %zu %s-peers at step %" PRIu64
               ", more than maxPeers %d (nranks - 1 = %d always suffices)",
               call, rank, list.size(), dir == Direction::kOut ? "out" : "in", step, maxPeers,
               t->nranks() - 1);
  for (size_t k = 0; k < list.size(); ++k) {
    peerRanks[k] = list[k].peer;
    weights[k] = list[k].weight;
  }
  *npeers = static_cast<int>(list.size());
  if (dir == Direction::kOut) *selfWeight = self;
  return gcclSuccess;
}

}  // namespace

gcclResult_t topologyFromHandle(gcclTopology_t topo, const char* call,
                                std::shared_ptr<Topology>* out) {
  GCCL_REQUIRE(topo != nullptr, gcclInvalidArgument, "%s: topo is NULL", call);
  std::lock_guard<std::mutex> lock(gTopologyMutex);
  auto it = registry().find(topo);
  GCCL_REQUIRE(it != registry().end(), gcclInvalidUsage,
               "%s: topology %p is not valid (destroyed or never created)", call,
               static_cast<void*>(topo));
  *out = it->second;
  return gcclSuccess;
}

}  // namespace gccl

using namespace gccl;

extern "C" {

gcclResult_t gcclTopologyCreate(gcclTopology_t* topo, gcclTopologyKind_t kind, int nranks,
                                int peersPerStep) {
  const char* call = "gcclTopologyCreate";
  return guarded(call, [&] {
    GCCL_REQUIRE(topo != nullptr, gcclInvalidArgument, "%s: topo is NULL", call);
    GCCL_CHECK(checkTopologyKind(static_cast<int>(kind), call));
    std::unique_ptr<Topology> t;
    GCCL_CHECK(Topology::create(kind, nranks, peersPerStep, call, &t));
    return publish(std::move(t), topo);
  });
}

gcclResult_t gcclTopologyCreateFromWeights(gcclTopology_t* topo, int nranks, int nsteps,
                                           const double* weights) {
  const char* call = "gcclTopologyCreateFromWeights";
  return guarded(call, [&] {
    GCCL_REQUIRE(topo != nullptr, gcclInvalidArgument, "%s: topo is NULL", call);
    std::unique_ptr<Topology> t;
    GCCL_CHECK(Topology::fromWeights(nranks, nsteps, weights, call, &t));
    return publish(std::move(t), topo);
  });
}

gcclResult_t gcclTopologyDestroy(gcclTopology_t topo) {
  const char* call = "gcclTopologyDestroy";
  return guarded(call, [&] {
    std::shared_ptr<Topology> doomed;
    GCCL_REQUIRE(topo != nullptr, gcclInvalidArgument, "%s: topo is NULL", call);
    std::lock_guard<std::mutex> lock(gTopologyMutex);
    auto it = registry().find(topo);
    GCCL_REQUIRE(it != registry().end(), gcclInvalidUsage,
                 "%s: topology %p is not valid (destroyed or never created)", call,
                 static_cast<void*>(topo));
    // Freed after the lock is released (doomed outlives `lock`), or later by
    // a lookup still holding it.
    doomed = std::move(it->second);
    registry().erase(it);
    return gcclSuccess;
  });
}

gcclResult_t gcclTopologyPeriod(gcclTopology_t topo, int* nsteps) {
  const char* call = "gcclTopologyPeriod";
  return guarded(call, [&] {
    std::shared_ptr<Topology> t;
    GCCL_CHECK(topologyFromHandle(topo, call, &t));
    GCCL_REQUIRE(nsteps != nullptr, gcclInvalidArgument, "%s: nsteps is NULL", call);
    *nsteps = t->period();
    return gcclSuccess;
  });
}

gcclResult_t gcclTopologyOutPeers(gcclTopology_t topo, uint64_t step, int rank, int maxPeers,
                                  int* npeers, int* peers, double* weights, double* selfWeight) {
  const char* call = "gcclTopologyOutPeers";
  return guarded(call, [&] {
    return gccl::peers(call, Direction::kOut, topo, step, rank, maxPeers, npeers, peers, weights,
                       selfWeight);
  });
}

gcclResult_t gcclTopologyInPeers(gcclTopology_t topo, uint64_t step, int rank, int maxPeers,
                                 int* npeers, int* peers, double* weights) {
  const char* call = "gcclTopologyInPeers";
  return guarded(call, [&] {
    return gccl::peers(call, Direction::kIn, topo, step, rank, maxPeers, npeers, peers, weights,
                       nullptr);
  });
}

gcclResult_t gcclTopologyValidate(gcclTopology_t topo, gcclMixing_t mixing) {
  const char* call = "gcclTopologyValidate";
  return guarded(call, [&] {
    std::shared_ptr<Topology> t;
    GCCL_CHECK(topologyFromHandle(topo, call, &t));
    GCCL_CHECK(checkMixing(static_cast<int>(mixing), call));
    return t->validate(mixing, call);
  });
}

}  // extern "C"
