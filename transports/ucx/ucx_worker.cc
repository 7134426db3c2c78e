#include "transports/ucx/ucx_worker.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/check.h"
#include "base/clock.h"
#include "base/hmac.h"
#include "base/log.h"
#include "transports/ucx/ucx_connection.h"

namespace gccl::ucx {

namespace {
// Rounds of ucp_worker_progress per progress() call at most: "until idle",
// but never unbounded under a steady stream of arrivals.
constexpr int kProgressRounds = 64;
// How often UCX's keepalive checks a silent peer, unless UCX_KEEPALIVE_INTERVAL
// says otherwise: UCX's 20 s default would report a dead peer over shared
// memory long after the engine's own liveness probe gives up.
constexpr const char* kKeepaliveInterval = "1s";
// Before the worker is destroyed: progress until the endpoint closes and the
// orphaned requests finished, for at most kSettleMs; then until this many
// calls in a row found nothing to do, for at most kDrainMs.
constexpr int64_t kSettleMs = 1000;
constexpr int kDrainIdleRounds = 1000;
constexpr int64_t kDrainMs = 200;

// Whether UCX_TLS names shared-memory transports only (UCX 1.13 gives them no
// peer failure handling).
bool sharedMemoryOnly(const char* tls) {
  if (tls == nullptr || *tls == '\0' || *tls == '^') return false;
  static const char* const kShm[] = {"sm", "shm", "posix", "sysv", "cma", "knem", "xpmem", "self"};
  std::string list(tls);
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string name =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? list.size() + 1 : comma + 1;
    if (!name.empty() && name.back() == '*') name.pop_back();
    if (name.empty()) continue;
    bool shm = false;
    for (const char* s : kShm)
      shm = shm || name == s;
    if (!shm) return false;
  }
  return true;
}
// For a shared-memory-only UCX_TLS: the same list without the transports
// that read the peer's memory from this process (cma, knem, xpmem; "sm" and
// "shm" become posix,sysv), since without peer failure handling UCX treats
// their failure on a dead peer as fatal. Empty: leave UCX_TLS as it is.
std::string withoutPeerReaders(const char* tls) {
  if (!sharedMemoryOnly(tls)) return "";
  std::string list(tls), out;
  bool dropped = false;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string name =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? list.size() + 1 : comma + 1;
    if (name.empty()) continue;
    if (name == "sm" || name == "shm") {
      name = "posix,sysv";
      dropped = true;
    } else if (name == "cma" || name == "knem" || name == "xpmem") {
      dropped = true;
      continue;
    }
    out += (out.empty() ? "" : ",") + name;
  }
  return dropped && !out.empty() ? out : "";
}
}  // namespace

Worker::Worker(const UcpApi* api, const transport::TransportContext& ctx)
    : api_(api),
      ctx_(ctx),
      peerNonces_(static_cast<size_t>(ctx.nranks), std::vector<uint8_t>(kNonceBytes, 0)),
      byRank_(static_cast<size_t>(ctx.nranks), nullptr) {}

gcclResult_t Worker::create(const UcpApi* api, const transport::TransportContext& ctx,
                            std::shared_ptr<Worker>* out) {
  std::shared_ptr<Worker> w(new Worker(api, ctx));
  GCCL_CHECK(w->init());
  *out = std::move(w);
  return gcclSuccess;
}

gcclResult_t Worker::init() {
  const UcpApi& u = *api_;
  ucp_config_t* config = nullptr;
  ucs_status_t s = u.ucp_config_read(nullptr, nullptr, &config);
  GCCL_REQUIRE(s == UCS_OK, gcclSystemError, "ucx: reading UCX's configuration: %s",
               u.ucs_status_string(s));
  if (getenv("UCX_KEEPALIVE_INTERVAL") == nullptr)
    (void)u.ucp_config_modify(config, "KEEPALIVE_INTERVAL", kKeepaliveInterval);
  std::string tls = withoutPeerReaders(getenv("UCX_TLS"));
  if (!tls.empty()) {
    GCCL_INFO(kLogInit,
              "ucx: UCX_TLS=%s names shared-memory transports only, which UCX %u.%u gives no peer "
              "failure handling: using %s (cma, knem and xpmem abort the process when the peer "
              "they read from has died)",
              getenv("UCX_TLS"), u.major, u.minor, tls.c_str());
    (void)u.ucp_config_modify(config, "TLS", tls.c_str());
  }
  ucp_params_t params;
  memset(&params, 0, sizeof(params));
  params.field_mask =
      UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED | UCP_PARAM_FIELD_NAME;
  params.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  params.mt_workers_shared = 0;
  params.name = "gccl";
  s = u.ucp_init_version(UCP_API_MAJOR, UCP_API_MINOR, &params, config, &context_);
  u.ucp_config_release(config);
  GCCL_REQUIRE(s == UCS_OK, gcclSystemError,
               "ucx: ucp_init: %s (UCX_TLS=%s: are those UCX transports available here?)",
               u.ucs_status_string(s), getenv("UCX_TLS") ? getenv("UCX_TLS") : "(unset)");

  ucp_worker_params_t wp;
  memset(&wp, 0, sizeof(wp));
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;
  s = u.ucp_worker_create(context_, &wp, &worker_);
  GCCL_REQUIRE(s == UCS_OK, gcclSystemError, "ucx: ucp_worker_create: %s", u.ucs_status_string(s));
  s = u.ucp_worker_get_efd(worker_, &efd_);
  GCCL_REQUIRE(s == UCS_OK, gcclSystemError, "ucx: ucp_worker_get_efd: %s", u.ucs_status_string(s));

  ucp_am_handler_param_t hp;
  memset(&hp, 0, sizeof(hp));
  hp.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_FLAGS |
                  UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG;
  hp.id = kAmId;
  hp.flags = UCP_AM_FLAG_WHOLE_MSG | UCP_AM_FLAG_PERSISTENT_DATA;
  hp.cb = &Worker::onMessage;
  hp.arg = this;
  s = u.ucp_worker_set_am_recv_handler(worker_, &hp);
  GCCL_REQUIRE(s == UCS_OK, gcclSystemError, "ucx: ucp_worker_set_am_recv_handler: %s",
               u.ucs_status_string(s));

  ucp_address_t* addr = nullptr;
  size_t len = 0;
  s = u.ucp_worker_get_address(worker_, &addr, &len);
  GCCL_REQUIRE(s == UCS_OK, gcclSystemError, "ucx: ucp_worker_get_address: %s",
               u.ucs_status_string(s));
  address_.assign(reinterpret_cast<const char*>(addr), len);
  u.ucp_worker_release_address(worker_, addr);
  GCCL_CHECK(randomBytes(nonce_, sizeof(nonce_)));
  peerFailureHandling_ = !sharedMemoryOnly(getenv("UCX_TLS"));
  return gcclSuccess;
}

Worker::~Worker() {
  if (watcher_ != nullptr && ctx_.poller != nullptr) ctx_.poller->unwatch(efd_);
  if (worker_ != nullptr) {
    // Endpoints closed by force, or to a failed peer, finish discarding what
    // they held in later progress calls; UCX asserts that none is left when
    // the worker goes. Let them, for a bounded time.
    int64_t until = nowMs() + kSettleMs;
    while ((orphans_ > 0 || !closing_.empty()) && nowMs() < until) {
      // Waiting on a failed peer's timeouts: give the core away between
      // rounds that found nothing, rather than spin for up to a second.
      if (api_->ucp_worker_progress(worker_) == 0) usleep(100);
      reapClosed();
    }
    until = nowMs() + kDrainMs;
    for (int idle = 0; idle < kDrainIdleRounds && nowMs() < until;)
      idle = api_->ucp_worker_progress(worker_) == 0 ? idle + 1 : 0;
    reapClosed();
    if (orphans_ > 0 || !closing_.empty()) {
      GCCL_WARN(
          kLogNet,
          "rank %d: ucx: %zu requests and %zu endpoint closes did not finish within %lld ms (a "
          "peer "
          "failed or stopped); the UCX worker is left in place instead of destroyed under them",
          ctx_.rank, orphans_, closing_.size(), static_cast<long long>(kSettleMs));
      return;  // the context too: it holds the worker
    }
    api_->ucp_worker_destroy(worker_);
  }
  if (context_ != nullptr) api_->ucp_cleanup(context_);
}

void Worker::setPeerNonce(int rank, const uint8_t nonce[kNonceBytes]) {
  memcpy(peerNonces_[static_cast<size_t>(rank)].data(), nonce, kNonceBytes);
}

unsigned Worker::progress() {
  unsigned total = 0;
  for (int i = 0; i < kProgressRounds; ++i) {
    unsigned n = api_->ucp_worker_progress(worker_);
    total += n;
    if (n == 0) break;
  }
  runDeferred();
  if (!closing_.empty()) reapClosed();
  return total;
}

void Worker::adoptClose(void* request) {
  if (request == nullptr || UCS_PTR_IS_ERR(request)) return;  // done, or nothing to wait for
  closing_.push_back(request);
}

void Worker::reapClosed() {
  size_t kept = 0;
  for (void* r : closing_) {
    if (api_->ucp_request_check_status(r) == UCS_INPROGRESS) {
      closing_[kept++] = r;
      continue;
    }
    api_->ucp_request_free(r);
  }
  closing_.resize(kept);
}

bool Worker::arm() {
  uint64_t before = activity_;
  for (int attempt = 0; attempt < 4; ++attempt) {
    progress();
    if (activity_ != before) return false;  // a connection has news: look again first
    ucs_status_t s = api_->ucp_worker_arm(worker_);
    if (s == UCS_OK) return true;
    if (s != UCS_ERR_BUSY) return false;
    // Busy: events came in between; progress them and try again.
  }
  return false;
}

void Worker::runDeferred() {
  while (!deferred_.empty()) {
    std::vector<UcxConnection*> now;
    now.swap(deferred_);
    for (UcxConnection* c : now)
      c->runDeferred();
  }
}

void Worker::defer(UcxConnection* c) {
  if (std::find(deferred_.begin(), deferred_.end(), c) == deferred_.end()) deferred_.push_back(c);
}

void Worker::attach(UcxConnection* c, int rank) {
  byRank_[static_cast<size_t>(rank)] = c;
}

void Worker::detach(UcxConnection* c, int rank) {
  if (byRank_[static_cast<size_t>(rank)] == c) byRank_[static_cast<size_t>(rank)] = nullptr;
  unbindEndpoint(c);
  deferred_.erase(std::remove(deferred_.begin(), deferred_.end(), c), deferred_.end());
  started_.erase(std::remove(started_.begin(), started_.end(), c), started_.end());
  if (watcher_ != c) return;
  watcher_ = nullptr;
  if (ctx_.poller == nullptr) return;
  if (started_.empty()) {
    ctx_.poller->unwatch(efd_);
    return;
  }
  // Another connection takes the fd's events over.
  if (ctx_.poller->watch(efd_, EPOLLIN, started_.front()) == gcclSuccess)
    watcher_ = started_.front();
  else
    ctx_.poller->unwatch(efd_);
}

gcclResult_t Worker::startWatching(UcxConnection* c) {
  started_.push_back(c);
  if (watcher_ != nullptr || ctx_.poller == nullptr) return gcclSuccess;
  GCCL_CHECK(ctx_.poller->watch(efd_, EPOLLIN, c));
  watcher_ = c;
  return gcclSuccess;
}

void Worker::bindEndpoint(ucp_ep_h ep, UcxConnection* c) {
  byEndpoint_[ep] = c;
}

void Worker::unbindEndpoint(UcxConnection* c) {
  for (auto it = byEndpoint_.begin(); it != byEndpoint_.end();) {
    if (it->second != c) {
      ++it;
      continue;
    }
    retired_.push_back(it->first);
    it = byEndpoint_.erase(it);
  }
}

std::string Worker::describe() const {
  const char* tls = getenv("UCX_TLS");
  return "ucx (UCX " + std::to_string(api_->major) + "." + std::to_string(api_->minor) + "." +
         std::to_string(api_->release) + ", UCX_TLS=" + (tls ? tls : "all") + ")";
}

ucs_status_t Worker::onMessage(void* arg, const void* header, size_t headerLength, void* data,
                               size_t length, const ucp_am_recv_param_t* param) {
  return static_cast<Worker*>(arg)->dispatch(header, headerLength, data, length, param);
}

ucs_status_t Worker::dispatch(const void* header, size_t headerLength, void* data, size_t length,
                              const ucp_am_recv_param_t* param) {
  Header h;
  if (!decodeHeader(header, headerLength, &h)) {
    warnStranger("a message without a gccl header");
    return UCS_OK;  // released (a rendezvous one is declined)
  }
  bool rendezvous = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
  ucp_ep_h from = (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) ? param->reply_ep : nullptr;
  if (from == nullptr) {
    warnStranger("a message without a reply endpoint");
    return UCS_OK;
  }
  if (h.kind == Kind::kHello || h.kind == Kind::kWelcome) {
    Handshake hs;
    if (rendezvous || !decodeHandshake(data, length, &hs) ||
        hs.from >= static_cast<uint32_t>(ctx_.nranks) || byRank_[hs.from] == nullptr) {
      warnStranger("a handshake for no rank this rank connects to over UCX");
      return UCS_OK;
    }
    byRank_[hs.from]->onHandshake(h.kind, hs, from);
    return UCS_OK;
  }
  auto it = byEndpoint_.find(from);
  if (it == byEndpoint_.end()) {
    // A peer whose connection here is gone (the communicator is going away)
    // may still have sent something: dropped without a word.
    if (std::find(retired_.begin(), retired_.end(), from) != retired_.end()) return UCS_OK;
    warnStranger("a message from an endpoint that has not proved the communicator's secret");
    return UCS_OK;
  }
  return it->second->onMessage(h, data, length, rendezvous);
}

void Worker::warnStranger(const char* what) {
  int64_t now = nowMs();
  if (now - lastWarnMs_ < 1000) {
    ++unwarned_;
    return;
  }
  GCCL_WARN(kLogNet, "rank %d: ucx: dropped %s (and %llu more in the last second)", ctx_.rank, what,
            static_cast<unsigned long long>(unwarned_));
  lastWarnMs_ = now;
  unwarned_ = 0;
}

}  // namespace gccl::ucx
