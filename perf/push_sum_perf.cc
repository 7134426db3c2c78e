// push_sum_perf: one PushSum (SGP) step per call on the one-peer exponential
// graph, the graph's step advancing with every call as in training.
#include <cmath>
#include <cstdio>
#include <string>

#include "common/gossip_ref.h"
#include "common/options.h"

namespace {

using gperf::Bench;
using gperf::Call;

gcclTopology_t gTopo = nullptr;
// This rank's push-sum weight, carried from step to step like x. On the
// built-in graphs (regular, uniform weights) it stays exactly 1.
double gWeight = 1;

gcclResult_t setup(const Bench& b) {
  gcclResult_t r = gcclTopologyCreate(&gTopo, gcclTopoExponential, b.nranks, 1);
  return r == gcclSuccess ? gcclTopologyValidate(gTopo, gcclMixColumnStochastic) : r;
}

void teardown(const Bench&) {
  gcclTopologyDestroy(gTopo);
}

std::vector<std::string> describe(const Bench&) {
  int period = 1;
  gcclTopologyPeriod(gTopo, &period);
  return {
      "push_sum: one gcclPushSum step per call on the one-peer exponential graph (rank i sends",
      "  to i + 2^(step mod " + std::to_string(period) +
          ")); the step advances with every call; busbw = algbw",
      "in-place: the step on x. out-of-place: the step on x (the send buffer), then the",
      "  de-biased z = x / w written to the receive buffer (gcclPushSumDebias)",
      "-z 0 waits for each step's request before the next call: gcclPushSum reads the",
      "  weight when called, and a step still in flight would be writing it",
  };
}

void layout(size_t count, int, gperf::Layout* l) {
  l->sendCount = l->recvCount = l->paramCount = count;
}

gcclResult_t issue(const Bench& b, const Call& c, std::vector<gcclRequest_t>* requests) {
  void* x = c.inPlace ? c.recv : const_cast<void*>(c.send);
  const size_t n = c.layout.paramCount;
  if (c.checked) gWeight = 1;  // every rank restarts, so the reference knows every w_j
  gcclRequest_t req = nullptr;
  gcclGossipOptions_t opts = gperf::gossipOptions(b);
  gcclResult_t r = gcclPushSumEx(x, n, c.type, &gWeight, gTopo, c.step, &opts, b.comm, nullptr,
                                 requests != nullptr ? &req : nullptr);
  if (r == gcclSuccess && req != nullptr) r = gcclWait(req);
  if (r != gcclSuccess || c.inPlace) return r;
  return gcclPushSumDebias(x, c.recv, n, c.type, gWeight);
}

// w' = a_ii * 1 + sum_j a_ij * 1: every rank's weight was 1 before the step.
double expectedWeight(const gperf::MixWeights& w) {
  double v = w.self;
  for (double a : w.from)
    v += a;
  return v;
}

void expected(const Bench& b, const Call& c, size_t begin, size_t n, double* out) {
  gperf::MixWeights w = gperf::mixWeights(b, gTopo, c.step);
  const double scale = c.inPlace ? 1.0 : 1.0 / expectedWeight(w);
  for (size_t k = 0; k < n; ++k)
    out[k] = gperf::mixedInput(c.gen, w, b.rank, begin + k) * scale;
}

size_t checkWeight(const Bench& b, const Call& c) {
  double want = expectedWeight(gperf::mixWeights(b, gTopo, c.step));
  if (std::fabs(gWeight - want) <= 1e-12) return 0;
  fprintf(stderr, "push_sum_perf: rank %d: push-sum weight %.17g after step %llu, expected %.17g\n",
          b.rank, gWeight, static_cast<unsigned long long>(c.step), want);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  gperf::Collective c;
  c.name = "push_sum";
  c.floatOnly = true;
  c.sendUnchanged = false;  // out of place, x lives in the send buffer
  c.exact = false;
  c.groupable = false;  // de-biasing needs each step's weight, so no grouping
  c.valueRange = 16;
  c.busFactor = [](int) { return 1.0; };
  c.layout = layout;
  c.issue = issue;
  c.expected = expected;
  c.checkExtra = checkWeight;
  c.setup = setup;
  c.teardown = teardown;
  c.describe = describe;
  c.codecs = gperf::gossipCodecs();
  return gperf::perfMain(argc, argv, c);
}
