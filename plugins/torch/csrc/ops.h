// The custom ops (TORCH_LIBRARY namespace gccl): gossip, sparse AllReduce and top-k gradient
// compression, and the topology handles the gossip ops take.
//
// A schema cannot carry a C handle, so the ops name communicators (ProcessGroupGccl.comm_id),
// topologies, overlap-SGP states and pairwise states by integer ids from registries here. The
// push-sum weight is a float64 tensor of one element, updated in place.
#pragma once

#include <cstdint>
#include <vector>

namespace gccl_torch {

// Topologies, for the Python side: kind is a gcclTopologyKind_t.
int64_t topologyCreate(int64_t kind, int64_t nranks, int64_t peersPerStep);
int64_t topologyFromWeights(int64_t nranks, int64_t nsteps, const std::vector<double>& weights);
void topologyDestroy(int64_t topology);
int64_t topologyPeriod(int64_t topology);
// (peers, weights, self weight) of `rank` at `step`.
std::tuple<std::vector<int>, std::vector<double>, double> topologyOutPeers(int64_t topology,
                                                                           int64_t step,
                                                                           int64_t rank);

}  // namespace gccl_torch
