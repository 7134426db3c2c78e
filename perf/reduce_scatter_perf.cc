// reduce_scatter_perf: gcclReduceScatter, as nccl-tests' reduce_scatter_perf
// measures it. A row's size is the (whole) send buffer; its count is per rank.
#include "common/perf.h"

namespace {

using gperf::Bench;
using gperf::Call;

void layout(size_t count, int nranks, gperf::Layout* l) {
  size_t per = count / static_cast<size_t>(nranks);
  l->sendCount = per * static_cast<size_t>(nranks);
  l->recvCount = l->paramCount = l->recvInPlaceOffset = per;
  l->sendInPlaceOffset = 0;
}

gcclResult_t issue(const Bench& b, const Call& c, std::vector<gcclRequest_t>* requests) {
  gcclRequest_t* req = nullptr;
  if (requests != nullptr) req = &requests->emplace_back();
  return gcclReduceScatter(c.send, c.recv, c.layout.paramCount, c.type, c.op, b.comm, nullptr, req);
}

// This rank's block of the reduction of every rank's whole input.
void expected(const Bench& b, const Call& c, size_t begin, size_t n, double* out) {
  const size_t base = static_cast<size_t>(b.rank) * c.layout.recvCount;
  for (size_t k = 0; k < n; ++k)
    out[k] = gperf::reduceInputs(c.gen, c.op, c.type, b.nranks, base + begin + k);
}

}  // namespace

int main(int argc, char** argv) {
  gperf::Collective c;
  c.name = "reduce_scatter";
  c.hasOp = true;
  // Each rank sends the (n-1)/n of the input that other ranks reduce.
  c.busFactor = [](int n) { return (n - 1.0) / n; };
  c.layout = layout;
  c.issue = issue;
  c.expected = expected;
  return gperf::perfMain(argc, argv, c);
}
