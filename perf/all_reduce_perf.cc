// all_reduce_perf: gcclAllReduce, as nccl-tests' all_reduce_perf measures it;
// with --codec topk:F, gradient compression instead (gcclTopKAllReduce: each
// rank sends the top F of its entries plus its residual, and the sparse sums
// are checked against the top-k of every rank's input computed here).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "common/options.h"
#include "common/perf.h"

namespace {

using gperf::Bench;
using gperf::Call;

// Top-k's error feedback, one per buffer size (zeroed for the checked call).
std::vector<float> gResidual;

bool topk(const Bench& b) {
  return b.options->codec.codec == gcclCodecTopK;
}

void layout(size_t count, int, gperf::Layout* l) {
  l->sendCount = l->recvCount = l->paramCount = count;
}

gcclResult_t issue(const Bench& b, const Call& c, std::vector<gcclRequest_t>* requests) {
  const size_t n = c.layout.paramCount;
  if (topk(b)) {
    if (gResidual.size() != n || c.checked) gResidual.assign(n, 0.0f);
    return gcclTopKAllReduce(static_cast<const float*>(c.send), gResidual.data(), n,
                             &b.options->codec, c.op, static_cast<float*>(c.recv), nullptr, b.comm,
                             nullptr);
  }
  gcclRequest_t* req = nullptr;
  if (requests != nullptr) req = &requests->emplace_back();
  return gcclAllReduce(c.send, c.recv, n, c.type, c.op, b.comm, nullptr, req);
}

// The sum of every rank's top k of its checked input (the residual is zero
// then): the k largest |value|, ties to the lower index, as the codec selects.
std::vector<double> topkReference(const Bench& b, const Call& c) {
  const size_t n = c.layout.paramCount;
  double k = std::ceil(b.options->codec.topkFraction * static_cast<double>(n));
  const size_t keep = n == 0 ? 0 : std::min(n, std::max<size_t>(1, static_cast<size_t>(k)));
  std::vector<double> sum(n, 0.0), v(n);
  std::vector<size_t> order(n);
  for (int r = 0; r < b.nranks; ++r) {
    for (size_t i = 0; i < n; ++i)
      v[i] = gperf::inputValue(c.gen, r, i);
    std::iota(order.begin(), order.end(), size_t{0});
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                      [&](size_t a, size_t d) {
                        return std::fabs(v[a]) > std::fabs(v[d]) ||
                               (std::fabs(v[a]) == std::fabs(v[d]) && a < d);
                      });
    for (size_t j = 0; j < keep; ++j)
      sum[order[j]] += v[order[j]];
  }
  if (c.op == gcclAvg)
    for (double& s : sum)
      s /= b.nranks;
  return sum;
}

void expected(const Bench& b, const Call& c, size_t begin, size_t n, double* out) {
  if (topk(b)) {
    // Computed once per checked call (its seed names it), then read in chunks.
    static uint64_t seed = ~0ull;
    static size_t count = 0;
    static std::vector<double> ref;
    if (seed != c.gen.seed || count != c.layout.paramCount || begin == 0) {
      ref = topkReference(b, c);
      seed = c.gen.seed;
      count = c.layout.paramCount;
    }
    std::copy(ref.begin() + static_cast<std::ptrdiff_t>(begin),
              ref.begin() + static_cast<std::ptrdiff_t>(begin + n), out);
    return;
  }
  for (size_t k = 0; k < n; ++k)
    out[k] = gperf::reduceInputs(c.gen, c.op, c.type, b.nranks, begin + k);
}

std::vector<std::string> describe(const Bench& b) {
  if (!topk(b)) return {};
  return {"gcclTopKAllReduce: top-k of each rank's gradient plus its residual (error feedback),",
          "  summed by the sparse AllReduce; blocking; float32, sum or avg only"};
}

}  // namespace

int main(int argc, char** argv) {
  gperf::Collective c;
  c.name = "all_reduce";
  c.hasOp = true;
  // Each rank sends and receives 2(n-1)/n of the data in a bandwidth-optimal
  // allreduce, so this factor makes busbw comparable across rank counts.
  c.busFactor = [](int n) { return 2.0 * (n - 1) / n; };
  c.layout = layout;
  c.issue = issue;
  c.expected = expected;
  c.describe = describe;
  c.codecs = gperf::codecBit(gcclCodecTopK);
  return gperf::perfMain(argc, argv, c);
}
