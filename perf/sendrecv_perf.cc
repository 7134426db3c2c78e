// sendrecv_perf: every rank sends to the next rank and receives from the
// previous one in one group, as nccl-tests' sendrecv_perf does.
#include "common/perf.h"

namespace {

using gperf::Bench;
using gperf::Call;

void layout(size_t count, int, gperf::Layout* l) {
  l->sendCount = l->recvCount = l->paramCount = count;
}

gcclResult_t issue(const Bench& b, const Call& c, std::vector<gcclRequest_t>* requests) {
  const int right = (b.rank + 1) % b.nranks;
  const int left = (b.rank + b.nranks - 1) % b.nranks;
  gcclRequest_t* sendReq = nullptr;
  gcclRequest_t* recvReq = nullptr;
  if (requests != nullptr) {
    requests->resize(requests->size() + 2);
    sendReq = &requests->end()[-2];
    recvReq = &requests->end()[-1];
  }
  // One group, so that every rank's send and receive start together and the
  // ring cannot deadlock.
  gcclResult_t r = gcclGroupStart();
  if (r != gcclSuccess) return r;
  gcclResult_t rs = gcclSend(c.send, c.layout.paramCount, c.type, right, b.comm, nullptr, sendReq);
  gcclResult_t rr = gcclRecv(c.recv, c.layout.paramCount, c.type, left, b.comm, nullptr, recvReq);
  r = gcclGroupEnd();
  return rs != gcclSuccess ? rs : (rr != gcclSuccess ? rr : r);
}

void expected(const Bench& b, const Call& c, size_t begin, size_t n, double* out) {
  const int left = (b.rank + b.nranks - 1) % b.nranks;
  for (size_t k = 0; k < n; ++k)
    out[k] = gperf::inputValue(c.gen, left, begin + k);
}

}  // namespace

int main(int argc, char** argv) {
  gperf::Collective c;
  c.name = "sendrecv";
  c.busFactor = [](int) { return 1.0; };
  c.layout = layout;
  c.issue = issue;
  c.expected = expected;
  return gperf::perfMain(argc, argv, c);
}
