// broadcast_perf: gcclBroadcast, as nccl-tests' broadcast_perf measures it.
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
  return gcclBroadcast(c.send, c.recv, c.layout.paramCount, c.type, c.root, b.comm, nullptr, req);
}

// Every rank filled its own input; only the root's may arrive.
void expected(const Bench&, const Call& c, size_t begin, size_t n, double* out) {
  for (size_t k = 0; k < n; ++k)
    out[k] = gperf::inputValue(c.gen, c.root, begin + k);
}

}  // namespace

int main(int argc, char** argv) {
  gperf::Collective c;
  c.name = "broadcast";
  c.hasRoot = true;
  c.busFactor = [](int) { return 1.0; };
  c.layout = layout;
  c.issue = issue;
  c.expected = expected;
  return gperf::perfMain(argc, argv, c);
}
