#include "core/engine.h"

#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "base/check.h"
#include "base/log.h"
#include "transports/loopback.h"
#include "base/clock.h"

namespace gccl {

namespace {
// How long a caller that stops driving while ops are in flight keeps the
// progress thread parked (see drive()).
constexpr int64_t kBusyLeaseUs = 50;
// A spinning caller whose connections are all polled makes this many light
// passes (rings only: no system call, no deadline checks) per full pass.
// A light pass takes well under a microsecond, so fds, listeners and
// deadlines are still looked at every few tens of microseconds.
constexpr int kLightPasses = 32;
// How long a normal destroy waits for the peers to acknowledge the last
// bytes and the goodbye (at most the communicator's timeout).
constexpr int64_t kSettleBeforeCloseMs = 1000;

// Some tens of nanoseconds of doing nothing, without giving up the core
// (a pause is about 10 to 140 cycles, depending on the processor): short, as
// the loop notices a peer's message only between two of these.
void cpuRelax() {
  for (int i = 0; i < 4; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
}

}  // namespace

transport::Connection* OpContext::conn(int peer) const {
  return engine->isPeerFailed(peer) ? nullptr : engine->connection(peer);
}
transport::Connection* OpContext::connAt(int peer, uint64_t seq) const {
  Membership* m = engine->membership();
  if (m != nullptr && peer != rank && m->incarnationAt(peer, seq) != m->incarnation(peer))
    return nullptr;
  return conn(peer);
}
bool OpContext::lostToFailure(const Transfer& t) const {
  return t.req.failed() &&
         (t.lost || engine->isPeerFailed(t.peer) || engine->incarnationOf(t.peer) != t.inc);
}
bool OpContext::peerFailed(int peer) const {
  return engine->isPeerFailed(peer);
}
const std::string& OpContext::failureReason(int peer) const {
  return engine->failureReason(peer);
}
const std::vector<uint8_t>* OpContext::aliveFor(uint64_t seq) const {
  return engine->aliveFor(seq);
}
void OpContext::joinsAt(uint64_t seq, std::vector<RankJoin>* out) const {
  engine->joinsAt(seq, out);
}
gcclResult_t OpContext::scratch(size_t bytes, transport::MemoryType type, void** out) const {
  return engine->scratchPool().get(bytes, type, out);
}
void* OpContext::scratch(size_t bytes, transport::MemoryType type) const {
  void* p = nullptr;
  return scratch(bytes, type, &p) == gcclSuccess ? p : nullptr;
}

Engine::Engine(const EngineOptions& options) : opt_(options) {
  ctx_.engine = this;
  ctx_.rank = opt_.rank;
  ctx_.nranks = opt_.nranks;
  ctx_.params = &opt_.params;
  ctx_.faultTolerant = opt_.faultTolerant;
  ctx_.timeoutMs = opt_.timeoutMs;
  ctx_.exec = exec_.get();
  probeSentMs_.assign(static_cast<size_t>(opt_.nranks), 0);
  failReason_.resize(static_cast<size_t>(opt_.nranks));
  joiningConn_.assign(static_cast<size_t>(opt_.nranks), false);
  if (opt_.faultTolerant)
    membership_ = std::make_unique<Membership>(this, opt_.rank, opt_.nranks, opt_.timeoutMs,
                                               opt_.incarnation);
  peerStatus_.resize(static_cast<size_t>(opt_.nranks));
  published_.reset(new PublishedCounters[static_cast<size_t>(opt_.nranks)]);
  reportStale_ = true;
}

Engine::~Engine() {
  shutdown();
  polled_.clear();
  conns_.clear();  // connections unwatch their fds through this engine: before the epoll fd goes
  listeners_.clear();
  if (wakeFd_ >= 0) close(wakeFd_);
  if (epollFd_ >= 0) close(epollFd_);
}

gcclResult_t Engine::start(std::vector<std::unique_ptr<transport::Connection>> conns,
                           std::vector<std::unique_ptr<transport::Listener>> listeners) {
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epollFd_ < 0) return setError(gcclSystemError, "epoll_create1: %s", strerror(errno));
  wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) return setError(gcclSystemError, "eventfd: %s", strerror(errno));
  GCCL_CHECK(watchAs(wakeFd_, EPOLLIN, WatchKind::kWake, nullptr));
  listeners_ = std::move(listeners);
  for (auto& l : listeners_)
    GCCL_CHECK(watchAs(l->pollFd(), EPOLLIN, WatchKind::kListen, l.get()));
  conns_ = std::move(conns);
  conns_.resize(static_cast<size_t>(opt_.nranks));
  conns_[static_cast<size_t>(opt_.rank)].reset(new transport::LoopbackConnection(opt_.rank));
  allPolled_ = true;
  for (size_t i = 0; i < conns_.size(); ++i) {
    auto& c = conns_[i];
    if (!c) {
      // A rejoining rank could not reach it: failed, as far as it knows.
      if (membership_ && i != static_cast<size_t>(opt_.rank)) {
        failReason_[i] = "not reachable when this rank rejoined";
        std::lock_guard<std::mutex> lock(mutex_);
        failedList_.emplace_back(static_cast<int>(i), failReason_[i]);
      }
      continue;
    }
    GCCL_CHECK(c->start());
    if (c->needsPolling())
      polled_.push_back(c.get());
    else if (i != static_cast<size_t>(opt_.rank))
      allPolled_ = false;
  }
  if (membership_) GCCL_CHECK(membership_->start());
  lastProgressMs_ = nowMs();
  running_ = true;
  thread_ = std::thread([this] { run(); });
  return gcclSuccess;
}

gcclResult_t Engine::watch(int fd, uint32_t events, void* owner) {
  return watchAs(fd, events, WatchKind::kConn, owner);
}

gcclResult_t Engine::watchAs(int fd, uint32_t events, WatchKind kind, void* owner) {
  size_t i = static_cast<size_t>(fd);
  if (watches_.size() <= i) watches_.resize(i + 1);
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  int op = watches_[i].kind == WatchKind::kNone ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(epollFd_, op, fd, &ev) != 0)
    return setError(gcclSystemError, "epoll_ctl(fd %d): %s", fd, strerror(errno));
  watches_[i] = {kind, owner};
  return gcclSuccess;
}

void Engine::unwatch(int fd) {
  size_t i = static_cast<size_t>(fd);
  if (i >= watches_.size() || watches_[i].kind == WatchKind::kNone) return;
  epoll_ctl(epollFd_, EPOLL_CTL_DEL, fd, nullptr);
  watches_[i] = WatchEntry();
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
  inbox_.store(true, std::memory_order_release);
  bool parked = threadParked_;
  // A caller left the engine a moment ago and the progress thread waits out
  // its lease: leave it parked. A caller that waits on this op at once (a
  // framework's blocking call issued as a non-blocking one, then waited)
  // drives it itself, without the wake-up and the two context switches;
  // otherwise the progress thread takes it when the lease ends (at most
  // GCCL_PROGRESS_LEASE_US from now).
  if (parked && drivers_ == 0 && leaseUntilUs_ > nowUs()) return;
  // The progress thread runs it: out of epoll_wait if it polls, off the lease if parked.
  leaseUntilUs_ = 0;
  lock.unlock();
  if (parked)
    parked_.notify_one();
  else
    wake();  // also when between two polls: the next epoll_wait returns at once
}

void Engine::abort(gcclResult_t code, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!running_) return;
    abortRequested_ = true;
    inbox_.store(true, std::memory_order_release);
    abortCode_ = code;
    abortReason_ = reason;
    leaseUntilUs_ = 0;
  }
  wake();  // reaches a driving caller in epoll_wait too
  parked_.notify_one();
}

void Engine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!thread_.joinable()) return;
    stopRequested_ = true;
    stopFlag_.store(true, std::memory_order_release);
  }
  wake();
  parked_.notify_one();
  thread_.join();
}

gcclResult_t Engine::error(std::string* reason) const {
  if (!failed_.load(std::memory_order_acquire)) {
    if (reason != nullptr) reason->clear();
    return gcclSuccess;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (reason != nullptr) *reason = errorReason_;
  return error_;
}

Engine::PeerCounters Engine::peerCounters(int peer) const {
  // Relaxed loads: each value was stored by the driver before it completed
  // the requests whose traffic it counts, and the caller saw that completion
  // (with acquire), so nothing older than that can be read here.
  const PublishedCounters& p = published_[static_cast<size_t>(peer)];
  PeerCounters c;
  c.bytesSent = p.bytesSent.load(std::memory_order_relaxed);
  c.bytesReceived = p.bytesReceived.load(std::memory_order_relaxed);
  c.messagesSent = p.messagesSent.load(std::memory_order_relaxed);
  c.messagesReceived = p.messagesReceived.load(std::memory_order_relaxed);
  return c;
}

void Engine::publishCountersEveryMs(int64_t nowMs) {
  // A spinning caller makes a full pass every few microseconds; the traffic
  // in flight is published once per millisecond, and exactly at completion.
  if (nowMs == lastPublishMs_) return;
  lastPublishMs_ = nowMs;
  publishCounters();
}

void Engine::publishCounters() {
  for (size_t i = 0; i < conns_.size(); ++i) {
    const transport::Connection* c = conns_[i].get();
    if (c == nullptr) continue;
    PublishedCounters& p = published_[i];
    p.bytesSent.store(c->bytesSent(), std::memory_order_relaxed);
    p.bytesReceived.store(c->bytesReceived(), std::memory_order_relaxed);
    p.messagesSent.store(c->messagesSent(), std::memory_order_relaxed);
    p.messagesReceived.store(c->messagesReceived(), std::memory_order_relaxed);
  }
}

// ---- the progress thread ------------------------------------------------------

void Engine::run() {
  pthread_setname_np(pthread_self(), "gccl-progress");
  int64_t stopDeadline = 0;
  for (;;) {
    bool firstStopPass = false;
    std::unique_lock<std::mutex> drive(driveMutex_);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!stopRequested_ && (drivers_ > 0 || leaseUntilUs_ > nowUs())) {
        // A caller drives, or may come back soon: stay out of its way.
        drive.unlock();
        threadParked_ = true;
        // Timed waits only: a caller leaving with a lease does not need to
        // wake this thread (it only notifies when work waits for it).
        while (!stopRequested_) {
          int64_t now = nowUs();
          if (drivers_ == 0 && leaseUntilUs_ <= now) break;
          int64_t until =
              drivers_ > 0 ? now + std::max<int64_t>(opt_.leaseUs, 1000) : leaseUntilUs_;
          parked_.wait_for(lock, std::chrono::microseconds(until - now));
        }
        threadParked_ = false;
        continue;
      }
      threadPolling_ = true;
      // The first pass after a stop request does not wait: a driving caller
      // may have drained the eventfd write that announced it.
      firstStopPass = stopRequested_ && stopDeadline == 0;
    }
    bool ok = pollOnce(firstStopPass ? 0 : -1) >= 0;
    int64_t now = nowMs();
    std::lock_guard<std::mutex> lock(mutex_);
    threadPolling_ = false;
    if (!ok) break;
    if (!stopRequested_) continue;
    if (stopDeadline == 0) stopDeadline = now + opt_.timeoutMs;
    bool idle = active_.empty() && queue_.empty() && submitted_.empty();
    for (auto& c : conns_)
      idle = idle && !(c && c->hasQueuedSends());
    if (!idle && now < stopDeadline && !broken_) continue;
    break;
  }
  std::lock_guard<std::mutex> drive(driveMutex_);
  if (!active_.empty() || !queue_.empty()) fail(gcclInvalidUsage, "the communicator was destroyed");
  if (!broken_) {
    std::vector<transport::Connection*> all;
    for (auto& c : conns_)
      if (c) {
        c->sendCloseNotice();
        all.push_back(c.get());
      }
    // The goodbyes and the last data reach the peers before the sockets
    // close (bounded: a peer that stopped reading is not waited for).
    int64_t settleMs = std::min<int64_t>(opt_.timeoutMs, kSettleBeforeCloseMs);
    transport::settleBeforeClose(all.data(), all.size(), nowMs() + settleMs);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  running_ = false;
}

int Engine::pollConnections() {
  int moved = 0;
  for (size_t i = 0; i < polled_.size(); ++i) {
    transport::Connection* c = polled_[i];
    bool any = false;
    gcclResult_t r = c->poll(&any);
    if (r != gcclSuccess) {
      connectionFailed(c, r);
      return moved;
    }
    if (any) noteProgress();
    moved += any;
  }
  return moved;
}

bool Engine::armPolled() {
  bool armed = true;
  for (transport::Connection* c : polled_)
    armed = c->armForSleep() && armed;
  return armed;
}

int Engine::pollOnce(int waitMs, gcclRequest* until, bool light) {
  if (light && allPolled_ && !broken_ && ++lightPasses_ < kLightPasses) {
    takeSubmissions();
    int moved = pollConnections();
    advance();
    return moved;
  }
  lightPasses_ = 0;
  epoll_event events[64];
  // Work handed over without an eventfd wake-up (to a parked thread, or to a
  // driving caller) starts before the wait.
  takeSubmissions();
  int moved = pollConnections();
  advance();
  int64_t now = nowMs();
  int wait = nextWakeMs(now);
  if (waitMs >= 0 && (wait < 0 || wait > waitMs)) wait = waitMs;
  // A send completes as it is written, without an event to wake for: a
  // driving caller whose request is already done must not sleep here.
  if (until != nullptr && requestDone(until)) wait = 0;
  if (moved > 0 || broken_) wait = 0;
  // A polled transport sleeps only once it has armed its wake-up (its peer
  // then signals an fd this loop watches); one that cannot be armed now is
  // polled again within a millisecond.
  if (wait != 0 && !polled_.empty() && !armPolled()) wait = wait < 0 ? 1 : std::min(wait, 1);
  // Polled traffic is moving or the caller's request is done: come straight
  // back (or leave) without a system call; the next pass looks at the fds.
  if (wait == 0 && (moved > 0 || (until != nullptr && requestDone(until))) && !polled_.empty()) {
    now = nowMs();
    checkDeadlines(now);
    publishCountersEveryMs(now);
    return moved;
  }
  int n = epoll_wait(epollFd_, events, 64, wait);
  if (n < 0) {
    if (errno == EINTR) return 0;
    fail(gcclSystemError, std::string("epoll_wait failed: ") + strerror(errno));
    return -1;
  }
  for (int i = 0; i < n; ++i)
    handleEvent(events[i].data.fd, events[i].events);
  takeSubmissions();
  moved += pollConnections();
  advance();
  now = nowMs();
  checkDeadlines(now);
  for (auto& l : listeners_)
    if (now >= l->nextDeadlineMs()) l->poll();
  publishCountersEveryMs(now);
  return n + moved;
}

bool Engine::idleForLease() const {
  bool idle = active_.empty() && queue_.empty() && services_.empty() && !broken_;
  for (const auto& c : conns_)
    idle = idle && !(c && c->hasQueuedSends());
  return idle;
}

void Engine::drive(gcclRequest* req, int64_t deadlineMs) {
  if (!opt_.callerProgress) return;
  bool drives = false, needWake = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (running_ && !stopRequested_) {
      ++drivers_;
      drives = true;
      needWake = threadPolling_;
    }
  }
  if (!drives) {
    // Stopping: leave the batch submit() queued to the progress thread.
    wake();
    parked_.notify_one();
    return;
  }
  driveLoop(req, deadlineMs, needWake);
}

void Engine::submitAndDrive(std::vector<std::unique_ptr<Op>> batch, gcclRequest* req,
                            int64_t deadlineMs) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!opt_.callerProgress || error_ != gcclSuccess || !running_ || stopRequested_) {
    // Failed, stopping or not caller-driven: submit() completes the batch
    // with the error or hands it to the progress thread.
    lock.unlock();
    submit(std::move(batch));
    return;
  }
  // One trip through the lock both queues the batch and makes this caller
  // the driver.
  submitted_.push_back(std::move(batch));
  inbox_.store(true, std::memory_order_release);
  ++drivers_;
  bool needWake = threadPolling_;
  lock.unlock();
  driveLoop(req, deadlineMs, needWake);
}

void Engine::driveLoop(gcclRequest* req, int64_t deadlineMs, bool needWake) {
  if (needWake) wake();  // the progress thread leaves epoll_wait and parks
  {
    std::lock_guard<std::mutex> driver(driveMutex_);
    int64_t nowU = nowUs(), lastEventUs = nowU;
    unsigned passes = 0;
    for (;;) {
      if (requestDone(req)) break;
      // While spinning, a pass takes well under a microsecond: the clock is
      // read on every eighth (it costs as much as a pass of polled rings).
      bool spinning = opt_.spinUs > 0 && nowU - lastEventUs < opt_.spinUs;
      if (!spinning || (++passes & 7) == 0) nowU = nowUs();
      int64_t now = nowU / 1000;
      if (now >= deadlineMs || !running_) break;
      // A destroy from another thread: the progress thread takes the loop
      // back to enforce the shutdown deadline, and this caller waits on its
      // request like any other.
      if (stopFlag_.load(std::memory_order_acquire)) break;
      // Adaptive polling: while traffic flows (an event within the spin
      // window) poll without sleeping, pausing the core briefly at first and
      // then yielding it to a rank that shares it; after that, sleep.
      int64_t sinceEventUs = nowU - lastEventUs;
      bool spin = opt_.spinUs > 0 && sinceEventUs < opt_.spinUs;
      int n =
          pollOnce(spin ? 0 : static_cast<int>(std::min<int64_t>(deadlineMs - now, 50)), req, spin);
      if (n < 0) break;
      if (n > 0) {
        // The window runs from the end of the pass: one that moved a large
        // message (a single-copy read of tens of microseconds) must not use
        // it up.
        nowU = nowUs();
        lastEventUs = nowU;
      } else if (spin) {
        if (sinceEventUs < opt_.spinPauseUs)
          cpuRelax();
        else
          sched_yield();
      }
    }
    for (transport::Connection* c : polled_)
      c->settle();
    bool idle = idleForLease();
    std::lock_guard<std::mutex> lock(mutex_);
    --drivers_;
    // An idle engine waits the whole lease for the next blocking call; one
    // with ops in flight only a moment, for a caller that waits on them one
    // after another (gcclWait in a loop), then the progress thread takes over.
    idle = idle && submitted_.empty();
    int64_t lease = idle ? opt_.leaseUs : std::min<int64_t>(opt_.leaseUs, kBusyLeaseUs);
    leaseUntilUs_ = abortRequested_ || stopRequested_ ? 0 : nowUs() + lease;
    if (idle && leaseUntilUs_ != 0) return;  // nothing for the progress thread to do yet
  }
  parked_.notify_one();
}

int Engine::nextWakeMs(int64_t now) const {
  // Deadlines only matter while something waits: otherwise sleep until woken.
  bool retry = false;
  for (const auto& service : services_)
    retry = retry || service->wantsRetry();
  if (retry) return 1;
  // The stall checks of a running batch are due only while one runs; the
  // listener's own deadlines (a stranger's hello, the end of an accept
  // back-off) whenever it has some.
  int64_t next = INT64_MAX;
  if (!active_.empty()) {
    // The stall's checkpoints (see checkDeadlines): the first check, the
    // probe rounds, an unanswered probe's deadline, the verdict at one
    // timeout (only ahead: past it, answers arrive as events), the backstop.
    next = mismatchChecked_ ? std::max(lastProgressMs_ + opt_.timeoutMs / 2, nextProbeMs_)
                            : lastProgressMs_ + kFirstCheckMs;
    for (int64_t sent : probeSentMs_)
      if (sent != 0) next = std::min(next, sent + opt_.timeoutMs / 2);
    if (lastProgressMs_ + opt_.timeoutMs > now)
      next = std::min(next, lastProgressMs_ + opt_.timeoutMs);
    next = std::min(next, lastProgressMs_ + 2 * opt_.timeoutMs);
  }
  for (const auto& l : listeners_)
    next = std::min(next, l->nextDeadlineMs());
  if (membership_ && membership_->nextDeadlineMs() != 0)
    next = std::min(next, membership_->nextDeadlineMs());
  if (next == INT64_MAX) return -1;
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
      static_cast<transport::Listener*>(w.owner)->poll();
      takeArrivals(static_cast<transport::Listener*>(w.owner));
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

void Engine::takeSubmissions() {
  if (!inbox_.load(std::memory_order_acquire)) return;
  std::unique_lock<std::mutex> lock(mutex_);
  inbox_.store(false, std::memory_order_relaxed);
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
    // While the survivors agree on a new view, no collective starts here
    // (membership.h); point-to-point batches go on.
    if (membership_ && membership_->gated()) {
      bool collective = false;
      for (const auto& op : queue_.front())
        collective = collective || op->hasSequence();
      if (collective) return;
    }
    active_ = std::move(queue_.front());
    queue_.pop_front();
    activeDone_.assign(active_.size(), false);
    activeCompleted_.assign(active_.size(), false);
    noteProgress();
    for (const auto& op : active_)
      op->bindView(ctx_);
    for (const auto& op : active_)
      if (op->hasSequence()) {
        startedSeqs_ = op->seq + 1;
        lastCollectiveMeta_ = op->meta();
        lastCollectiveSeq_ = op->seq;
      }
    reportStale_ = true;
    for (size_t i = 0; i < active_.size(); ++i) {
      Op* op = active_[i].get();
      // Fault-tolerant mode: an exact collective needs every rank; it fails
      // before it sends anything once one has failed.
      // (A restarted rank counts as failed until a view takes it back.)
      std::string dead;
      if (membership_ && op->isCollective() && !op->tolerant())
        for (size_t r = 0; r < failReason_.size(); ++r)
          if (!failReason_[r].empty()) dead += (dead.empty() ? "" : ", ") + std::to_string(r);
      if (!dead.empty()) {
        setError(gcclRemoteError,
                 "%s: ranks %s failed; exact collectives need every rank (gossip steps go on "
                 "without them)",
                 op->describe().c_str(), dead.c_str());
        finishFailedOp(i, gcclRemoteError, threadLastError());
        continue;
      }
      gcclResult_t r = op->start(ctx_);
      if (r != gcclSuccess) {
        if (membership_ && op->lostPeer()) {
          finishFailedOp(i, r, threadLastError());
          continue;
        }
        fail(r, op->describe() + ": " + threadLastError());
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

void Engine::finishFailedOp(size_t i, gcclResult_t code, const std::string& reason) {
  Op* op = active_[i].get();
  op->cancelPending(ctx_);
  std::string full = "rank " + std::to_string(opt_.rank) + ": " + reason;
  GCCL_WARN(kLogNet, "%s (%s)", full.c_str(), gcclGetErrorString(code));
  publishCounters();
  completeOp(op, code, full);
  activeDone_[i] = true;
  activeCompleted_[i] = true;
}

void Engine::advance() {
  if (broken_) return;
  if (membership_) {
    gcclResult_t r = membership_->poll(nowMs());
    if (r != gcclSuccess) {
      fail(r, std::string("the survivors' agreement: ") + threadLastError());
      return;
    }
    if (broken_) return;
  }
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
      if (membership_ && active_[i]->lostPeer()) {
        finishFailedOp(i, r, threadLastError());
        continue;
      }
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
  // Whoever sees a request complete finds its traffic in the counters.
  publishCounters();
  for (size_t i = 0; i < active_.size(); ++i)
    if (activeCompleted_.empty() || !activeCompleted_[i])
      completeOp(active_[i].get(), gcclSuccess, "");
  active_.clear();
  std::fill(probeSentMs_.begin(), probeSentMs_.end(), 0);
  mismatchChecked_ = false;
  reportStale_ = true;
  startNextBatch();
}

void Engine::completeOp(Op* op, gcclResult_t code, const std::string& reason) {
  completeRequest(op->request(), code, reason);
}

void Engine::connectionFailed(transport::Connection* conn, gcclResult_t code) {
  if (membership_ && conn != nullptr && conn->peer() != opt_.rank && !broken_) {
    peerFailed(conn->peer(), threadLastError());
    return;
  }
  fail(code, threadLastError());
}

void Engine::peerFailed(int peer, const std::string& reason) {
  size_t p = static_cast<size_t>(peer);
  // (A restarted rank on its way back still counts as failed, but has a
  // connection: it can fail again, once.)
  if (peer == opt_.rank || (!failReason_[p].empty() && !joiningConn_[p]) || broken_) return;
  joiningConn_[p] = false;
  failReason_[p] = reason.empty() ? "(no reason given)" : reason;
  GCCL_WARN(kLogNet, "rank %d: rank %d failed: %s; fault-tolerant mode goes on without it",
            opt_.rank, peer, failReason_[p].c_str());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    failedList_.erase(std::remove_if(failedList_.begin(), failedList_.end(),
                                     [peer](const auto& f) { return f.first == peer; }),
                      failedList_.end());
    failedList_.emplace_back(peer, failReason_[p]);
  }
  publishCounters();
  // Running ops let go of the peer's transfers; they see them failed in
  // their next progress (gossip goes on, exact collectives fail).
  for (auto& op : active_)
    op->peerFailed(ctx_, peer);
  membership_->forgetPeer(peer);
  transport::Connection* c = conns_[p].get();
  if (c != nullptr) c->abandon();
  polled_.erase(std::remove(polled_.begin(), polled_.end(), c), polled_.end());
  probeSentMs_[p] = 0;
  conns_[p].reset();
  membership_->onPeerFailed(peer);
  noteProgress();
  reportStale_ = true;
}

void Engine::takeArrivals(transport::Listener* listener) {
  transport::Arrival a;
  while (listener->takeArrival(&a)) {
    onArrival(std::move(a));
    a = transport::Arrival();
  }
}

void Engine::onArrival(transport::Arrival a) {
  int peer = a.peer;
  if (broken_ || !membership_ || peer < 0 || peer >= opt_.nranks || peer == opt_.rank) {
    GCCL_WARN(kLogNet, "rank %d: turned away a connection from rank %d (incarnation %u): %s",
              opt_.rank, peer, a.incarnation,
              broken_        ? "this communicator is broken"
              : !membership_ ? "ranks rejoin only fault-tolerant communicators"
                             : "not a peer rank");
    return;  // closing it tells the restarted rank
  }
  size_t p = static_cast<size_t>(peer);
  if (a.incarnation <= membership_->incarnation(peer)) {
    GCCL_WARN(kLogNet,
              "rank %d: turned away a connection from rank %d's incarnation %u (incarnation %u "
              "is known here)",
              opt_.rank, peer, a.incarnation, membership_->incarnation(peer));
    return;
  }
  // A new process as rank `peer`: the old one is gone, whatever its
  // connection still says.
  if (conns_[p])
    peerFailed(peer, "rank " + std::to_string(peer) + " restarted (its incarnation " +
                         std::to_string(a.incarnation) + " connected)");
  if (broken_) return;
  // It counts as failed (ops do not use the connection) until a view the
  // survivors agree on takes it back (peerBack).
  conns_[p] = std::move(a.conn);
  joiningConn_[p] = true;
  transport::Connection* c = conns_[p].get();
  gcclResult_t r = c->start();
  if (r == gcclSuccess) {
    if (c->needsPolling())
      polled_.push_back(c);
    else
      allPolled_ = false;
    probeSentMs_[p] = 0;
    peerStatus_[p] = PeerStatus();
    r = membership_->onPeerArrived(peer, a.incarnation);
  }
  if (r != gcclSuccess)
    peerFailed(peer, std::string("its new connection failed: ") + threadLastError());
  noteProgress();
  reportStale_ = true;
}

void Engine::peerBack(int peer) {
  size_t p = static_cast<size_t>(peer);
  GCCL_INFO(kLogNet, "rank %d: rank %d is back (incarnation %u)", opt_.rank, peer,
            incarnationOf(peer));
  failReason_[p].clear();
  joiningConn_[p] = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    failedList_.erase(std::remove_if(failedList_.begin(), failedList_.end(),
                                     [peer](const auto& f) { return f.first == peer; }),
                      failedList_.end());
  }
  reportStale_ = true;
}

std::vector<std::pair<int, std::string>> Engine::failedRanks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failedList_;
}

void Engine::fail(gcclResult_t code, const std::string& reason) {
  if (broken_) return;
  broken_ = true;
  // The connections close below: their last counts stay readable.
  publishCounters();
  std::string full = "rank " + std::to_string(opt_.rank) + ": " + reason;
  GCCL_WARN(kLogNet, "%s (%s)", full.c_str(), gcclGetErrorString(code));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = code;
    failed_.store(true, std::memory_order_release);
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
  polled_.clear();
  for (auto& c : conns_)
    c.reset();
  reportStale_ = true;
}

}  // namespace gccl
