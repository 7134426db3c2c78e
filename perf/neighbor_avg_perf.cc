// neighbor_avg_perf: one neighbour-averaging (D-PSGD) step per call on the
// ring, the graph's step advancing with every call.
#include <cstdio>
#include <string>

#include "common/gossip_ref.h"

namespace {

using gperf::Bench;
using gperf::Call;

gcclTopology_t gTopo = nullptr;

gcclResult_t setup(const Bench& b) {
  gcclResult_t r = gcclTopologyCreate(&gTopo, gcclTopoRing, b.nranks, 1);
  return r == gcclSuccess ? gcclTopologyValidate(gTopo, gcclMixDoublyStochastic) : r;
}

void teardown(const Bench&) {
  gcclTopologyDestroy(gTopo);
}

std::vector<std::string> describe(const Bench& b) {
  gperf::MixWeights w = gperf::mixWeights(b, gTopo, 0);
  char self[32];
  snprintf(self, sizeof(self), "%.4g", w.self);
  return {
      "neighbor_avg: one gcclNeighborAverage step per call on the ring (" +
          std::to_string(w.peers.size()) + " neighbours, self weight " + self + "); busbw = algbw",
  };
}

void layout(size_t count, int, gperf::Layout* l) {
  l->sendCount = l->recvCount = l->paramCount = count;
}

gcclResult_t issue(const Bench& b, const Call& c, std::vector<gcclRequest_t>* requests) {
  gcclRequest_t* req = nullptr;
  if (requests != nullptr) req = &requests->emplace_back();
  gcclGossipOptions_t opts = gperf::gossipOptions(b);
  return gcclNeighborAverageEx(c.send, c.recv, c.layout.paramCount, c.type, gTopo, c.step, &opts,
                               b.comm, nullptr, req);
}

void expected(const Bench& b, const Call& c, size_t begin, size_t n, double* out) {
  gperf::MixWeights w = gperf::mixWeights(b, gTopo, c.step);
  for (size_t k = 0; k < n; ++k)
    out[k] = gperf::mixedInput(c.gen, w, b.rank, begin + k);
}

}  // namespace

int main(int argc, char** argv) {
  gperf::Collective c;
  c.name = "neighbor_avg";
  c.floatOnly = true;
  c.exact = false;
  c.valueRange = 16;
  c.busFactor = [](int) { return 1.0; };
  c.layout = layout;
  c.issue = issue;
  c.codecs = gperf::gossipCodecs();
  c.expected = expected;
  c.setup = setup;
  c.teardown = teardown;
  c.describe = describe;
  return gperf::perfMain(argc, argv, c);
}
