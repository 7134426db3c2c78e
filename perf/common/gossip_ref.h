// The reference for the gossip binaries: one mixing step computed here from
// the topology's own weights (gcclTopologyInPeers), so that the check does
// not trust the library's mixing code to check itself.
#pragma once

#include <cstdint>
#include <vector>

#include "common/perf.h"

namespace gperf {

struct MixWeights {
  double self = 1;           // a_ii
  std::vector<int> peers;    // in-peers j of this rank at the step
  std::vector<double> from;  // a_ij: the share of j's value this rank receives
};

// This rank's row of the mixing matrix at `step`; exits on error.
MixWeights mixWeights(const Bench& b, gcclTopology_t topo, uint64_t step);

// a_ii * x_rank[index] + sum_j a_ij * x_j[index], with x as the check's inputs.
double mixedInput(const ValueGen& g, const MixWeights& w, int rank, size_t index);

}  // namespace gperf
