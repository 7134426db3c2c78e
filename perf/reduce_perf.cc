// reduce_perf: gcclReduce, as nccl-tests' reduce_perf measures it.
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
  return gcclReduce(c.send, c.recv, c.layout.paramCount, c.type, c.op, c.root, b.comm, nullptr,
                    req);
}

void expected(const Bench& b, const Call& c, size_t begin, size_t n, double* out) {
  for (size_t k = 0; k < n; ++k)
    out[k] = gperf::reduceInputs(c.gen, c.op, c.type, b.nranks, begin + k);
}

// gcclReduce writes recvbuff on the root only: elsewhere the harness checks
// that it comes back untouched (in place, that the input is intact).
bool outputWritten(const Bench& b, const Call& c) {
  return b.rank == c.root;
}

}  // namespace

int main(int argc, char** argv) {
  gperf::Collective c;
  c.name = "reduce";
  c.hasOp = true;
  c.hasRoot = true;
  c.busFactor = [](int) { return 1.0; };
  c.layout = layout;
  c.issue = issue;
  c.expected = expected;
  c.outputWritten = outputWritten;
  return gperf::perfMain(argc, argv, c);
}
