#include "core/engine.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/check.h"
#include "core/log.h"
#include "transports/loopback.h"
#include "transports/tcp/socket.h"

namespace gccl {

using tcp::nowMs;

// A connection that arrived after initialization: it is authenticated (so the
// log can say who it was) and then closed, whatever it proves.
struct Engine::Stray {
  tcp::ServerHandshake handshake;
  SockAddr from;
};

transport::Connection* OpContext::conn(int peer) const {
  return engine->connection(peer);
}
void* OpContext::scratch(size_t bytes) const {
  return engine->scratch(bytes);
}

Engine::Engine(const EngineOptions& options) : opt_(options) {
  ctx_.engine = this;
  ctx_.rank = opt_.rank;
  ctx_.nranks = opt_.nranks;
  ctx_.params = &opt_.params;
  probeSentMs_.assign(static_cast<size_t>(opt_.nranks), 0);
}

Engine::~Engine() {
  shutdown();
  strays_.clear();
  conns_.clear();  // connections unwatch their fds through this engine: before the epoll fd goes
  if (listenFd_ >= 0) close(listenFd_);
  if (wakeFd_ >= 0) close(wakeFd_);
  if (epollFd_ >= 0) close(epollFd_);
  free(scratch_);
}

gcclResult_t Engine::start(std::vector<std::unique_ptr<transport::Connection>> conns,
                           int listenFd) {
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epollFd_ < 0) return setError(gcclSystemError, "epoll_create1: %s", strerror(errno));
  wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) return setError(gcclSystemError, "eventfd: %s", strerror(errno));
  GCCL_CHECK(watch(wakeFd_, EPOLLIN, nullptr));
  watches_[static_cast<size_t>(wakeFd_)].kind = WatchKind::kWake;
  listenFd_ = listenFd;
  if (listenFd_ >= 0) {
    GCCL_CHECK(watch(listenFd_, EPOLLIN, nullptr));
    watches_[static_cast<size_t>(listenFd_)].kind = WatchKind::kListen;
  }
  conns_ = std::move(conns);
  conns_.resize(static_cast<size_t>(opt_.nranks));
  conns_[static_cast<size_t>(opt_.rank)].reset(new transport::LoopbackConnection(opt_.rank));
  for (auto& c : conns_)
    if (c) GCCL_CHECK(c->start());
  lastProgressMs_ = nowMs();
  running_ = true;
  thread_ = std::thread([this] { run(); });
  return gcclSuccess;
}

gcclResult_t Engine::watch(int fd, uint32_t events, void* owner) {
  size_t i = static_cast<size_t>(fd);
  if (watches_.size() <= i) watches_.resize(i + 1);
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  int op = watches_[i].kind == WatchKind::kNone ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(epollFd_, op, fd, &ev) != 0)
    return setError(gcclSystemError, "epoll_ctl(fd %d): %s", fd, strerror(errno));
  if (owner != nullptr)
    watches_[i] = {WatchKind::kConn, owner};
  else if (watches_[i].kind == WatchKind::kNone)
    watches_[i].kind = WatchKind::kStray;
  return gcclSuccess;
}

void Engine::unwatch(int fd) {
  size_t i = static_cast<size_t>(fd);
  if (i >= watches_.size() || watches_[i].kind == WatchKind::kNone) return;
  epoll_ctl(epollFd_, EPOLL_CTL_DEL, fd, nullptr);
  watches_[i] = WatchEntry();
}

void* Engine::scratch(size_t bytes) {
  if (bytes > scratchBytes_) {
    free(scratch_);
    scratchBytes_ = (bytes + 63) & ~size_t{63};
    scratch_ = aligned_alloc(64, scratchBytes_);
    if (scratch_ == nullptr) scratchBytes_ = 0;
  }
  return scratch_;
}

void Engine::wake() {
  uint64_t one = 1;
  ssize_t n = write(wakeFd_, &one, sizeof(one));
  (void)n;  // EAGAIN means a wake-up is already pending
}

void Engine::submit(std::vector<std::unique_ptr<Op>> batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (error_ != gcclSuccess || !running_) {
    gcclResult_t code = error_ != gcclSuccess ? error_ : gcclInvalidUsage;
    std::string reason = error_ != gcclSuccess ? errorReason_ : "the communicator is shut down";
    lock.unlock();
    for (auto& op : batch)
      completeRequest(op->request(), code, reason);
    return;
  }
  submitted_.push_back(std::move(batch));
  lock.unlock();
  wake();
}

void Engine::abort(gcclResult_t code, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!running_) return;
    abortRequested_ = true;
    abortCode_ = code;
    abortReason_ = reason;
  }
  wake();
}

void Engine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!thread_.joinable()) return;
    stopRequested_ = true;
  }
  wake();
  thread_.join();
}

gcclResult_t Engine::error(std::string* reason) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reason != nullptr) *reason = errorReason_;
  return error_;
}

// ---- the progress thread ------------------------------------------------------

void Engine::run() {
  pthread_setname_np(pthread_self(), "gccl-progress");
  epoll_event events[64];
  int64_t stopDeadline = 0;
  for (;;) {
    int64_t now = nowMs();
    int n = epoll_wait(epollFd_, events, 64, nextWakeMs(now));
    if (n < 0 && errno != EINTR) {
      fail(gcclSystemError, std::string("epoll_wait failed: ") + strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i)
      handleEvent(events[i].data.fd, events[i].events);
    takeSubmissions();
    advance();
    now = nowMs();
    checkDeadlines(now);
    expireStrays(now);

    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopRequested_) continue;
    if (stopDeadline == 0) stopDeadline = now + opt_.timeoutMs;
    bool idle = active_.empty() && queue_.empty() && submitted_.empty();
    if (!idle && now < stopDeadline && !broken_) continue;
    break;
  }
  std::vector<std::unique_ptr<Op>> leftover;
  if (!active_.empty() || !queue_.empty()) fail(gcclInvalidUsage, "the communicator was destroyed");
  if (!broken_)
    for (auto& c : conns_)
      if (c) c->sendCloseNotice();
  std::lock_guard<std::mutex> lock(mutex_);
  running_ = false;
}

int Engine::nextWakeMs(int64_t now) const {
  // Deadlines only matter while something waits: otherwise sleep until woken.
  if (active_.empty() && strays_.empty()) return -1;
  int64_t next = lastProgressMs_ + (mismatchChecked_ ? opt_.timeoutMs / 2 : 50);
  for (int64_t sent : probeSentMs_)
    if (sent != 0) next = std::min(next, sent + opt_.timeoutMs / 2);
  for (const auto& s : strays_)
    next = std::min(next, s->handshake.deadlineMs());
  int64_t wait = next - now;
  if (wait < 1) wait = 1;
  return static_cast<int>(std::min<int64_t>(wait, 60000));
}

void Engine::handleEvent(int fd, uint32_t events) {
  size_t i = static_cast<size_t>(fd);
  if (i >= watches_.size()) return;
  WatchEntry w = watches_[i];
  switch (w.kind) {
    case WatchKind::kWake: {
      uint64_t v;
      while (read(wakeFd_, &v, sizeof(v)) > 0) {
      }
      return;
    }
    case WatchKind::kListen:
      acceptStrays();
      return;
    case WatchKind::kStray:
      handleStray(fd);
      return;
    case WatchKind::kConn: {
      auto* conn = static_cast<transport::Connection*>(w.owner);
      uint64_t before = conn->bytesSent() + conn->bytesReceived();
      gcclResult_t r = conn->onEvents(fd, events);
      if (conn->bytesSent() + conn->bytesReceived() != before) noteProgress();
      if (r != gcclSuccess) connectionFailed(conn, r);
      return;
    }
    case WatchKind::kNone:
      return;
  }
}

void Engine::acceptStrays() {
  for (;;) {
    int fd = -1;
    SockAddr from;
    if (tcp::acceptOne(listenFd_, &fd, &from) != gcclSuccess || fd < 0) return;
    auto stray = std::make_unique<Stray>();
    stray->from = from;
    int64_t deadline = nowMs() + std::min<int64_t>(opt_.timeoutMs, 10000);
    if (stray->handshake.start(fd, &opt_.creds, deadline) != gcclSuccess ||
        watch(fd, EPOLLIN, nullptr) != gcclSuccess) {
      GCCL_WARN(kLogNet, "rank %d: rejected a connection from %s: %s", opt_.rank,
                from.toString().c_str(), threadLastError());
      close(fd);
      continue;
    }
    strays_.push_back(std::move(stray));
  }
}

void Engine::handleStray(int fd) {
  for (size_t i = 0; i < strays_.size(); ++i) {
    Stray& s = *strays_[i];
    if (s.handshake.fd() != fd) continue;
    bool complete = false;
    gcclResult_t r = s.handshake.onReadable(&complete);
    if (r == gcclSuccess && !complete) return;
    if (r != gcclSuccess)
      GCCL_WARN(kLogNet, "rank %d: rejected a connection from %s: %s", opt_.rank,
                s.from.toString().c_str(), threadLastError());
    else
      GCCL_WARN(kLogNet,
                "rank %d: closed an authenticated connection from %s (rank %d) that came after "
                "initialization",
                opt_.rank, s.from.toString().c_str(), s.handshake.info().fromRank);
    unwatch(fd);
    close(fd);
    strays_.erase(strays_.begin() + static_cast<long>(i));
    return;
  }
}

void Engine::expireStrays(int64_t now) {
  for (size_t i = 0; i < strays_.size();) {
    Stray& s = *strays_[i];
    if (now < s.handshake.deadlineMs()) {
      ++i;
      continue;
    }
    GCCL_WARN(kLogNet, "rank %d: rejected a connection from %s: no valid hello before the deadline",
              opt_.rank, s.from.toString().c_str());
    unwatch(s.handshake.fd());
    close(s.handshake.fd());
    strays_.erase(strays_.begin() + static_cast<long>(i));
  }
}

void Engine::takeSubmissions() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!submitted_.empty()) {
    queue_.push_back(std::move(submitted_.front()));
    submitted_.pop_front();
  }
  if (abortRequested_) {
    abortRequested_ = false;
    gcclResult_t code = abortCode_;
    std::string reason = abortReason_;
    lock.unlock();
    fail(code, reason);
  }
}

void Engine::startNextBatch() {
  while (active_.empty() && !queue_.empty() && !broken_) {
    active_ = std::move(queue_.front());
    queue_.pop_front();
    activeDone_.assign(active_.size(), false);
    noteProgress();
    for (size_t i = 0; i < active_.size(); ++i) {
      gcclResult_t r = active_[i]->start(ctx_);
      if (r != gcclSuccess) {
        fail(r, active_[i]->describe() + ": " + threadLastError());
        return;
      }
    }
    advance();
  }
}

void Engine::removeService(Service* service) {
  for (size_t i = 0; i < services_.size(); ++i)
    if (services_[i].get() == service) {
      service->cancel(ctx_);
      services_.erase(services_.begin() + static_cast<long>(i));
      return;
    }
}

void Engine::advance() {
  if (broken_) return;
  for (size_t i = 0; i < services_.size(); ++i) {
    gcclResult_t r = services_[i]->poll(ctx_);
    if (r != gcclSuccess) {
      fail(r, std::string("serving a gossip partner: ") + threadLastError());
      return;
    }
  }
  if (active_.empty()) {
    if (!queue_.empty()) startNextBatch();
    return;
  }
  bool allDone = true;
  for (size_t i = 0; i < active_.size(); ++i) {
    if (activeDone_[i]) continue;
    bool done = false;
    gcclResult_t r = active_[i]->progress(ctx_, &done);
    if (r != gcclSuccess) {
      fail(r, active_[i]->describe() + ": " + threadLastError());
      return;
    }
    if (done) {
      activeDone_[i] = true;
      noteProgress();
    } else {
      allDone = false;
    }
  }
  if (!allDone) return;
  for (auto& op : active_)
    completeOp(op.get(), gcclSuccess, "");
  active_.clear();
  std::fill(probeSentMs_.begin(), probeSentMs_.end(), 0);
  mismatchChecked_ = false;
  startNextBatch();
}

void Engine::completeOp(Op* op, gcclResult_t code, const std::string& reason) {
  completeRequest(op->request(), code, reason);
}

void Engine::checkDeadlines(int64_t now) {
  if (active_.empty() || broken_) return;
  int64_t half = std::max<int64_t>(opt_.timeoutMs / 2, 1);
  // A peer that has not answered a probe in time is stopped, hung or unreachable.
  for (size_t p = 0; p < probeSentMs_.size(); ++p) {
    int64_t sent = probeSentMs_[p];
    if (sent == 0) continue;
    auto& c = conns_[p];
    if (c && c->lastPongMs() >= sent) {
      probeSentMs_[p] = 0;  // alive; probe again if the stall goes on
      continue;
    }
    if (now - sent < half) continue;
    std::string what = active_.front()->describe();
    fail(gcclTimeout, "rank " + std::to_string(p) + " did not respond for " +
                          std::to_string(now - lastProgressMs_) +
                          " ms (process stopped, hung or unreachable) during " + what);
    return;
  }
  // A short stall: is a peer's message for this collective waiting with another signature?
  if (now - lastProgressMs_ >= 50 && !mismatchChecked_) {
    mismatchChecked_ = true;
    checkMismatch();
    if (broken_) return;
  }
  if (now - lastProgressMs_ < half) return;
  std::vector<int> peers;
  std::vector<bool> isRecv;
  for (auto& op : active_)
    op->waitingPeers(&peers, &isRecv);
  for (int p : peers) {
    auto& c = conns_[static_cast<size_t>(p)];
    if (p == opt_.rank || !c || probeSentMs_[static_cast<size_t>(p)] != 0) continue;
    probeSentMs_[static_cast<size_t>(p)] = now;
    if (c->sendPing() != gcclSuccess) connectionFailed(c.get(), gcclRemoteError);
    if (broken_) return;
  }
  // Peers answer but nothing moves: some other rank is stuck; give it time to
  // report the culprit, then fail with what this rank waits for.
  if (now - lastProgressMs_ >= 4 * opt_.timeoutMs) {
    std::string who;
    for (size_t i = 0; i < peers.size(); ++i)
      who += (who.empty() ? "" : ", ") + std::string(isRecv[i] ? "data from rank " : "rank ") +
             std::to_string(peers[i]) + (isRecv[i] ? "" : " to take data");
    fail(gcclTimeout, active_.front()->describe() + " made no progress for " +
                          std::to_string(now - lastProgressMs_) + " ms, waiting for " +
                          (who.empty() ? "nothing?" : who));
  }
}

void Engine::noteProgress() {
  lastProgressMs_ = nowMs();
  mismatchChecked_ = false;
}

void Engine::checkMismatch() {
  Op* op = active_.front().get();
  // Ops that send nothing of their own (meta 0) have no signature to compare.
  if (!op->isCollective() || op->meta().info == 0) return;
  std::vector<std::pair<uint64_t, transport::MessageMeta>> paused;
  for (auto& c : conns_) {
    if (!c) continue;
    paused.clear();
    c->pausedFrames(&paused);
    for (const auto& [tag, meta] : paused) {
      if ((tag >> 63) != 0 || (tag >> kTagStepBits) != op->seq) continue;
      if (meta.info == op->meta().info && meta.count == op->meta().count) continue;
      fail(gcclInvalidUsage, "mismatched collective calls: rank " + std::to_string(c->peer()) +
                                 " called " + describeMeta(meta) + " while this rank called " +
                                 op->describe());
      return;
    }
  }
}

void Engine::connectionFailed(transport::Connection* conn, gcclResult_t code) {
  (void)conn;
  fail(code, threadLastError());
}

void Engine::fail(gcclResult_t code, const std::string& reason) {
  if (broken_) return;
  broken_ = true;
  std::string full = "rank " + std::to_string(opt_.rank) + ": " + reason;
  GCCL_WARN(kLogNet, "%s (%s)", full.c_str(), gcclGetErrorString(code));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = code;
    errorReason_ = full;
    while (!submitted_.empty()) {
      queue_.push_back(std::move(submitted_.front()));
      submitted_.pop_front();
    }
  }
  for (auto& c : conns_)
    if (c) c->sendAbortNotice(full.c_str());
  for (auto& op : active_) {
    op->cancelPending(ctx_);
    completeOp(op.get(), code, full);
  }
  for (auto& service : services_)
    service->cancel(ctx_);
  services_.clear();
  active_.clear();
  for (auto& batch : queue_)
    for (auto& op : batch)
      completeOp(op.get(), code, full);
  queue_.clear();
  // Close every connection: peers see the abort notice, then EOF.
  for (auto& c : conns_)
    c.reset();
}

}  // namespace gccl
