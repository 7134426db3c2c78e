// Gossip topologies: for each step, every rank's out-peers, in-peers and
// mixing weights (include/gccl/gccl.h, "Topologies", documents the kinds).
//
// Built-in graphs are regenerated on each lookup from a few integers per
// schedule step (offset sets, shifts, grid shape) rather than stored as
// per-rank lists: a lookup stays O(degree) while memory stays O(period * p)
// even for the complete graph, whose lists would be O(n^2). Explicit graphs
// (user weights, raw lists) are stored per step as out- and in-lists.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "gccl/gccl.h"

namespace gccl {

struct PeerWeight {
  int peer;
  double weight;
};

class Topology {
 public:
  // Sums of weights may differ from 1 by this much.
  static constexpr double kTolerance = 1e-9;

  // The factories check their arguments, record the reason (prefixed with
  // `call`) and return the error, or fill `out`. They may throw std::bad_alloc.
  static gcclResult_t create(gcclTopologyKind_t kind, int nranks, int peersPerStep,
                             const char* call, std::unique_ptr<Topology>* out);
  // weights as gcclTopologyCreateFromWeights; checked to be column-stochastic.
  static gcclResult_t fromWeights(int nranks, int nsteps, const double* weights, const char* call,
                                  std::unique_ptr<Topology>* out);
  // outLists[s][i]: the out-peers of rank i at schedule step s, kept as
  // given (order, self-loops, duplicates, any weight) so that any graph can
  // be described and validate() judges exactly that; self[s][i]: rank i's
  // self weight. Only shapes and peer ranges are checked here.
  static gcclResult_t fromLists(int nranks,
                                const std::vector<std::vector<std::vector<PeerWeight>>>& outLists,
                                const std::vector<std::vector<double>>& self, const char* call,
                                std::unique_ptr<Topology>* out);

  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  gcclTopologyKind_t kind() const { return kind_; }
  int nranks() const { return n_; }
  int period() const { return period_; }
  // p for gcclTopoExponential, 1 otherwise.
  int peersPerStep() const { return p_; }

  // Replace *out with rank's out-peers at `step` (weights a_{peer,rank}) and
  // set *self = a_{rank,rank}. rank must be in [0, nranks).
  void outPeers(uint64_t step, int rank, std::vector<PeerWeight>* out, double* self) const;
  // Replace *in with the ranks that send to `rank` at `step`, each with the
  // share a_{rank,peer} of its value that `rank` receives.
  void inPeers(uint64_t step, int rank, std::vector<PeerWeight>* in) const;

  // Checks every schedule step (see gcclTopologyValidate); the reason names
  // `call`, the step, the rank and the sum. A success is remembered, so that
  // a collective can afford to call this on every step.
  gcclResult_t validate(gcclMixing_t mixing, const char* call);
  bool validated(gcclMixing_t mixing) const;

  // A 32-bit digest of the whole graph at `step` (every rank's out-peers,
  // their weights and the self weights), the same on every rank that built
  // the same graph whatever its kind: gossip messages carry it, so that ranks
  // that mix with different graphs get an error naming the topology instead
  // of mixed values. Computed once per schedule step.
  uint32_t fingerprint(uint64_t step) const;

  // Fault-tolerant mode: the graph over the ranks flagged in `alive` (one
  // flag per rank), still indexed by the original ranks; the others have no
  // edges. Built-in kinds are built again for the survivors (the i-th
  // survivor plays rank i of a graph of that many ranks); explicit graphs
  // keep their surviving edges, each rank keeping for itself what it gave to
  // the failed (so every column still sums to 1), and a doubly stochastic one
  // is balanced again so that every row does too. Computed once per set of
  // survivors; the same on every rank with the same flags.
  gcclResult_t restrictedTo(const std::vector<uint8_t>& alive,
                            std::shared_ptr<Topology>* out) const;

 private:
  struct Csr {
    std::vector<size_t> start;  // nranks + 1 entries
    std::vector<PeerWeight> edges;
  };
  struct ExplicitStep {
    Csr out, in;
    std::vector<double> self;
  };

  Topology(gcclTopologyKind_t kind, int nranks, int peersPerStep);
  int scheduleStep(uint64_t step) const { return static_cast<int>(step % period_); }
  void circulant(const std::vector<int>& offsets, int rank, std::vector<PeerWeight>* out) const;
  void torus(int rank, std::vector<PeerWeight>* out) const;
  static void transpose(int nranks, ExplicitStep* step);

  gcclTopologyKind_t kind_;
  int n_;
  int p_;
  int period_ = 1;
  bool explicit_ = false;
  // Circulant kinds: per schedule step the sorted distinct non-zero offsets
  // (mod n) of the out-peers, and those of the in-peers (n - offset).
  std::vector<std::vector<int>> outOffsets_, inOffsets_;
  // Bipartite exponential: per schedule step the shift d mod n.
  std::vector<int> shifts_;
  int rows_ = 1, cols_ = 1;  // torus
  std::vector<ExplicitStep> steps_;
  std::atomic<bool> validated_[2] = {false, false};
  mutable std::mutex fingerprintMutex_;
  mutable std::vector<uint64_t> fingerprints_;  // by schedule step; bit 32 set once computed
  mutable std::mutex restrictedMutex_;
  mutable std::vector<std::pair<std::vector<uint8_t>, std::shared_ptr<Topology>>> restricted_;
};

// The checks on enum arguments (the public enums span every int, so any
// value a C caller passes can be checked).
gcclResult_t checkTopologyKind(int kind, const char* call);
gcclResult_t checkMixing(int mixing, const char* call);

// The topology behind a public handle, or the reason it is not one (NULL,
// destroyed, never created). The reference keeps it alive even if another
// thread destroys the handle meanwhile.
gcclResult_t topologyFromHandle(gcclTopology_t topo, const char* call,
                                std::shared_ptr<Topology>* out);

}  // namespace gccl
