// gossip_perf: pairwise gossip (SwarmSGD / AD-PSGD style, gcclPairwise*):
// one exchange between two ranks per call, the initiator averaging its model
// with its partner's while the partner's engine serves the request.
//
// The graph is a perfect matching (ranks 2k and 2k+1; a last odd rank has no
// partner and keeps its model), so that an exchange's result is known: both
// models end at (x_i + x_j) / 2. The initiating side of each pair alternates
// with the step. Each call is the exchange (initiator) followed by a barrier,
// so that the served side's model is final when the call returns; the time
// includes that barrier. Out of place, the send buffer is copied to the
// receive buffer first and the exchange runs there. The checked call also
// starts with a barrier (the partner's engine answers an exchange whenever the
// request arrives, so both inputs must be in place before either asks).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/options.h"
#include "common/perf.h"

namespace {

using gperf::Bench;
using gperf::Call;

gcclTopology_t gTopo = nullptr;
gcclPairwise_t gPairwise = nullptr;
// What gPairwise is bound to: it is made again (collectively, every rank
// alike) when a row uses another buffer, count or type.
void* gX = nullptr;
size_t gCount = 0;
gcclDataType_t gType = gcclFloat32;

int partnerOf(int rank, int nranks) {
  int p = rank ^ 1;
  return p < nranks ? p : -1;
}

gcclResult_t setup(const Bench& b) {
  const int n = b.nranks;
  // weights[j * n + i] = a_ji, the share of rank i's value that goes to j.
  std::vector<double> w(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) {
    int p = partnerOf(i, n);
    if (p < 0) {
      w[static_cast<size_t>(i) * n + i] = 1.0;
    } else {
      w[static_cast<size_t>(i) * n + i] = 0.5;
      w[static_cast<size_t>(p) * n + i] = 0.5;
    }
  }
  gcclResult_t r = gcclTopologyCreateFromWeights(&gTopo, n, 1, w.data());
  return r == gcclSuccess ? gcclTopologyValidate(gTopo, gcclMixDoublyStochastic) : r;
}

void teardown(const Bench& b) {
  if (gPairwise != nullptr)
    gperf::checkOrDie(gcclPairwiseDestroy(gPairwise), "gcclPairwiseDestroy", &b);
  gPairwise = nullptr;
  gcclTopologyDestroy(gTopo);
}

std::vector<std::string> describe(const Bench&) {
  return {
      "gossip: one pairwise exchange per call (gcclPairwiseExchange) on a perfect matching",
      "  (ranks 2k and 2k+1; the initiating side alternates with the step), then a barrier;",
      "  both models end at (x_i + x_j) / 2; busbw = algbw (each side's model crosses once)",
      "out-of-place: the send buffer is copied to the receive buffer, the exchange runs there",
  };
}

void layout(size_t count, int, gperf::Layout* l) {
  l->sendCount = l->recvCount = l->paramCount = count;
}

gcclResult_t issue(const Bench& b, const Call& c, std::vector<gcclRequest_t>*) {
  const size_t n = c.layout.paramCount;
  if (!c.inPlace && n > 0) memcpy(c.recv, c.send, n * gperf::typeSize(c.type));
  if (gPairwise == nullptr || gX != c.recv || gCount != n || gType != c.type) {
    if (gPairwise != nullptr) {
      gcclResult_t r = gcclPairwiseDestroy(gPairwise);
      gPairwise = nullptr;
      if (r != gcclSuccess) return r;
    }
    gcclGossipOptions_t opts = gperf::gossipOptions(b);
    gcclResult_t r =
        gcclPairwiseCreateEx(&gPairwise, c.recv, n, c.type, gTopo, 0x5eed, &opts, b.comm);
    if (r != gcclSuccess) return r;
    gX = c.recv;
    gCount = n;
    gType = c.type;
  }
  // The partner's engine may serve an exchange as soon as the request
  // arrives: in the checked call, every model must hold its input first.
  if (c.checked) {
    gcclResult_t r = gcclBarrier(b.comm, nullptr, nullptr);
    if (r != gcclSuccess) return r;
  }
  int partner = partnerOf(b.rank, b.nranks);
  bool lower = partner > b.rank;
  bool initiates = partner >= 0 && ((c.step % 2 == 0) == lower);
  if (initiates) {
    int got = -1;
    gcclResult_t r = gcclPairwiseExchange(gPairwise, c.step, &got);
    if (r != gcclSuccess) return r;
    if (got != partner) {
      fprintf(stderr, "gossip_perf: rank %d exchanged with rank %d, expected %d\n", b.rank, got,
              partner);
      return gcclInternalError;
    }
  }
  return gcclBarrier(b.comm, nullptr, nullptr);
}

void expected(const Bench& b, const Call& c, size_t begin, size_t n, double* out) {
  int partner = partnerOf(b.rank, b.nranks);
  for (size_t k = 0; k < n; ++k) {
    double mine = gperf::inputValue(c.gen, b.rank, begin + k);
    out[k] = partner < 0 ? mine : (mine + gperf::inputValue(c.gen, partner, begin + k)) / 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  gperf::Collective c;
  c.name = "gossip";
  c.floatOnly = true;
  c.exact = false;
  c.groupable = false;
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
