#include "transports/ucx/ucx_transport.h"

#include <poll.h>

#include <algorithm>
#include <cstring>

#include "base/check.h"
#include "base/clock.h"
#include "base/log.h"
#include "transports/ucx/ucx_connection.h"

namespace gccl::ucx {

UcxTransport::UcxTransport(const transport::TransportContext& ctx) : ctx_(ctx) {}
UcxTransport::~UcxTransport() = default;

bool UcxTransport::viable(std::string* why) {
  api_ = loadUcp(why);
  return api_ != nullptr;
}

gcclResult_t UcxTransport::listen(std::string* blob) {
  std::string why;
  if (api_ == nullptr) api_ = loadUcp(&why);
  GCCL_REQUIRE(api_ != nullptr, gcclSystemError, "ucx: %s", why.c_str());
  worker_.reset();
  GCCL_CHECK(Worker::create(api_, ctx_, &worker_));
  Blob b;
  b.rank = static_cast<uint32_t>(ctx_.rank);
  b.commHash = ctx_.commHash;
  memcpy(b.nonce, worker_->nonce(), kNonceBytes);
  b.address = worker_->address();
  describeProcess(&b);
  self_ = b;
  *blob = encodeBlob(b);
  GCCL_REQUIRE(blob->size() <= transport::kMaxAddressBlobBytes, gcclInvalidUsage,
               "ucx: the worker's address takes %zu bytes, more than the %zu a blob may hold "
               "(narrow UCX_TLS or UCX_NET_DEVICES)",
               blob->size(), transport::kMaxAddressBlobBytes);
  GCCL_INFO(kLogInit, "rank %d: %s, worker address of %zu bytes", ctx_.rank, describe().c_str(),
            worker_->address().size());
  return gcclSuccess;
}

bool UcxTransport::canReach(const std::string& mine, const std::string& theirs) const {
  Blob a, b;
  return decodeBlob(mine, &a) && decodeBlob(theirs, &b) && a.commHash == b.commHash;
}

std::string UcxTransport::describe() const {
  return worker_ ? worker_->describe() : std::string("ucx");
}

gcclResult_t UcxTransport::connect(const std::vector<int>& peers,
                                   const std::vector<std::string>& blobs, int64_t deadlineMs,
                                   std::vector<std::unique_ptr<transport::Connection>>* out) {
  GCCL_REQUIRE(worker_ != nullptr, gcclInternalError,
               "the ucx transport connects before it listened");
  if (out->size() < static_cast<size_t>(ctx_.nranks)) out->resize(static_cast<size_t>(ctx_.nranks));
  std::vector<Blob> decoded(peers.size());
  for (size_t i = 0; i < peers.size(); ++i) {
    int p = peers[i];
    GCCL_REQUIRE(
        p >= 0 && p < ctx_.nranks && p != ctx_.rank && static_cast<size_t>(p) < blobs.size(),
        gcclInternalError, "rank %d cannot be a UCX peer of rank %d", p, ctx_.rank);
    GCCL_REQUIRE(
        decodeBlob(blobs[static_cast<size_t>(p)], &decoded[i]) &&
            decoded[i].rank == static_cast<uint32_t>(p) && decoded[i].commHash == ctx_.commHash,
        gcclInvalidUsage, "rank %d's UCX address does not describe a rank of this communicator", p);
    worker_->setPeerNonce(p, decoded[i].nonce);
  }
  // Every connection exists (and is known to the worker) before any HELLO
  // leaves, so a peer's HELLO always finds its connection here.
  std::vector<UcxConnection*> conns;
  for (int p : peers) {
    auto c = std::make_unique<UcxConnection>(worker_, p);
    conns.push_back(c.get());
    (*out)[static_cast<size_t>(p)] = std::move(c);
  }
  for (size_t i = 0; i < peers.size(); ++i)
    GCCL_CHECK(conns[i]->open(decoded[i].address, sameProcessSpace(self_, decoded[i])
                                                      ? static_cast<int>(decoded[i].pid)
                                                      : 0));
  for (;;) {
    worker_->progress();
    std::string waiting;
    for (UcxConnection* c : conns) {
      // One that is ready and broke since (the peer finished its set-up,
      // started and aborted) reports its error to the engine at first use.
      if (c->ready()) continue;
      if (c->broken()) return c->failed();
      if (!c->ready()) waiting += (waiting.empty() ? "" : ", ") + std::to_string(c->peer());
    }
    if (waiting.empty()) return gcclSuccess;
    int64_t left = deadlineMs - nowMs();
    if (left <= 0)
      return setError(gcclTimeout,
                      "rank %d timed out waiting for rank(s) %s to prove the communicator's secret "
                      "over UCX",
                      ctx_.rank, waiting.c_str());
    int efd = -1;
    if (worker_->arm() && api_->ucp_worker_get_efd(worker_->handle(), &efd) == UCS_OK) {
      pollfd pfd{efd, POLLIN, 0};
      (void)::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 100)));
    }
  }
}

}  // namespace gccl::ucx
