#include "transports/ucx/ucx_connection.h"

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/check.h"
#include "base/clock.h"
#include "base/hmac.h"
#include "base/log.h"

namespace gccl::ucx {

using transport::MessageMeta;
using transport::Request;
using transport::RequestState;

namespace {
// How long a destroyed connection lets UCX flush what it accepted (the
// goodbye, sends the engine saw complete) before it closes by force.
constexpr int64_t kCloseFlushMs = 1000;
// The same after an abort notice (a peer may have stopped: do not wait long).
constexpr int64_t kAbortFlushMs = 100;
// How long cancel() waits for UCX to withdraw a rendezvous receive from a live peer.
constexpr int64_t kCancelWaitMs = 200;
}  // namespace

UcxConnection::UcxConnection(std::shared_ptr<Worker> worker, int peer)
    : worker_(std::move(worker)), api_(worker_->api()), peer_(peer) {
  worker_->attach(this, peer_);
}

UcxConnection::~UcxConnection() {
  if (pidfd_ >= 0) {
    if (pidWatched_ && worker_->context().poller != nullptr)
      worker_->context().poller->unwatch(pidfd_);
    close(pidfd_);
  }
  // Nothing of the peer's reaches this connection any more.
  worker_->detach(this, peer_);
  // The requests and buffers of what is in flight may be gone already (the
  // engine frees its operations before their connections): nothing that
  // completes from here on touches a request, and receives are withdrawn
  // before the endpoint is flushed.
  std::vector<Op*> inFlight = live_;  // a cancel may complete (and release) at once
  for (Op* op : inFlight) {
    op->req = nullptr;
    if (op->type == Op::kReceive && op->ucpRequest != nullptr)
      api_.ucp_request_cancel(worker_->handle(), op->ucpRequest);
  }
  // Held data and descriptors go back to UCX (a declined rendezvous is
  // released with ucp_am_data_release too).
  for (const Arrival& a : arrivals_)
    api_.ucp_am_data_release(worker_->handle(), a.data);
  for (const Arrival& a : toFetch_)
    api_.ucp_am_data_release(worker_->handle(), a.data);
  arrivals_.clear();
  toFetch_.clear();
  if (ep_ != nullptr) closeEndpoint();
  // What UCX still holds completes later, into orphaned records; the worker
  // counts them (it is not destroyed under them).
  for (Op* op : live_)
    op->conn = nullptr;
  worker_->noteOrphans(live_.size());
  for (Op* op : freeOps_)
    delete op;
}

// Waits (progressing the worker) until `req` completes or the deadline;
// whether it completed. A request still in UCX's hands is freed (UCX
// releases it when it completes).
bool UcxConnection::waitFor(void* req, int64_t deadlineMs) {
  if (req == nullptr) return true;
  if (UCS_PTR_IS_ERR(req)) return false;
  while (api_.ucp_request_check_status(req) == UCS_INPROGRESS && nowMs() < deadlineMs)
    worker_->progress();
  bool done = api_.ucp_request_check_status(req) == UCS_OK;
  api_.ucp_request_free(req);
  return done;
}

void UcxConnection::abandon() {
  abandoned_ = true;
  auto fail = [](Request* r) {
    if (r != nullptr && r->pending()) r->state = RequestState::kFailed;
  };
  for (const Posted& p : posted_)
    fail(p.req);
  for (const Posted& p : fetchInto_)
    fail(p.req);
  for (Op* op : live_)
    fail(op->req);
}

void UcxConnection::closeEndpoint() {
  // A live endpoint first delivers what it accepted (the goodbye above all);
  // after this rank's abort notice only briefly, since the peer may be the
  // one that stopped. Once flushed it closes gently; a broken one, or one
  // whose flush did not finish, closes by force (which UCX allows only with
  // peer failure handling). The worker waits for the close (Worker::adoptClose).
  bool lost = !broken_.empty() || endpointLost_ || abandoned_;
  ucp_request_param_t param;
  memset(&param, 0, sizeof(param));
  bool flushed = false;
  if (!lost) {
    int64_t wait = abortSent_ ? kAbortFlushMs : kCloseFlushMs;
    flushed = waitFor(api_.ucp_ep_flush_nbx(ep_, &param), nowMs() + wait);
  }
  param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  param.flags = flushed || !peerFailureHandling_ ? 0 : UCP_EP_CLOSE_FLAG_FORCE;
  // The close finishes in later progress calls; the worker keeps the request
  // and is not destroyed before it completes (or its own deadline passes).
  worker_->adoptClose(api_.ucp_ep_close_nbx(ep_, &param));
  ep_ = nullptr;
}

gcclResult_t UcxConnection::failed() const {
  return setError(brokenCode_, "%s", broken_.c_str());
}

void UcxConnection::breakWith(const std::string& why, gcclResult_t code) {
  if (broken_.empty()) {
    broken_ = why;
    brokenCode_ = code;
  }
  ++events_;
  worker_->noteActivity();
}

// ---- set-up ---------------------------------------------------------------------------

gcclResult_t UcxConnection::open(const std::string& peerAddress, int peerPid) {
  ucp_ep_params_t params;
  memset(&params, 0, sizeof(params));
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.address = reinterpret_cast<const ucp_address_t*>(peerAddress.data());
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = &UcxConnection::onEndpointError;
  params.err_handler.arg = this;
  ucs_status_t s = UCS_ERR_UNREACHABLE;
  if (worker_->peerFailureHandling()) s = api_.ucp_ep_create(worker_->handle(), &params, &ep_);
  if (s == UCS_ERR_UNREACHABLE) {
    // No wire with peer failure handling (UCX 1.13's shared-memory
    // transports have none): without it, then; the pidfd below, or the
    // engine's liveness probes for a peer elsewhere, notice a dead peer.
    worker_->noPeerFailureHandling();
    params.field_mask &= ~static_cast<uint64_t>(UCP_EP_PARAM_FIELD_ERR_HANDLER);
    params.err_mode = UCP_ERR_HANDLING_MODE_NONE;
    peerFailureHandling_ = false;
    s = api_.ucp_ep_create(worker_->handle(), &params, &ep_);
  }
  GCCL_REQUIRE(s == UCS_OK, gcclSystemError, "ucx: connecting to rank %d: ucp_ep_create: %s", peer_,
               api_.ucs_status_string(s));
  if (peerPid > 0) {
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, peerPid, 0));
    if (pidfd_ < 0)
      GCCL_INFO(kLogNet, "ucx: pidfd_open(rank %d, pid %d): %s; its death is noticed by %s", peer_,
                peerPid, strerror(errno),
                peerFailureHandling_ ? "UCX" : "the engine's liveness probes");
  }
  sendHandshake(Kind::kHello);
  if (!broken_.empty()) return failed();
  return gcclSuccess;
}

void UcxConnection::sendHandshake(Kind kind) {
  const transport::TransportContext& ctx = worker_->context();
  Handshake h;
  h.commHash = ctx.commHash;
  h.from = static_cast<uint32_t>(ctx.rank);
  h.to = static_cast<uint32_t>(peer_);
  handshakeMac(ctx.secret, kind, h, worker_->peerNonce(peer_), worker_->nonce(), h.mac);
  Op* op = takeOp(Op::kControl);
  encodeHeader(Header{kind, 0, {}}, op->header);
  op->body.resize(kHandshakeBytes);
  encodeHandshake(h, reinterpret_cast<uint8_t*>(op->body.data()));
  (void)post(op, op->body.data(), op->body.size());
}

void UcxConnection::onHandshake(Kind kind, const Handshake& h, ucp_ep_h replyEp) {
  const transport::TransportContext& ctx = worker_->context();
  uint8_t want[32];
  handshakeMac(ctx.secret, kind, h, worker_->nonce(), worker_->peerNonce(peer_), want);
  bool valid = h.commHash == ctx.commHash && h.to == static_cast<uint32_t>(ctx.rank) &&
               constantTimeEqual(want, h.mac, sizeof(want));
  // A second endpoint claiming the peer, after one proved it, is a stranger
  // replaying what it saw.
  if (!valid || (boundEp_ != nullptr && boundEp_ != replyEp)) {
    GCCL_WARN(kLogNet, "rank %d: ucx: rejected a %s that claims to come from rank %d: %s", ctx.rank,
              kind == Kind::kHello ? "HELLO" : "WELCOME", peer_,
              valid ? "that rank's endpoint already proved the secret" : "wrong proof");
    return;
  }
  if (boundEp_ == nullptr) {
    boundEp_ = replyEp;
    worker_->bindEndpoint(replyEp, this);
  }
  if (kind == Kind::kHello && !helloSeen_) {
    helloSeen_ = true;
    sendHandshake(Kind::kWelcome);
  } else if (kind == Kind::kWelcome) {
    welcomeSeen_ = true;
  }
  ++events_;
  worker_->noteActivity();
}

gcclResult_t UcxConnection::start() {
  if (started_) return gcclSuccess;
  started_ = true;
  GCCL_CHECK(worker_->startWatching(this));
  if (pidfd_ >= 0 && worker_->context().poller != nullptr) {
    GCCL_CHECK(worker_->context().poller->watch(pidfd_, EPOLLIN, this));
    pidWatched_ = true;
  }
  return gcclSuccess;
}

// ---- operations in flight -----------------------------------------------------------------

UcxConnection::Op* UcxConnection::takeOp(Op::Type type) {
  Op* op;
  if (freeOps_.empty()) {
    op = new Op();
  } else {
    op = freeOps_.back();
    freeOps_.pop_back();
  }
  op->type = type;
  op->api = &api_;
  op->worker = worker_.get();
  op->conn = this;
  op->req = nullptr;
  op->ucpRequest = nullptr;
  op->bytes = 0;
  op->body.clear();
  return op;
}

void UcxConnection::releaseOp(Op* op) {
  auto it = std::find(live_.begin(), live_.end(), op);
  if (it != live_.end()) {
    *it = live_.back();
    live_.pop_back();
  }
  freeOps_.push_back(op);
}

gcclResult_t UcxConnection::post(Op* op, const void* data, size_t len) {
  ucp_request_param_t param;
  memset(&param, 0, sizeof(param));
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS;
  param.cb.send = &UcxConnection::onSendDone;
  param.user_data = op;
  param.flags = UCP_AM_SEND_FLAG_REPLY;
  void* r = api_.ucp_am_send_nbx(ep_, kAmId, op->header, kHeaderBytes, data, len, &param);
  if (r == nullptr) {  // done at once
    onSendDone(nullptr, UCS_OK, op);
    return gcclSuccess;
  }
  if (UCS_PTR_IS_ERR(r)) {
    onSendDone(nullptr, UCS_PTR_STATUS(r), op);
    return broken_.empty() ? gcclSuccess : failed();
  }
  op->ucpRequest = r;
  live_.push_back(op);
  return gcclSuccess;
}

void UcxConnection::onSendDone(void* request, ucs_status_t status, void* user) {
  Op* op = static_cast<Op*>(user);
  UcxConnection* c = op->conn;
  if (request != nullptr) op->api->ucp_request_free(request);
  if (c == nullptr) {  // orphaned: the connection is gone
    op->worker->orphanDone();
    delete op;
    return;
  }
  if (op->req != nullptr) {
    if (status == UCS_OK) {
      op->req->state = RequestState::kDone;
      c->bytesSent_ += op->bytes;
      ++c->messagesSent_;
    } else {
      op->req->state = RequestState::kFailed;
    }
  }
  if (status != UCS_OK && status != UCS_ERR_CANCELED && !c->peerClosed_)
    c->breakWith("sending to rank " + std::to_string(c->peer_) +
                 " over UCX failed: " + c->api_.ucs_status_string(status));
  // Control messages (liveness above all) are not progress.
  if (op->type == Op::kSend) {
    ++c->events_;
    c->worker_->noteActivity();
  }
  c->releaseOp(op);
}

void UcxConnection::onReceiveDone(void* request, ucs_status_t status, size_t length, void* user) {
  Op* op = static_cast<Op*>(user);
  UcxConnection* c = op->conn;
  if (request != nullptr) op->api->ucp_request_free(request);
  if (c == nullptr) {
    op->worker->orphanDone();
    delete op;
    return;
  }
  if (op->req != nullptr) {
    if (status == UCS_OK) {
      c->completeReceive(op->req, length);
    } else {
      op->req->state = RequestState::kFailed;
    }
  }
  if (status != UCS_OK && status != UCS_ERR_CANCELED)
    c->breakWith("receiving from rank " + std::to_string(c->peer_) +
                 " over UCX failed: " + c->api_.ucs_status_string(status));
  ++c->events_;
  c->worker_->noteActivity();
  c->releaseOp(op);
}

void UcxConnection::completeReceive(Request* req, size_t bytes) {
  req->bytes = bytes;
  req->state = RequestState::kDone;
  bytesReceived_ += bytes;
  ++messagesReceived_;
  ++events_;
  worker_->noteActivity();
}

// ---- data ------------------------------------------------------------------------------

gcclResult_t UcxConnection::isend(const void* data, size_t len, uint64_t tag, MessageMeta meta,
                                  Request* req) {
  if (!broken_.empty()) return failed();
  GCCL_REQUIRE(!peerClosed_, gcclRemoteError,
               "rank %d destroyed its communicator; cannot send it %zu bytes", peer_, len);
  req->state = RequestState::kPending;
  req->bytes = len;
  Op* op = takeOp(Op::kSend);
  op->req = req;
  op->bytes = len;
  req->priv[0] = reinterpret_cast<uintptr_t>(op);
  encodeHeader(Header{Kind::kData, tag, meta}, op->header);
  return post(op, data, len);
}

gcclResult_t UcxConnection::irecv(void* data, size_t capacity, uint64_t tag, MessageMeta expect,
                                  Request* req) {
  if (!broken_.empty()) return failed();
  req->state = RequestState::kPending;
  req->bytes = 0;
  req->metaMismatch = false;
  Posted p{tag, static_cast<uint8_t*>(data), capacity, expect, req};
  for (auto it = arrivals_.begin(); it != arrivals_.end(); ++it) {
    if (it->header.tag != tag) continue;
    Arrival a = *it;
    arrivals_.erase(it);
    if (deliver(p, a, /*inCallback=*/false) != UCS_INPROGRESS)
      api_.ucp_am_data_release(worker_->handle(), a.data);
    return broken_.empty() ? gcclSuccess : failed();
  }
  posted_.push_back(p);
  GCCL_CHECK(checkDeparted());
  return gcclSuccess;
}

ucs_status_t UcxConnection::onMessage(const Header& h, void* data, size_t length, bool rendezvous) {
  switch (h.kind) {
    case Kind::kData:
      break;
    case Kind::kPing:
      controlOut_.emplace_back(Kind::kPong, worker_->context().poller != nullptr
                                                ? worker_->context().poller->livenessReport()
                                                : std::string());
      worker_->defer(this);
      return UCS_OK;
    case Kind::kPong:
      if (!rendezvous) {
        size_t n = std::min(length, transport::kMaxLivenessReportBytes);
        peerReport_.assign(static_cast<const char*>(data), n);
      }
      lastPongMs_ = nowMs();
      return UCS_OK;
    case Kind::kAbort:
      abortReason_.assign(rendezvous ? "" : static_cast<const char*>(data),
                          rendezvous ? 0 : std::min<size_t>(length, 4096));
      if (abortReason_.empty()) abortReason_ = "(no reason given)";
      breakWith("rank " + std::to_string(peer_) + " aborted: " + abortReason_);
      return UCS_OK;
    case Kind::kClose:
      peerClosed_ = true;
      ++events_;
      worker_->noteActivity();
      return UCS_OK;
    default:
      return UCS_OK;
  }
  ++events_;
  worker_->noteActivity();
  Arrival a{h, data, length, rendezvous};
  for (size_t i = 0; i < posted_.size(); ++i) {
    if (posted_[i].tag != h.tag) continue;
    Posted p = posted_[i];
    posted_.erase(posted_.begin() + static_cast<long>(i));
    return deliver(p, a, /*inCallback=*/true);
  }
  arrivals_.push_back(a);  // held (persistent eager data, or a rendezvous descriptor)
  return UCS_INPROGRESS;
}

ucs_status_t UcxConnection::deliver(const Posted& p, const Arrival& a, bool inCallback) {
  Request* req = p.req;
  if (p.expect.info != transport::kMetaAny &&
      (a.header.meta.info != p.expect.info || a.header.meta.count != p.expect.count)) {
    req->metaMismatch = true;
    req->peerMeta = a.header.meta;
    req->state = RequestState::kFailed;
    ++events_;
    worker_->noteActivity();
    return UCS_OK;  // the message is dropped
  }
  req->peerMeta = a.header.meta;
  if (a.length > p.capacity) {
    req->bytes = a.length;
    req->state = RequestState::kFailed;
    breakWith("rank " + std::to_string(peer_) + " sent a message of " + std::to_string(a.length) +
                  " bytes to a receive buffer of " + std::to_string(p.capacity) + " bytes",
              gcclInvalidUsage);
    return UCS_OK;
  }
  if (!a.rendezvous) {
    if (a.length > 0) memcpy(p.buf, a.data, a.length);
    completeReceive(req, a.length);
    return UCS_OK;
  }
  if (inCallback) {
    // The data moves once the callback has returned (runDeferred).
    toFetch_.push_back(a);
    fetchInto_.push_back(p);
    worker_->defer(this);
    return UCS_INPROGRESS;
  }
  Op* op = takeOp(Op::kReceive);
  op->req = req;
  req->priv[0] = reinterpret_cast<uintptr_t>(op);
  ucp_request_param_t param;
  memset(&param, 0, sizeof(param));
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  param.cb.recv_am = &UcxConnection::onReceiveDone;
  param.user_data = op;
  void* r = api_.ucp_am_recv_data_nbx(worker_->handle(), a.data, p.buf, a.length, &param);
  if (r == nullptr) {
    onReceiveDone(nullptr, UCS_OK, a.length, op);
  } else if (UCS_PTR_IS_ERR(r)) {
    onReceiveDone(nullptr, UCS_PTR_STATUS(r), 0, op);
  } else {
    op->ucpRequest = r;
    live_.push_back(op);
  }
  // UCX owns the descriptor now: the caller must not release it.
  return UCS_INPROGRESS;
}

void UcxConnection::runDeferred() {
  for (size_t i = 0; i < toFetch_.size(); ++i)
    (void)deliver(fetchInto_[i], toFetch_[i], /*inCallback=*/false);
  toFetch_.clear();
  fetchInto_.clear();
  while (!controlOut_.empty() && ep_ != nullptr && broken_.empty()) {
    auto [kind, text] = std::move(controlOut_.front());
    controlOut_.pop_front();
    sendControl(kind, text.data(), text.size());
  }
  controlOut_.clear();
}

void UcxConnection::cancel(Request* req) {
  for (size_t i = 0; i < posted_.size(); ++i) {
    if (posted_[i].req != req) continue;
    posted_.erase(posted_.begin() + static_cast<long>(i));
    req->state = RequestState::kFailed;
    return;
  }
  for (size_t i = 0; i < fetchInto_.size(); ++i) {
    if (fetchInto_[i].req != req) continue;
    api_.ucp_am_data_release(worker_->handle(), toFetch_[i].data);
    toFetch_.erase(toFetch_.begin() + static_cast<long>(i));
    fetchInto_.erase(fetchInto_.begin() + static_cast<long>(i));
    req->state = RequestState::kFailed;
    return;
  }
  // In UCX's hands: a rendezvous receive is cancelled and, while the peer
  // lives, waited for a moment (its data must not land in a buffer the
  // caller may free; a dead peer sends nothing more); a send goes on without
  // its request.
  for (Op* op : live_) {
    if (op->req != req) continue;
    op->req = nullptr;
    req->state = RequestState::kFailed;
    if (op->type != Op::kReceive) return;
    api_.ucp_request_cancel(worker_->handle(), op->ucpRequest);
    int64_t deadline = nowMs() + kCancelWaitMs;
    while (broken_.empty() && !endpointLost_ &&
           std::find(live_.begin(), live_.end(), op) != live_.end() && nowMs() < deadline)
      worker_->progress();
    return;
  }
}

void UcxConnection::pausedFrames(std::vector<std::pair<uint64_t, MessageMeta>>* out) const {
  for (const Arrival& a : arrivals_)
    out->push_back({a.header.tag, a.header.meta});
}

// ---- progress ---------------------------------------------------------------------------

gcclResult_t UcxConnection::poll(bool* moved) {
  worker_->progress();
  *moved = events_ != eventsSeen_;
  eventsSeen_ = events_;
  if (!broken_.empty()) return failed();
  return checkDeparted();
}

bool UcxConnection::armForSleep() {
  return worker_->arm() && events_ == eventsSeen_ && broken_.empty();
}

gcclResult_t UcxConnection::onEvents(int fd, uint32_t events) {
  (void)events;
  // What the peer sent before it went (its goodbye above all) is taken first.
  worker_->progress();
  if (fd == pidfd_ && pidWatched_) {
    worker_->context().poller->unwatch(pidfd_);
    pidWatched_ = false;
    endpointLost_ = true;
    ++events_;
    worker_->noteActivity();
    if (!peerClosed_)
      breakWith("rank " + std::to_string(peer_) +
                " exited without a goodbye (its process is gone: did it crash or was it killed?)");
  }
  if (!broken_.empty()) return failed();
  return checkDeparted();
}

// After the peer's goodbye and the end of its endpoint: a receive that
// nothing held here can satisfy never will be.
gcclResult_t UcxConnection::checkDeparted() const {
  if (!endpointLost_ || !peerClosed_) return gcclSuccess;
  bool expecting = false;
  for (const Posted& p : posted_)
    expecting = expecting || !transport::isStandingTag(p.tag);
  if (!expecting) return gcclSuccess;
  return setError(gcclRemoteError,
                  "rank %d destroyed its communicator while this rank still expected data from it",
                  peer_);
}

void UcxConnection::onEndpointError(void* arg, ucp_ep_h ep, ucs_status_t status) {
  (void)ep;
  static_cast<UcxConnection*>(arg)->endpointFailed(status);
}

void UcxConnection::endpointFailed(ucs_status_t status) {
  endpointLost_ = true;
  ++events_;
  worker_->noteActivity();
  if (peerClosed_) return;  // it said goodbye, then went away: no error
  breakWith("rank " + std::to_string(peer_) + " is unreachable over UCX: its endpoint failed (" +
            api_.ucs_status_string(status) + "; did it exit or crash?)");
}

// ---- control ------------------------------------------------------------------------------

void UcxConnection::sendControl(Kind kind, const char* text, size_t len) {
  if (ep_ == nullptr || endpointLost_) return;
  Op* op = takeOp(Op::kControl);
  encodeHeader(Header{kind, 0, {}}, op->header);
  op->body.assign(text, len);
  (void)post(op, op->body.data(), op->body.size());
}

void UcxConnection::sendAbortNotice(const char* reason) {
  abortSent_ = true;
  sendControl(Kind::kAbort, reason, strlen(reason));
  // Best effort: give it a moment to leave before the caller tears down.
  worker_->progress();
}

void UcxConnection::sendCloseNotice() {
  sendControl(Kind::kClose, "", 0);
  worker_->progress();
}

gcclResult_t UcxConnection::sendPing() {
  if (!broken_.empty()) return failed();
  sendControl(Kind::kPing, "", 0);
  if (!broken_.empty()) return failed();
  return gcclSuccess;
}

}  // namespace gccl::ucx
