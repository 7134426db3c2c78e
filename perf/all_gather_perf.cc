// all_gather_perf: gcclAllGather, as nccl-tests' all_gather_perf measures it.
// A row's size is the gathered (receive) buffer; its count is per rank.
#include "common/perf.h"

namespace {

using gperf::Bench;
using gperf::Call;

void layout(size_t count, int nranks, gperf::Layout* l) {
  size_t per = count / static_cast<size_t>(nranks);
  l->sendCount = l->paramCount = l->sendInPlaceOffset = per;
  l->recvCount = per * static_cast<size_t>(nranks);
  l->recvInPlaceOffset = 0;
}

gcclResult_t issue(const Bench& b, const Call& c, std::vector<gcclRequest_t>* requests) {
  gcclRequest_t* req = nullptr;
  if (requests != nullptr) req = &requests->emplace_back();
  return gcclAllGather(c.send, c.recv, c.layout.paramCount, c.type, b.comm, nullptr, req);
}

void expected(const Bench&, const Call& c, size_t begin, size_t n, double* out) {
  const size_t per = c.layout.sendCount;
  for (size_t k = 0; k < n; ++k) {
    size_t i = begin + k;
    out[k] = gperf::inputValue(c.gen, static_cast<int>(i / per), i % per);
  }
}

}  // namespace

int main(int argc, char** argv) {
  gperf::Collective c;
  c.name = "all_gather";
  // Each rank receives the (n-1)/n of the result that it did not have.
  c.busFactor = [](int n) { return (n - 1.0) / n; };
  c.layout = layout;
  c.issue = issue;
  c.expected = expected;
  return gperf::perfMain(argc, argv, c);
}
