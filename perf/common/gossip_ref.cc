#include "common/gossip_ref.h"

namespace gperf {

MixWeights mixWeights(const Bench& b, gcclTopology_t topo, uint64_t step) {
  MixWeights w;
  const int cap = b.nranks > 1 ? b.nranks - 1 : 1;
  std::vector<int> outPeers(static_cast<size_t>(cap));
  std::vector<double> outWeights(static_cast<size_t>(cap));
  int n = 0;
  checkOrDie(gcclTopologyOutPeers(topo, step, b.rank, cap, &n, outPeers.data(), outWeights.data(),
                                  &w.self),
             "gcclTopologyOutPeers", &b);
  w.peers.resize(static_cast<size_t>(cap));
  w.from.resize(static_cast<size_t>(cap));
  checkOrDie(gcclTopologyInPeers(topo, step, b.rank, cap, &n, w.peers.data(), w.from.data()),
             "gcclTopologyInPeers", &b);
  w.peers.resize(static_cast<size_t>(n));
  w.from.resize(static_cast<size_t>(n));
  return w;
}

double mixedInput(const ValueGen& g, const MixWeights& w, int rank, size_t index) {
  double v = w.self * inputValue(g, rank, index);
  for (size_t j = 0; j < w.peers.size(); ++j)
    v += w.from[j] * inputValue(g, w.peers[j], index);
  return v;
}

}  // namespace gperf
