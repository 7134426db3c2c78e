// all_reduce_perf: gcclAllReduce, as nccl-tests' all_reduce_perf measures it.
#include "common/perf.h"

namespace {

using gperf::Bench;
using gperf::Call;

void layout(size_t count, int, gperf::Layout* l) {
  l->sendCount = l->recvCount = l->paramCount = count;
}

gcclResult_t issue(const Bench& b, const Call& c, std::vector<gcclRequest_t>* requests) {
  gcclRequest_t* req = nullptr;
  if (requests != nullptr) req = &requests->emplace_back();
  return gcclAllReduce(c.send, c.recv, c.layout.paramCount, c.type, c.op, b.comm, nullptr, req);
}

void expected(const Bench& b, const Call& c, size_t begin, size_t n, double* out) {
  for (size_t k = 0; k < n; ++k)
    out[k] = gperf::reduceInputs(c.gen, c.op, c.type, b.nranks, begin + k);
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
  return gperf::perfMain(argc, argv, c);
}
